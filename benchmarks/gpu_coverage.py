"""Which exported generators run fully on LiteRT's GPU accelerator, at which sizes: measured, one table.

    python benchmarks/gpu_coverage.py                       # the paper's G (ngf 64, 9 blocks) and the student
    python benchmarks/gpu_coverage.py --sizes 256x256,512x512 --variants fp32,fp16,int8

Builds the paper's G with the official N(0, 0.02) initialisation and the
distilled student (alpha 2, 6 blocks) untrained (op coverage and buffer sizes
do not depend on the weights), exports each size and variant with
``python -m export``'s library, and records the GPU verdict ``export.json``
holds: fully accelerated, ops on the GPU / total, whether it ran, and the
GPU-vs-CPU PSNR. On SwiftShader (no GPU) this is coverage and numerics, not
speed. Writes ``gpu_coverage.{md,json}`` with the machine and date.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS

_SIZES = flags.DEFINE_list("sizes", ["128x128", "256x256", "192x256", "512x512"], "HxW sizes to export.")
_VARIANTS = flags.DEFINE_list("variants", ["fp32", "fp16", "int8"], "Export variants.")
_MODELS = flags.DEFINE_list(
    "models", ["paper", "student"], "paper: StyleGenerator(ngf 64, 9 blocks); student: MobileStyleGenerator(alpha 2, 6 blocks)."
)
_OUTPUT = flags.DEFINE_string("output", "docs/results", "Where the table and JSON go (docs/results: the committed, generated record).")


def _model(kind: str):
    import keras
    import numpy as np

    from keras_asym.models.mobile import MobileStyleGenerator
    from keras_asym.models.networks import StyleGenerator

    keras.utils.set_random_seed(0)
    if kind == "student":
        return MobileStyleGenerator(alpha=2.0, n_blocks=6)
    model = StyleGenerator(ngf=64, n_blocks=9)
    model({"photo": np.zeros((1, 64, 64, 3), np.float32), "style": ONE_HOTS[:1]})
    rng = np.random.default_rng(0)
    for weight in model.weights:  # the official init_weights: conv weights N(0, 0.02), biases 0
        weight.assign(rng.normal(0, 0.02, weight.shape).astype(np.float32) if len(weight.shape) > 1 else np.zeros(weight.shape, np.float32))
    return model


def main(argv):
    del argv
    from edge_demo.runtime.gpu import GpuUnavailable, vulkan_device
    from export import exporter

    try:
        device = vulkan_device()
    except GpuUnavailable as err:
        print(f"gpu_coverage: error: {err}", file=sys.stderr)
        return cli.BAD_INPUT
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(kind, size) for kind in _MODELS.value for size in _SIZES.value]
        progress = Progress(len(jobs), "gpu_coverage", unit="exports", interval=0.0)
        for kind, size in jobs:
            height, width = exporter.parse_size(size)
            path = Path(tmp) / f"{kind}.keras"
            if not path.exists():
                _model(kind).save(path)
            summary = exporter.export_generator(
                path,
                Path(tmp) / f"{kind}_{size}",
                (height, width),
                tuple(_VARIANTS.value),
                calibration_count=4,
                per_op_report=False,
                log=lambda *a: None,
            )
            for variant, entry in summary["variants"].items():
                verdict = entry["gpu"]
                rows.append(
                    {
                        "model": kind,
                        "size": size,
                        "variant": variant,
                        **{
                            k: verdict.get(k)
                            for k in (
                                "fully_accelerated",
                                "ops_on_gpu",
                                "ops_total",
                                "unsupported_ops",
                                "ran",
                                "psnr_db_vs_cpu",
                                "error",
                                "reason",
                            )
                        },
                    }
                )
            progress.update(note=f"{kind} {size}")
    machine = {"device": device, "cpu": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d")}
    lines = [
        f"GPU accelerator coverage, {machine['date']}, {device}",
        "",
        "| model | size | variant | fully accelerated | ops on GPU / total | ran | GPU vs CPU PSNR dB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        psnr = "" if r["psnr_db_vs_cpu"] is None else f"{r['psnr_db_vs_cpu']:.1f}"
        ran = "yes" if r["ran"] else f"no: {r['error'] or r['reason']}"
        lines.append(
            f"| {r['model']} | {r['size']} | {r['variant']} | {r['fully_accelerated']} | {r['ops_on_gpu']} / {r['ops_total']} | {ran} | {psnr} |"
        )
    table = "\n".join(lines)
    print(table)
    output = Path(_OUTPUT.value)
    output.mkdir(parents=True, exist_ok=True)
    (output / "gpu_coverage.md").write_text(table + "\n")
    (output / "gpu_coverage.json").write_text(json.dumps({"machine": machine, "command": " ".join(sys.argv), "rows": rows}, indent=2))
    return cli.OK


if __name__ == "__main__":
    cli.run(main)
