"""Benchmark every exported variant: size, peak memory, latency (1 and 2 threads), drawing quality.

    python -m benchmarks.export_variants --model benchmarks/results/reference_generator.keras --size 512
    python -m benchmarks.export_variants --export_dir exported            # reuse an export

Quality is measured against the float Keras generator on aligned photos
(``$KERAS_ASYM_SHARED/data/aligned_photos/images`` when present, else
procedural portraits): PSNR and SSIM of the uint8 drawings, and edge-F1 of the
drawings binarised at 128 (lines within 1.5 px count as matched). Latency is
the generator alone through LiteRT with XNNPACK, after warm-up, median of
``--runs``; each variant runs in its own child process (no TensorFlow there),
whose peak RSS is the memory figure. Writes ``export_benchmark.{md,json,png}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from absl import flags

from benchmarks.common.heldout import photo_split
from benchmarks.common.timing import child_timing
from edge_demo.runtime import cli
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import ONE_HOTS
from export import exporter
from export.tflite import calibration_photos
from keras_asym.evaluation import metrics
from keras_asym.evaluation.metrics import conv_gflops
from keras_asym.inference.drawer import load_generator

_MODEL = flags.DEFINE_string("model", None, "Generator .keras (exported into --export_dir first unless it already holds an export).")
_EXPORT_DIR = flags.DEFINE_string("export_dir", "benchmarks/results/export", "Folder with (or for) the exported variants.")
_SIZE = flags.DEFINE_string("size", "512", "Export size (N or HxW).")
_VARIANTS = flags.DEFINE_list(
    "variants",
    ["fp32", "fp16", "dynamic", "int8", "int8_float_norm", "qat", "qat_float_norm"],
    "Variants to export/measure (missing files are exported).",
)
_THREADS = flags.DEFINE_list("threads", ["1", "2"], "Thread counts.")
_RUNS = flags.DEFINE_integer("runs", 10, "Timed runs per setting (median reported).")
_PHOTOS = flags.DEFINE_integer("photos", 8, "Photos for the quality columns.")
_QAT_STEPS = flags.DEFINE_integer("qat_steps", 100, "QAT fine-tuning steps when the qat variant must be exported.")
_OUTPUT = flags.DEFINE_string("output", "benchmarks/results", "Where the table, JSON and plot go.")


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
    export_dir = Path(_EXPORT_DIR.value)
    summary_path = export_dir / "export.json"
    model = _MODEL.value or (json.loads(summary_path.read_text())["model"] if summary_path.is_file() else None)
    if model is None:
        print("export_variants: error: give --model, or an --export_dir holding an export.", file=sys.stderr)
        return 2
    quality_dir, calibration_dir = photo_split(_PHOTOS.value, Path(_OUTPUT.value) / "photo_split")
    missing = sorted({"qat" if v.startswith("qat") else v for v in _VARIANTS.value if not (export_dir / f"drawing_{v}.tflite").is_file()})
    if missing:
        print(f"exporting {', '.join(missing)} at {height}x{width} into {export_dir} (calibration: {calibration_dir or 'procedural'}) ...")
        exporter.export_generator(
            model,
            export_dir,
            (height, width),
            tuple(missing),
            calibration_dir=calibration_dir,
            per_op_report=False,
            qat_options={"steps": _QAT_STEPS.value},
        )
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

    lines = [
        f"Generator variants at {height}x{width} ({gflops:.1f} GFLOP/frame), quality on {photo_source}; "
        f"latency = LiteRT + XNNPACK, median of {_RUNS.value}, this 2-core CPU.",
        "",
        "| variant | MB | peak RSS MB | " + " | ".join(f"{t} thr s" for t in _THREADS.value) + " | PSNR dB | SSIM | edge-F1 |",
        "|---|---|---|" + "---|" * len(_THREADS.value) + "---|---|---|",
    ]
    for variant, row in rows.items():
        timings = " | ".join(f"{row[f'latency_{t}t_s']:.3f}" for t in _THREADS.value)
        psnr = "inf" if not np.isfinite(row["psnr_db"]) else f"{row['psnr_db']:.1f}"
        lines.append(
            f"| {variant} | {row['mb']:.1f} | {row['peak_rss_mb']:.0f} | {timings} | {psnr} | {row['ssim']:.4f} | {row['edge_f1']:.4f} |"
        )
    lines += [
        "",
        "PyTorch beside these variants, same weights and run: python -m benchmarks.inference (a source checkout with the bench extra).",
    ]
    table = "\n".join(lines)
    print(table)
    output = Path(_OUTPUT.value)
    output.mkdir(parents=True, exist_ok=True)
    (output / "export_benchmark.md").write_text(table + "\n")
    record = {"size": [height, width], "gflops": gflops, "photos": photo_source, "rows": rows, "model": str(model)}
    (output / "export_benchmark.json").write_text(json.dumps(record, indent=2))
    if "latency_2t_s" in next(iter(rows.values())):
        write_plot(output / "export_benchmark.png", rows, f"{height}x{width}")
    return 0


if __name__ == "__main__":
    cli.run(main)
