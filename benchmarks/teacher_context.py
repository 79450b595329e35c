"""How far into the photo a generator looks to draw one place: the centre of each held-out photo drawn with
everything beyond a margin replaced, against its drawing of the whole photo.

    python -m benchmarks.teacher_context --models benchmarks/results/reference_generator.keras,runs/student/generators/generator.keras

A network of convolutions alone draws a pixel from the pixels within its reach (its layers' kernels times their
strides, listed per model: ``keras_asym.evaluation.metrics.receptive_radius``); the paper's G also normalises every layer over the whole image (instance norm), so
pixels beyond any margin can move its drawing. Replacing what lies beyond a margin (by white, the alignment's fill,
or by another photo's pixels at the same place) and scoring the centre's drawing against the original (SSIM of
the centre window) measures how much of a drawing a network whose reach ends at that margin cannot know from its
input. Writes ``docs/results/teacher_context.json``; ``benchmarks.report`` renders it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import app, flags

_MODELS = flags.DEFINE_list("models", [], "Generators (.keras) to probe (default: the reference generator, fitted first if missing).")
_PHOTOS = flags.DEFINE_string("photos", None, "Aligned photos (default: the held-out half of the shared photos).")
_SIZE = flags.DEFINE_integer("size", 256, "Square size the photos are drawn at.")
_CASES = flags.DEFINE_list(
    "cases", ["64:32", "64:64", "32:80", "32:96"], "window:margin pairs: a centred square window and the margin kept around it, px."
)
_STYLE = flags.DEFINE_integer("style", 1, "The one-hot style drawn (1-3).")
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/teacher_context.json).")
FILLS = ("white", "other_photo")


def replaced(photos: np.ndarray, i: int, window: int, margin: int, fill: str) -> np.ndarray:
    """Photo ``i`` with every pixel farther than ``margin`` from the centred ``window`` replaced."""
    size = photos.shape[1]
    lo = (size - window) // 2 - margin
    hi = (size + window) // 2 + margin
    kept = np.zeros(photos.shape[1:3], bool)
    kept[max(0, lo) : hi, max(0, lo) : hi] = True
    photo = photos[i].copy()
    photo[~kept] = 255 if fill == "white" else photos[(i + 1) % len(photos)][~kept]
    return photo


def main(argv):
    del argv
    from benchmarks import report
    from benchmarks.common import results
    from benchmarks.common.heldout import photo_split
    from benchmarks.common.reference import reference_model
    from edge_demo.runtime.styles import ONE_HOTS
    from export import tflite
    from keras_asym.evaluation import metrics
    from keras_asym.evaluation.scoring import draw, to_uint8
    from keras_asym.inference.keras_generator import load_generator

    size, style = _SIZE.value, ONE_HOTS[_STYLE.value - 1]
    quality, calibration = photo_split(10, Path("benchmarks/results/photo_split"))
    folder = _PHOTOS.value or quality
    if folder is None:
        raise SystemExit("teacher_context: no shared aligned photos found; give --photos.")
    photos = np.stack(tflite.calibration_photos(folder, size, size, 64)[0])
    record = {
        **results.header("teacher_context", 2),
        "size": size,
        "photos": f"{len(photos)} from {folder}",
        "style": _STYLE.value,
        "rows": [],
    }
    for path in _MODELS.value or [reference_model(calibration)]:
        model = load_generator(path)
        whole = to_uint8(draw(model, photos, style))[..., 0]
        row = {"model": results.model_name(Path(path)), "reach_px": metrics.receptive_radius(model), "cases": []}
        for case in _CASES.value:
            window, margin = map(int, case.split(":"))
            lo, hi = (size - window) // 2, (size + window) // 2
            case_row = {"window": window, "margin": margin}
            for fill in FILLS:
                batch = np.stack([replaced(photos, i, window, margin, fill) for i in range(len(photos))])
                drawn = to_uint8(draw(model, batch, style))[..., 0]
                case_row[fill] = float(np.mean([metrics.ssim(d[lo:hi, lo:hi], w[lo:hi, lo:hi]) for d, w in zip(drawn, whole)]))
            row["cases"].append(case_row)
            print(row["model"], case_row, flush=True)
        record["rows"].append(row)
    print(report.render_teacher_context(record))
    results.write(record, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    app.run(main)
