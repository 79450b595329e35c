"""``python -m edge_demo.runtime.gpu_check MODEL.tflite [...]``: one JSON line per model, LiteRT's GPU accelerator's
verdict on it (``gpu.probe``). TensorFlow-free; ``keras-asym gpu-check`` runs it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_demo.runtime.gpu import probe


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m edge_demo.runtime.gpu_check MODEL.tflite [...]", file=sys.stderr)
        return 2
    for path in argv:
        if not Path(path).is_file():
            print(f"edge_demo.runtime.gpu_check: error: {path}: no such model file.", file=sys.stderr)
            return 2
        print(json.dumps({"model": path, **probe(path)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
