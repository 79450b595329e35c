"""One full-integer file on two int8 runtimes, and QAT's simulation beside them: how far apart their drawings lie.

    python -m benchmarks.int8_runtimes                  # the reference generator and benchmarks.unpaired_drawer's G, 256 and 512
    python -m benchmarks.int8_runtimes --models g.keras --sizes 256 --clip_quantile 0.9999

For each generator and size: the generator balanced and clipped (``export.balance``, ``--clip_quantile``), converted
once to full int8 (every op int8, calibrated on the calibration photos), then run by XNNPACK (what the other
benchmarks time and the camera demo runs) and by TensorFlow Lite's built-in int8 kernels with no delegate (the
portable arithmetic other accelerators re-implement), and simulated by ``export.qat_sim`` (what QAT trains through).
PSNR of every pair, and of each against the float drawing of the generator as given, on held-out photos, styles
cycled. If two runtimes of one file lie as far from each other as from float, their rounding errors are
independent: no simulation can reproduce "the" converter's error, and QAT can only make the generator withstand
int8 rounding in general.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from absl import flags
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from benchmarks.common import results
from benchmarks.common.heldout import photo_split
from benchmarks.common.reference import models_or_defaults
from benchmarks.common.sensitivity import Sensitivity
from edge_demo.runtime.hashing import file_sha256
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import ONE_HOTS
from export import tflite
from export.balance import CLIP_QUANTILE, for_integer
from export.qat_sim import QuantizationSimulation
from keras_asym.evaluation import metrics
from keras_asym.inference.keras_generator import load_generator

RUNTIMES = {"xnnpack": OpResolverType.AUTO, "reference kernels": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}

_MODELS = flags.DEFINE_list(
    "models", None, "Generator .keras files (default: the benchmarks' reference generator and benchmarks.unpaired_drawer's shipped G)."
)
_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square sizes.")
_PHOTOS = flags.DEFINE_integer("photos", 10, "Held-out photos scored.", lower_bound=1)
_CALIBRATION = flags.DEFINE_integer("calibration", 16, "Calibration photos.", lower_bound=1)
_CLIP = flags.DEFINE_float(
    "clip_quantile",
    0.999,
    f"Share of each balanced norm input kept unclipped (the exporter's default: {CLIP_QUANTILE:g}).",
    lower_bound=0.5,
    upper_bound=1.0,
)
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/int8_runtimes.json).")


def _run(flatbuffer: bytes, resolver: OpResolverType, photos: list[np.ndarray]) -> list[np.ndarray]:
    runner = Interpreter(model_content=flatbuffer, experimental_op_resolver_type=resolver, num_threads=2).get_signature_runner()
    return [to_pixels(runner(photo=to_model(p)[None], style=ONE_HOTS[i % 3][None])["drawing"][0, ..., 0]) for i, p in enumerate(photos)]


def analyse(model_path: Path, size: int, quality_dir: Path, calibration_dir: Path, work: Path) -> dict:
    started = time.perf_counter()
    calibration, calibration_source = tflite.calibration_photos(calibration_dir, size, size, _CALIBRATION.value)
    photos, photo_source = tflite.calibration_photos(quality_dir, size, size, _PHOTOS.value, seed=1)
    generator = load_generator(model_path)
    drawings = {
        "float": [
            to_pixels(np.asarray(generator({"photo": to_model(p)[None], "style": ONE_HOTS[i % 3][None]}, training=False))[0, ..., 0])
            for i, p in enumerate(photos)
        ]
    }
    model = for_integer(generator, calibration, _CLIP.value)
    flatbuffer = Sensitivity(model, size, calibration, work).quantize()
    for name, resolver in RUNTIMES.items():
        drawings[name] = _run(flatbuffer, resolver, photos)
    sim = QuantizationSimulation(model)
    sim.calibrate(calibration)
    drawings["simulation"] = [to_pixels(d[..., 0]) for d in sim.drawings(photos, quantized=True)]
    names = list(drawings)
    pairs = {
        f"{a} vs {b}": float(np.mean([metrics.psnr(x, y) for x, y in zip(drawings[a], drawings[b])]))
        for i, b in enumerate(names)
        for a in names[i + 1 :]
    }
    print(f"[{model_path.name} {size}] " + "; ".join(f"{k} {v:.1f} dB" for k, v in pairs.items()), flush=True)
    return {
        "model": results.model_name(model_path),
        "model_sha256": file_sha256(model_path),
        "size": size,
        "photos": photo_source,
        "calibration": calibration_source,
        "psnr_db": pairs,
        "seconds": time.perf_counter() - started,
    }


def main(argv):
    del argv
    quality_dir, calibration_dir = photo_split(_PHOTOS.value, Path("benchmarks/results/photo_split"))
    models = models_or_defaults(_MODELS.value, calibration_dir)
    record = {**results.header("int8_runtimes", 2), "clip_quantile": _CLIP.value, "runtimes": list(RUNTIMES), "rows": []}
    path = Path(_OUTPUT.value) if _OUTPUT.value else results.RESULTS / "int8_runtimes.json"
    results.write_rows(record, path, models, [int(s) for s in _SIZES.value], analyse, quality_dir, calibration_dir)
    from benchmarks import report  # lazy: the report module reads every results file; only needed to print

    print(report.render_int8_runtimes(record))
    return 0


if __name__ == "__main__":
    from edge_demo.runtime import cli

    cli.run(main)
