"""Builds the browser page of the camera demo into a folder any static server can serve (``page.build_page``).

    python -m edge_demo.web.build --model exported/drawing_fp32.tflite --output site/
    python -m edge_demo.web.build --model exported/drawing_fp32.tflite --output site/ --serve   # http://localhost:8000/

npm installs the page's packages from ``package-lock.json`` into ``--npm_dir``, never into the source tree; the
folder gets only what the page loads, the face models and the generator, and needs no network afterwards.
"""

from __future__ import annotations

from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.assets import AssetError
from edge_demo.web import page


def main(argv):
    del argv
    if not _MODEL.value or not _OUTPUT.value:
        cli.error("build", "--model and --output are required.")
        return cli.BAD_INPUT
    try:
        output = page.build_page(_MODEL.value, _OUTPUT.value, _NPM_DIR.value)
        print(f"wrote {output}", flush=True)
        if _SERVE.value:
            page.serve_forever(output, _PORT.value, "127.0.0.1")
    except (ValueError, FileNotFoundError, RuntimeError, AssetError) as err:
        cli.error("build", err)
        return cli.BAD_INPUT
    return cli.OK


if __name__ == "__main__":  # the flags only then: edge_demo.__main__ has --model and --output too, and tests import both
    _MODEL = flags.DEFINE_string("model", None, "Generator .tflite from `python -m export` (fp32; int8 exports too).")
    _OUTPUT = flags.DEFINE_string("output", None, "Folder to write the page into (created).")
    _NPM_DIR = flags.DEFINE_string("npm_dir", None, "Where npm installs the packages (default: ~/.cache/keras_asym/web/npm).")
    _SERVE = flags.DEFINE_boolean("serve", False, "Serve the page on localhost after building it (as python -m edge_demo.web.serve).")
    _PORT = flags.DEFINE_integer("port", 8000, "--serve: the port.", lower_bound=0, upper_bound=65535)
    cli.run(main)
