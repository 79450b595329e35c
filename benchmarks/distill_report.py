"""Teacher vs distilled student: size, GFLOP, latency (fp32 and int8 TFLite) and quality against the teacher.

    python -m benchmarks.distill_report --teacher benchmarks/results/reference_generator.keras \
        --student runs/student/generators/generator.keras --size 256      # docs/results/distill_report.json
    (--size 512 --output docs/results/distill_report_512.json for a student of configs/student_512.flags)

Quality: SSIM and edge-F1 of the student's drawing against the teacher's, per style, on held-out photos that
neither saw in distillation: fresh procedural portraits (another seed) and the shared aligned photos of the
benchmark's quality split; and, fp32 only, the calibration split the README's command distils on
(``--seen_photos``, less the photos the run held out to score itself): a score far above the held-out one says
the student fits the faces it saw better than it generalises, not that it lacks capacity. Beside them, two scales
to read a score on, both the teacher against itself: its drawing of the photo moved by one pixel, or mirrored,
moved back (how much of it follows pixel phase, which a student with other strides has to learn as aliasing; not a
bound, since the student sees the same pixels), and its own drawing blurred by a Gaussian of 0.5 and 1 px (what a
drawing right in every line but soft scores). Latency: generator alone, LiteRT + XNNPACK, 2 threads, median of
20, each model in its own process. ``benchmarks.report`` renders the JSON.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import app, flags

from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS

_TEACHER = flags.DEFINE_string("teacher", "benchmarks/results/reference_generator.keras", "Teacher .keras.")
_STUDENT = flags.DEFINE_string("student", "runs/student/generators/generator.keras", "Student .keras.")
_SIZE = flags.DEFINE_integer("size", 256, "Resolution.")
_REAL = flags.DEFINE_string("real_photos", "benchmarks/results/bench_256/photo_split/quality", "Held-out aligned photos.")
_SEEN = flags.DEFINE_string(
    "seen_photos",
    "benchmarks/results/bench_256/photo_split/calibration",
    "A folder the student was distilled from, scored fp32 for the generalisation gap ('' to skip); distill holds 10% of its photos out.",
)
_PROCEDURAL = flags.DEFINE_integer("procedural", 24, "Held-out procedural portraits.")
_EXPORTS = flags.DEFINE_string("exports", "benchmarks/results/distill_exports", "Where the TFLite files go.")
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/distill_report.json).")
_TIMING = flags.DEFINE_boolean(
    "timing", True, "Time the exports (--notiming: quality only, for a run beside other work; its table says 'not timed')."
)
BLUR_SIGMAS = (0.5, 1.0)  # px: the teacher's own drawing softened, a scale for what a student's score means


def _scores(drawings, teacher) -> dict:
    from keras_asym.evaluation import metrics

    return {
        "ssim": float(np.mean([metrics.ssim(d, t) for d, t in zip(drawings, teacher)])),
        "edge_f1": float(np.mean([metrics.edge_f1(d, t) for d, t in zip(drawings, teacher)])),
        "photos": len(teacher),
    }


def main(argv):
    del argv
    import cv2  # lazy: the flags and --helpshort load without OpenCV

    from benchmarks import report
    from benchmarks.common import results
    from benchmarks.common.fingerprint import cached_export
    from benchmarks.common.timing import child_timing
    from edge_demo.runtime.generator import TFLiteGenerator
    from export import tflite
    from keras_asym.data.procedural import render_photo, sample_face
    from keras_asym.evaluation import metrics
    from keras_asym.evaluation.scoring import draw, self_consistency, to_uint8
    from keras_asym.inference.keras_generator import load_generator

    size = _SIZE.value
    rng = np.random.default_rng(4242)
    sets = {"procedural": [render_photo(sample_face(rng), size)[0] for _ in range(_PROCEDURAL.value)]}
    if Path(_REAL.value).is_dir():
        sets["aligned_photos"] = tflite.calibration_photos(_REAL.value, size, size, 64)[0]
    models = {"teacher": load_generator(_TEACHER.value), "student": load_generator(_STUDENT.value)}
    styles = ONE_HOTS
    exports = Path(_EXPORTS.value)
    rows = {}
    # the two models' exports and timings, then each photo set in three styles
    progress = Progress(2 + 3 * len(sets), "distill_report", unit="stages", interval=0.0)
    for name, path in (("teacher", _TEACHER.value), ("student", _STUDENT.value)):
        out = exports / f"{name}_{size}px"  # one per size (a 256² file is never timed as the 512² one); not edge_fps' seeded-network names
        calibration = Path(_REAL.value).parent / "calibration"
        cached_export(
            Path(path),
            out,
            (size, size),
            ("fp32", "int8"),
            log=lambda *a: None,
            calibration_dir=calibration if calibration.is_dir() else None,
            per_op_report=False,
        )
        rows[name] = {
            "params_M": models[name].count_params() / 1e6,
            "gflops": metrics.conv_gflops(models[name], size, size),
            "fp32_MB": (out / "drawing_fp32.tflite").stat().st_size / 1e6,
            "int8_MB": (out / "drawing_int8.tflite").stat().st_size / 1e6,
        }
        if _TIMING.value:
            for variant in ("fp32", "int8"):
                rows[name][f"{variant}_ms"] = 1e3 * child_timing(out / f"drawing_{variant}.tflite", 2, 20)["median_s"]
            rows[name]["int8_fps"] = 1e3 / rows[name]["int8_ms"]
        print(name, rows[name], flush=True)
        progress.update(note=f"{name} exported" + (" and timed" if _TIMING.value else ""))

    def drawn(name, batch, style):
        return to_uint8(draw(models[name], batch, style))[..., 0]

    quality, consistency, blurred, seen = {}, {}, {}, {}
    if _SEEN.value and Path(_SEEN.value).is_dir():
        batch = np.stack(tflite.calibration_photos(_SEEN.value, size, size, 64)[0])
        for k in range(3):
            seen[f"style{k + 1}"] = _scores(drawn("student", batch, styles[k]), drawn("teacher", batch, styles[k]))
    int8_student = TFLiteGenerator(exports / f"student_{size}px" / "drawing_int8.tflite")
    for set_name, photos in sets.items():
        batch = np.stack(photos)
        moves = {"shift_1px": [], "mirror": []}
        softened = {sigma: [] for sigma in BLUR_SIGMAS}
        for k in range(3):
            teacher, student = drawn("teacher", batch, styles[k]), drawn("student", batch, styles[k])
            int8_drawings = [int8_student.draw(photo, styles[k]) for photo in photos]
            for variant, drawings in (("fp32", student), ("int8", int8_drawings)):
                quality[f"{set_name}/style{k + 1}/{variant}"] = _scores(drawings, teacher)
            moves["shift_1px"].append(self_consistency(models["teacher"], batch, styles[k], shift=1, reference=teacher))
            moves["mirror"].append(self_consistency(models["teacher"], batch, styles[k], mirror=True, reference=teacher))
            for sigma, per_style in softened.items():
                per_style.append(_scores([cv2.GaussianBlur(t, (0, 0), sigma) for t in teacher], teacher))
            progress.update(note=f"{set_name} style {k + 1}")
        for name, per_style in moves.items():
            consistency[f"{set_name}/{name}"] = {m: float(np.mean([s[m] for s in per_style])) for m in ("ssim", "edge_f1")}
        for sigma, per_style in softened.items():
            blurred[f"{set_name}/sigma_{sigma}px"] = {m: float(np.mean([s[m] for s in per_style])) for m in ("ssim", "edge_f1")}
    record = {
        **results.header("distill_report", 2),
        "size": size,
        "teacher": _TEACHER.value,
        "student": _STUDENT.value,
        "seen_photos_folder": _SEEN.value,
        "models": rows,
        "quality": quality,
        "seen_photos": seen,
        "teacher_self_consistency": consistency,
        "teacher_blurred": blurred,
    }
    print(report.render_distill_report(record))
    results.write(record, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    app.run(main)
