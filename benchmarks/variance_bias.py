"""Full int8 with each norm's variance bias given back through its epsilon (``export.variance_bias``), beside
plain post-training int8 on the same converter, calibration and clip.

    python -m benchmarks.variance_bias                  # the reference generator and benchmarks.unpaired_drawer's G, 256 and 512
    python -m benchmarks.variance_bias --models g.keras --sizes 512 --clip_quantile 0.9999

For each generator and size: the generator balanced and clipped (``export.balance``, ``--clip_quantile``),
converted to full int8 (every op int8) on the calibration photos; that file run on the calibration photos with
every tensor kept, each norm's bias measured and added to its epsilon, and the model converted again. Quality is
PSNR of the uint8 drawing (XNNPACK, as the camera demo runs it) against the float Keras drawing of the generator as
given, on held-out photos, styles cycled, as ``benchmarks.qat`` scores it. The corrected model in float is scored
too: it drifts, since its own float variance is not low.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks.common import results
from benchmarks.common.heldout import photo_split
from benchmarks.common.reference import models_or_defaults
from benchmarks.common.sensitivity import Sensitivity
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.hashing import file_sha256
from edge_demo.runtime.pixels import to_pixels
from edge_demo.runtime.styles import ONE_HOTS
from export import tflite, variance_bias
from export.balance import CLIP_QUANTILE, for_integer
from keras_asym.evaluation import metrics
from keras_asym.inference.keras_generator import load_generator

_MODELS = flags.DEFINE_list(
    "models", None, "Generator .keras files (default: the benchmarks' reference generator and benchmarks.unpaired_drawer's shipped G)."
)
_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square sizes.")
_PHOTOS = flags.DEFINE_integer("photos", 10, "Held-out photos scored.", lower_bound=1)
_CALIBRATION = flags.DEFINE_integer("calibration", 16, "Calibration photos, also the photos the bias is measured on.", lower_bound=1)
_CLIP = flags.DEFINE_float(
    "clip_quantile",
    0.999,
    f"Share of each balanced norm input kept unclipped (the exporter's default: {CLIP_QUANTILE:g}; 0.999 is what its "
    "clip search chose for the unpaired G at both sizes).",
    lower_bound=0.5,
    upper_bound=1.0,
)
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/variance_bias.json).")


def _pixels(model, photos: list[np.ndarray]) -> list[np.ndarray]:
    return [to_pixels(d[..., 0]) for d in tflite.keras_drawings(model, photos)]


def _psnr(drawings: list[np.ndarray], references: list[np.ndarray]) -> float:
    return float(np.mean([metrics.psnr(d, r) for d, r in zip(drawings, references)]))


def _int8_drawings(flatbuffer: bytes, work: Path, photos: list[np.ndarray]) -> list[np.ndarray]:
    path = work / "int8.tflite"
    path.write_bytes(flatbuffer)
    runner = TFLiteGenerator(path, threads=2, probe=False)
    return [runner.draw(p, ONE_HOTS[i % 3]) for i, p in enumerate(photos)]


def analyse(model_path: Path, size: int, quality_dir: Path, calibration_dir: Path, work: Path) -> dict:
    started = time.perf_counter()
    calibration, calibration_source = tflite.calibration_photos(calibration_dir, size, size, _CALIBRATION.value)
    photos, photo_source = tflite.calibration_photos(quality_dir, size, size, _PHOTOS.value, seed=1)
    generator = load_generator(model_path)
    references = _pixels(generator, photos)
    model = for_integer(generator, calibration, _CLIP.value)
    plain = Sensitivity(model, size, calibration, work / "plain").quantize()
    row = {
        "ptq_psnr_db": _psnr(_int8_drawings(plain, work / "plain", photos), references),
        "float_form_psnr_db": _psnr(_pixels(model, photos), references),
    }
    summary = variance_bias.corrected(model, plain, calibration)
    fixed = Sensitivity(model, size, calibration, work / "corrected").quantize()
    row.update(
        {
            "corrected_psnr_db": _psnr(_int8_drawings(fixed, work / "corrected", photos), references),
            "corrected_float_form_psnr_db": _psnr(_pixels(model, photos), references),
            **summary,
        }
    )
    print(
        f"[{model_path.name} {size}] full int8 {row['ptq_psnr_db']:.2f} dB, variance bias corrected {row['corrected_psnr_db']:.2f} dB",
        flush=True,
    )
    return {
        "model": results.model_name(model_path),
        "model_sha256": file_sha256(model_path),
        "size": size,
        "photos": photo_source,
        "calibration": calibration_source,
        **row,
        "seconds": time.perf_counter() - started,
    }


def main(argv):
    del argv
    quality_dir, calibration_dir = photo_split(_PHOTOS.value, Path("benchmarks/results/photo_split"))
    models = models_or_defaults(_MODELS.value, calibration_dir)
    record = {**results.header("variance_bias", 2), "clip_quantile": _CLIP.value, "rows": []}
    path = Path(_OUTPUT.value) if _OUTPUT.value else results.RESULTS / "variance_bias.json"
    results.write_rows(record, path, models, [int(s) for s in _SIZES.value], analyse, quality_dir, calibration_dir)
    from benchmarks import report  # lazy: the report module reads every results file; only needed to print

    print(report.render_variance_bias(record))
    return 0


if __name__ == "__main__":
    from edge_demo.runtime import cli

    cli.run(main)
