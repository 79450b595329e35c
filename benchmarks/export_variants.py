"""Benchmark every exported variant: size, peak memory, latency (1 and 2 threads), drawing quality.

    python -m benchmarks.export_variants --size 512            # the reference generator: docs/results/export_variants.json
    python -m benchmarks.export_variants --model g.keras --export_dir exported --output mine.json

Quality is measured against the float Keras generator on aligned photos
(``$KERAS_ASYM_SHARED/data/aligned_photos/images`` when present, else
procedural portraits): PSNR and SSIM of the uint8 drawings, and edge-F1 of the
drawings binarised at 128 (lines within 1.5 px count as matched). Latency is
the generator alone through LiteRT with XNNPACK, after warm-up, median of
``--runs``; each variant runs in its own child process (no TensorFlow there),
whose peak RSS is the memory figure. Without ``--model``, the reference generator
(``benchmarks.reference_generator``, fitted on the calibration half of the photos). Writes the JSON and a plot
beside it; ``benchmarks.report`` renders the table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from absl import flags

from benchmarks import report
from benchmarks.common import results
from benchmarks.common.fingerprint import cached_export
from benchmarks.common.heldout import photo_split
from benchmarks.common.reference import reference_model
from benchmarks.common.timing import child_timing
from edge_demo.runtime import cli
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import ONE_HOTS
from export import exporter
from export.tflite import calibration_photos
from keras_asym.evaluation import metrics
from keras_asym.evaluation.metrics import conv_gflops
from keras_asym.inference.keras_generator import load_generator

_MODEL = flags.DEFINE_string("model", None, "Generator .keras (default: the reference generator); exported into --export_dir first.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir",
    None,
    "Folder with exported variants, measured as they are (missing ones exported into it); default: the benchmark's "
    "own benchmarks/results/export_<size>, exported again whenever the weights, exporter code or options change.",
)
_SIZE = flags.DEFINE_string("size", "512", "Export size (N or HxW).")
_VARIANTS = flags.DEFINE_list(
    "variants",
    ["fp32", "fp16", "dynamic", "int8", "int8_float_norm", "fp32_winograd"],
    "Variants to export/measure (missing files are exported; qat fine-tunes: an hour or more at 512 on 2 cores).",
)
_THREADS = flags.DEFINE_list("threads", ["1", "2"], "Thread counts.")
_RUNS = flags.DEFINE_integer("runs", 10, "Timed runs per setting (median reported).")
_PHOTOS = flags.DEFINE_integer("photos", 10, "Held-out photos for the quality columns (the split benchmarks.inference uses).")
_QAT_STEPS = flags.DEFINE_integer("qat_steps", 100, "QAT fine-tuning steps when the qat variant must be exported.")
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/export_variants.json); the plot goes beside it.")


def benchmark_photos(folder: Path | None, height: int, width: int, count: int) -> tuple[list[np.ndarray], str]:
    return calibration_photos(folder, height, width, count, seed=1)


def quality_rows(generator, variants: dict[str, Path], photos: list[np.ndarray]) -> dict:
    styles = ONE_HOTS
    references = []
    for i, photo in enumerate(photos):
        x = to_model(photo)[None]
        y = np.asarray(generator({"photo": x, "style": styles[i % 3][None]}, training=False))[0, ..., 0]
        references.append(to_pixels(y))
    rows = {}
    for variant, path in variants.items():
        runner = TFLiteGenerator(path, threads=2)
        drawings = [runner.draw(photo, styles[i % 3]) for i, photo in enumerate(photos)]
        rows[variant] = {
            "psnr_db": float(np.mean([metrics.psnr(d, r) for d, r in zip(drawings, references)])),
            "ssim": float(np.mean([metrics.ssim(d, r) for d, r in zip(drawings, references)])),
            "edge_f1": float(np.mean([metrics.edge_f1(d, r) for d, r in zip(drawings, references)])),
        }
    return rows


def write_plot(path: Path, rows: dict, size: str) -> None:
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(6, 4))
    for variant, row in rows.items():
        ax.scatter(row["latency_2t_s"], row["psnr_db"], s=40 + row["mb"] * 3)
        ax.annotate(f"{variant} ({row['mb']:.1f} MB)", (row["latency_2t_s"], row["psnr_db"]), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel("latency, 2 threads (s)")
    ax.set_ylabel("PSNR vs float Keras (dB)")
    ax.set_title(f"Generator variants at {size}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv):
    del argv

    height, width = exporter.parse_size(_SIZE.value)
    quality_dir, calibration_dir = photo_split(_PHOTOS.value, Path("benchmarks/results/photo_split"))
    options = {"calibration_dir": calibration_dir, "per_op_report": False, "qat_options": {"steps": _QAT_STEPS.value}}
    exported = sorted({"qat" if v.startswith("qat") else v for v in _VARIANTS.value})
    if _EXPORT_DIR.value:  # the user's export: its files are measured as they are, missing variants added
        export_dir = Path(_EXPORT_DIR.value)
        summary_path = export_dir / "export.json"
        model = _MODEL.value or (json.loads(summary_path.read_text())["model"] if summary_path.is_file() else None)
        if model is None:
            raise ValueError(f"--export_dir {export_dir}: no export.json naming its model; pass --model.")
        missing = [v for v in exported if not (export_dir / f"drawing_{v}.tflite").is_file()]
        if missing:
            print(
                f"exporting {', '.join(missing)} at {height}x{width} into {export_dir} (calibration: {calibration_dir or 'procedural'}) ..."
            )
            exporter.export_generator(model, export_dir, (height, width), tuple(missing), **options)
    else:  # the benchmark's own folder: reused only from the same weights, exporter code and options
        export_dir = Path(f"benchmarks/results/export_{height}x{width}")
        model = _MODEL.value or str(reference_model(calibration_dir))
        cached_export(Path(model), export_dir, (height, width), exported, **options)
    generator = load_generator(model)
    gflops = conv_gflops(generator, height, width)
    variants = {v: export_dir / f"drawing_{v}.tflite" for v in _VARIANTS.value}
    photos, photo_source = benchmark_photos(quality_dir, height, width, _PHOTOS.value)
    quality = quality_rows(generator, variants, photos)
    rows = {}
    for variant, path in variants.items():
        row = {"mb": path.stat().st_size / 1e6, **quality[variant]}
        for threads in (int(t) for t in _THREADS.value):
            timing = child_timing(path, threads, _RUNS.value)
            row[f"latency_{threads}t_s"] = timing["median_s"]
            row["peak_rss_mb"] = max(row.get("peak_rss_mb", 0.0), timing["peak_rss_mb"])
        rows[variant] = row
        print(f"{variant}: {row}", flush=True)

    record = {
        **results.header("export_variants", max(int(t) for t in _THREADS.value)),
        "size": [height, width],
        "gflops": gflops,
        "photos": photo_source,
        "runs": _RUNS.value,
        "threads": [int(t) for t in _THREADS.value],
        "model": os.path.relpath(model, Path(__file__).resolve().parents[1]) if Path(model).is_absolute() else str(model),
        "rows": rows,
    }
    print(report.render_export_variants(record))
    path = results.write(record, _OUTPUT.value)
    if "latency_2t_s" in next(iter(rows.values())):
        write_plot(path.with_suffix(".png"), rows, f"{height}x{width}")
    return 0


if __name__ == "__main__":
    cli.run(main)
