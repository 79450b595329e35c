"""Examples per second of the training input pipeline at 512 (decode, resize 572, crop, flip, masks).

Builds a dataset in the ``prepare`` layout from ``$KERAS_ASYM_SHARED/data``
(aligned photos with masks from the authors' 5 points, the paper's drawings
as style-labelled drawings), or from random images when that is absent, then
times ``make_dataset`` over repeated epochs.

    python -m benchmarks.input_pipeline --examples 300      # writes docs/results/input_pipeline.json
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks.common import results
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS

_EXAMPLES = flags.DEFINE_integer("examples", 300, "Examples to time after warm-up.")
_SIZE = flags.DEFINE_integer("size", 512, "Crop size.")
_BATCH = flags.DEFINE_integer("batch", 1, "Batch size.")
_OUTPUT = flags.DEFINE_string("output", None, "JSON results path (default: docs/results/input_pipeline.json).")


def build_layout(root: Path, shared: Path) -> str:
    import cv2

    from edge_demo.runtime.alignment import template
    from keras_asym.face.masks import part_masks

    for sub in ("A", "B", "B_feat") + tuple(f"{s}_{p}" for s in "AB" for p in ("eyes", "nose", "lips")):
        (root / sub).mkdir(parents=True, exist_ok=True)
    photos = sorted((shared / "data" / "aligned_photos" / "images").glob("*.png"))
    drawings = sorted((shared / "data" / "paper_drawings").glob("row*_style*.png"))
    rng = np.random.default_rng(0)
    source = "shared data" if photos and drawings else "random images"
    if not photos:
        photos = [None] * 29
    if not drawings:
        drawings = [None] * 18
    for i, path in enumerate(photos):
        image = cv2.imread(str(path)) if path else rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
        points_file = path.parent.parent / "landmarks5" / f"{path.stem}.txt" if path else None
        points = np.loadtxt(points_file) if points_file and points_file.is_file() else template(512)
        cv2.imwrite(str(root / "A" / f"a{i}.png"), image)
        for part, mask in part_masks(points, (512, 512)).items():
            cv2.imwrite(str(root / f"A_{part}" / f"a{i}.png"), mask * 255)
    for i, path in enumerate(drawings):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path else rng.integers(0, 255, (512, 512), dtype=np.uint8)
        cv2.imwrite(str(root / "B" / f"b{i}.png"), cv2.resize(image, (512, 512), interpolation=cv2.INTER_AREA))
        for part, mask in part_masks(template(512), (512, 512)).items():
            cv2.imwrite(str(root / f"B_{part}" / f"b{i}.png"), mask * 255)
        label = int(path.stem[-1]) - 1 if path else i % 3
        np.save(root / "B_feat" / f"b{i}.npy", ONE_HOTS[label])
    return source


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from benchmarks.common.shared_data import shared_dir
    from keras_asym.data.pipeline import make_dataset

    shared = shared_dir()
    with tempfile.TemporaryDirectory() as tmp:
        source = build_layout(Path(tmp), shared)
        dataset = make_dataset(tmp, image_size=_SIZE.value, batch_size=_BATCH.value).repeat()
        iterator = iter(dataset)
        for _ in range(5):
            next(iterator)
        steps = max(1, _EXAMPLES.value // _BATCH.value)
        start = time.perf_counter()
        progress = Progress(steps, "input_pipeline", unit="batches", interval=10.0)
        for _ in range(steps):
            next(iterator)
            progress.update()
        seconds = time.perf_counter() - start
    rate = steps * _BATCH.value / seconds
    result = {
        **results.header("input_pipeline", os.cpu_count()),
        "source": source,
        "size": _SIZE.value,
        "batch": _BATCH.value,
        "examples": steps * _BATCH.value,
        "examples_per_s": rate,
        "ms_per_example": 1000 / rate,
    }
    print(
        f"\n| size | batch | examples/s | ms/example | data |\n|---|---|---|---|---|\n| {_SIZE.value} | {_BATCH.value} | {rate:.1f} | {1000 / rate:.1f} | {source} |"
    )
    results.write(result, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
