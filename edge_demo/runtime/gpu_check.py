"""``python -m edge_demo.runtime.gpu_check MODEL.tflite [...]``: one JSON line per model, LiteRT's GPU accelerator's
verdict on it (``gpu.probe``). TensorFlow-free; ``keras-asym gpu-check`` runs it."""

from __future__ import annotations

import json
import sys

from edge_demo.runtime.cli import one_line
from edge_demo.runtime.generator import check_tflite_file
from edge_demo.runtime.gpu import probe


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m edge_demo.runtime.gpu_check MODEL.tflite [...]", file=sys.stderr)
        return 2
    for path in argv:
        try:
            check_tflite_file(path)  # a hostile file is refused before the GPU compiler sees it
        except (FileNotFoundError, ValueError) as err:
            print(f"edge_demo.runtime.gpu_check: error: {one_line(err)}", file=sys.stderr)
            return 2
        print(json.dumps({"model": path, **probe(path)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
