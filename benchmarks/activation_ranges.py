"""Full int8 with each activation range at a quantile of the calibration photos' values, beside the calibrator's
extremes (``export.activation_ranges``), through the exporter itself.

    python -m benchmarks.activation_ranges                  # the reference generator and benchmarks.unpaired_drawer's G, 256 and 512
    python -m benchmarks.activation_ranges --models g.keras --sizes 512 --clip_quantile auto

For each generator and size, ``export`` writes the ``int8`` file (every op int8; norm inputs balanced and clipped at
``--clip_quantile``; the variance-bias correction on, as by default) twice on the calibration photos: with the
converter's ranges (``--range_quantile 1``) and with the quantile its search keeps (``auto``, chosen on the
calibration photos). Each file is scored on held-out photos: PSNR of its uint8 drawing (XNNPACK, as the camera demo
runs it) against the float Keras drawing of the generator as given, styles cycled, as ``benchmarks.variance_bias``
scores. So that the choice can be checked against what it could not see, every candidate quantile is scored on the
held-out photos too, on one calibration of the balanced and clipped generator, before the correction.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks.common import results
from benchmarks.common.heldout import photo_split
from benchmarks.common.reference import models_or_defaults
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.hashing import file_sha256
from edge_demo.runtime.pixels import to_pixels
from edge_demo.runtime.styles import ONE_HOTS
from export import activation_ranges, clip_search, exporter, savedmodel, tflite
from export.balance import for_integer
from keras_asym.evaluation import metrics
from keras_asym.inference.keras_generator import load_generator

_MODELS = flags.DEFINE_list(
    "models", None, "Generator .keras files (default: the benchmarks' reference generator and benchmarks.unpaired_drawer's shipped G)."
)
_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square sizes.")
_PHOTOS = flags.DEFINE_integer("photos", 10, "Held-out photos scored.", lower_bound=1)
_CALIBRATION = flags.DEFINE_integer("calibration", 16, "Calibration photos (the search scores on them too).", lower_bound=1)
_CLIP = flags.DEFINE_string(
    "clip_quantile", "0.999", "The norm inputs' clip (export --clip_quantile; 0.999 is what its clip search chose for the unpaired G)."
)
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/activation_ranges.json).")


def _psnr(path: Path, photos: list[np.ndarray], references: list[np.ndarray]) -> float:
    runner = TFLiteGenerator(path, threads=2, probe=False)
    return float(np.mean([metrics.psnr(runner.draw(p, ONE_HOTS[i % 3]), r) for i, (p, r) in enumerate(zip(photos, references))]))


def analyse(model_path: Path, size: int, quality_dir: Path, calibration_dir: Path, work: Path) -> dict:
    started = time.perf_counter()
    photos, photo_source = tflite.calibration_photos(quality_dir, size, size, _PHOTOS.value, seed=1)
    calibration, calibration_source = tflite.calibration_photos(calibration_dir, size, size, _CALIBRATION.value)
    generator = load_generator(model_path)
    references = [to_pixels(d[..., 0]) for d in tflite.keras_drawings(generator, photos)]
    clip = clip_search.parse(_CLIP.value)
    row = {"model": results.model_name(model_path), "model_sha256": file_sha256(model_path), "size": size}
    exports = {}
    for label, quantile in (("extremes", activation_ranges.EXTREMES), ("chosen", activation_ranges.AUTO)):
        summary = exporter.export_generator(
            model_path,
            work / label,
            size=(size, size),
            variants=("int8",),
            calibration_dir=calibration_dir,
            calibration_count=_CALIBRATION.value,
            per_op_report=False,
            gpu_check="off",
            clip_quantile=clip,
            range_quantile=quantile,
            log=lambda line, label=label: print(f"[{model_path.name} {size} {label}] {line}", flush=True),
        )
        exports[label] = summary
        row[f"{label}_psnr_db"] = _psnr(work / label / summary["variants"]["int8"]["file"], photos, references)
    ranges = _sidecar(work / "chosen", "activation_ranges")
    row.update(
        {
            "clip_quantile": exports["chosen"].get("clip_search", {}).get("chosen", clip),
            "chosen_quantile": ranges["quantile"],
            "calibration_psnr_db": ranges["int8_psnr_db_on_calibration"],
        }
    )
    # Every candidate on the held-out photos, on one calibration of the balanced and clipped generator (without the
    # exporter's space-to-depth rewrite, whose int8 rounding differs slightly: these columns check the search's choice).
    integer = savedmodel.save_savedmodel(for_integer(generator, calibration, row["clip_quantile"]), work / "integer", size, size, batch=1)
    candidates = activation_ranges.Calibration(integer, calibration, "uint8")
    held_out = {}
    for quantile in activation_ranges.CANDIDATES:
        path = work / f"candidate_{quantile:g}.tflite"
        path.write_bytes(candidates.quantize(quantile))
        held_out[f"{quantile:g}"] = _psnr(path, photos, references)
    row["held_out_psnr_db_uncorrected"] = held_out
    print(
        f"[{model_path.name} {size}] full int8, variance bias corrected: ranges at the extremes {row['extremes_psnr_db']:.2f} dB, "
        f"at quantile {row['chosen_quantile']:g} {row['chosen_psnr_db']:.2f} dB",
        flush=True,
    )
    return {**row, "photos": photo_source, "calibration": calibration_source, "seconds": time.perf_counter() - started}


def _sidecar(folder: Path, key: str) -> dict:
    return json.loads((folder / "drawing_int8.json").read_text())[key]


def main(argv):
    del argv
    quality_dir, calibration_dir = photo_split(_PHOTOS.value, Path("benchmarks/results/photo_split"))
    models = models_or_defaults(_MODELS.value, calibration_dir)
    record = {**results.header("activation_ranges", 2), "clip_quantile": _CLIP.value, "rows": []}
    path = Path(_OUTPUT.value) if _OUTPUT.value else results.RESULTS / "activation_ranges.json"
    results.write_rows(record, path, models, [int(s) for s in _SIZES.value], analyse, quality_dir, calibration_dir)
    from benchmarks import report  # lazy: the report module reads every results file; only needed to print

    print(report.render_activation_ranges(record))
    return 0


if __name__ == "__main__":
    from edge_demo.runtime import cli

    cli.run(main)
