"""The HTML pages the commands write (the draw gallery, the demo report): one shell, checkable in a browser.

Every page carries a few lines of script that, once the page has loaded, record
on ``<body>`` how many of its images actually decoded
(``data-images-loaded="12/12"``): a headless browser's DOM dump then tells a
test whether a reader would see every picture.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from pathlib import Path

from keras_asym.utils.imageio import write_bytes_atomic

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


def file_href(name: str) -> str:
    """A file name as a URL path: its bytes percent-encoded, so names that are not UTF-8 still link."""
    return html.escape(urllib.parse.quote(os.fsencode(name)))


def text_html(text: str) -> str:
    return html.escape(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def write_gallery(output: Path, rows: list[tuple[str, str, list[tuple[str, str]]]]) -> None:
    cells = []
    for stem, input_name, drawings in rows:
        images = "".join(f'<td><img src="{file_href(name)}" width="256"><br>{text_html(label)}</td>' for label, name in drawings)
        cells.append(f'<tr><td><img src="{file_href(input_name)}" width="256"><br>{text_html(stem)}</td>{images}</tr>')
    page = html_page("keras-asym drawings", "<h1>keras-asym drawings</h1><table>" + "".join(cells) + "</table>")
    write_bytes_atomic(output / "index.html", page.encode())
