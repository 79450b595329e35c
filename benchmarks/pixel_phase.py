"""How much of a generator's drawing follows the pixel grid rather than the face: each held-out photo moved by a
few pixels, drawn, and moved back, against the drawing of the photo itself.

    python -m benchmarks.pixel_phase --students runs/student/generators/generator.keras

The paper's G downsamples twice by stride 2 and upsamples by transposed convolutions, so where a stroke falls
relative to its 4-pixel grid can change the stroke: a photo moved by 4 pixels is drawn as before, moved by 1 or 2 it
is not. Per model: SSIM of the moved-back drawing against the drawing, and against the mean of its 16 drawings at
every phase of that grid (the part of the drawing that does not follow phase). Per student: SSIM to the teacher's
drawing and to the teacher's phase mean, and how far the student's own change under a move follows the teacher's
(Pearson correlation of the two differences, pixel by pixel): a student that drew the teacher's phase-dependent
strokes would move with it. Writes ``docs/results/pixel_phase.json``; ``benchmarks.report`` renders it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import app, flags

_TEACHER = flags.DEFINE_string("teacher", None, "Teacher generator .keras (default: the reference generator, fitted first if missing).")
_STUDENTS = flags.DEFINE_list("students", [], "Students (.keras) to compare with the teacher.")
_PHOTOS = flags.DEFINE_string("photos", None, "Aligned photos (default: the held-out half of the shared photos).")
_SIZE = flags.DEFINE_integer("size", 256, "Square size the photos are drawn at.")
_GRID = flags.DEFINE_integer("grid", 4, "Phases averaged: every move of 0 to grid-1 pixels down and right (the teacher's stride).")
_STYLE = flags.DEFINE_integer("style", 1, "The one-hot style drawn (1-3).")
_MARGIN = flags.DEFINE_integer("margin", 8, "Pixels at the borders left out of every score (a move wraps around).")
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/pixel_phase.json).")
MOVES = ((0, 1), (1, 1), (0, 2), (2, 2), (0, 4), (4, 4))


def main(argv):
    del argv
    from benchmarks import report
    from benchmarks.common import results
    from benchmarks.common.heldout import photo_split
    from benchmarks.common.reference import reference_model
    from edge_demo.runtime.progress import Progress
    from edge_demo.runtime.styles import ONE_HOTS
    from export import tflite
    from keras_asym.evaluation import metrics
    from keras_asym.evaluation.scoring import draw, to_uint8
    from keras_asym.inference.keras_generator import load_generator

    size, style, m, grid = _SIZE.value, ONE_HOTS[_STYLE.value - 1], _MARGIN.value, _GRID.value
    quality, calibration = photo_split(10, Path("benchmarks/results/photo_split"))
    folder = _PHOTOS.value or quality
    if folder is None:
        raise SystemExit("pixel_phase: no shared aligned photos found; give --photos.")
    photos = np.stack(tflite.calibration_photos(folder, size, size, 64)[0])
    teacher_path = _TEACHER.value or reference_model(calibration)
    paths = [teacher_path, *_STUDENTS.value]
    moves = sorted({(dy, dx) for dy in range(grid) for dx in range(grid)} | set(MOVES))
    progress = Progress(len(paths) * len(moves), "pixel_phase", unit="passes", interval=30.0)

    def drawings(model) -> dict:
        """Drawings (uint8 values, as every score is taken, in float so phase means are not rounded) of the photos
        moved by each move, moved back."""
        out = {}
        for dy, dx in moves:
            moved = draw(model, np.roll(photos, (dy, dx), axis=(1, 2)), style)[..., 0]
            out[dy, dx] = np.roll(to_uint8(moved).astype(np.float32), (-dy, -dx), axis=(1, 2))
            progress.update()
        return out

    def ssim(a, b) -> float:
        return float(np.mean([metrics.ssim(p[m:-m, m:-m], q[m:-m, m:-m]) for p, q in zip(a, b)]))

    def phase_mean(drawn: dict) -> np.ndarray:
        return np.mean([drawn[dy, dx] for dy in range(grid) for dx in range(grid)], axis=0)

    record = {
        **results.header("pixel_phase", 2),
        "size": size,
        "photos": f"{len(photos)} from {folder}",
        "style": _STYLE.value,
        "grid": grid,
        "margin": m,
        "rows": [],
    }
    teacher = None
    for path in paths:
        drawn = drawings(load_generator(path))
        mean = phase_mean(drawn)
        row = {
            "model": results.model_name(Path(path)),
            "moved": {f"{dy},{dx}": ssim(drawn[0, 0], drawn[dy, dx]) for dy, dx in MOVES},
            "vs_own_phase_mean": ssim(drawn[0, 0], mean),
        }
        if teacher is None:
            teacher = drawn, mean
        else:
            t_drawn, t_mean = teacher
            row["vs_teacher"] = ssim(drawn[0, 0], t_drawn[0, 0])
            row["vs_teacher_phase_mean"] = ssim(drawn[0, 0], t_mean)
            row["phase_mean_vs_teacher_phase_mean"] = ssim(mean, t_mean)
            row["follows_teacher"] = {
                f"{dy},{dx}": float(
                    np.corrcoef(
                        (drawn[0, 0] - drawn[dy, dx])[:, m:-m, m:-m].ravel(), (t_drawn[0, 0] - t_drawn[dy, dx])[:, m:-m, m:-m].ravel()
                    )[0, 1]
                )
                for dy, dx in MOVES
            }
        record["rows"].append(row)
        print(row, flush=True)
    print(report.render_pixel_phase(record))
    results.write(record, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    app.run(main)
