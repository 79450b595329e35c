"""The HTML pages the commands write (the draw gallery, the demo report): one shell, checkable in a browser.

Every page carries a few lines of script that, once the page has loaded, record
on ``<body>`` how many of its images actually decoded
(``data-images-loaded="12/12"``): a headless browser's DOM dump then tells a
test whether a reader would see every picture.
"""

from __future__ import annotations

import html

IMAGES_LOADED_SCRIPT = (
    "<script>addEventListener('load',()=>{const i=[...document.images];"
    "document.body.dataset.imagesLoaded=i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length;});</script>"
)


def html_page(title: str, body: str, style: str = "") -> str:
    """A complete UTF-8 document around ``body`` (already HTML)."""
    css = f"<style>{style}</style>" if style else ""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{css}</head>"
        f"<body>{body}{IMAGES_LOADED_SCRIPT}</body></html>"
    )
