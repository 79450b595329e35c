"""Quantization-aware fine-tuning against post-training int8, every op int8, on the same converter and calibration.

    python -m benchmarks.qat                                   # the reference generator and the unpaired one
    python -m benchmarks.qat --models g.keras --sizes 256 --steps 300

For each generator and size: the generator in the form a full-integer export ships (``export.balance.for_integer``:
norm inputs balanced and clipped), converted to full int8 by the converter calibrated on ``--calibration`` photos
(post-training, PTQ); then the same model fine-tuned through its int8 simulation (``export.qat_sim``: weights,
every tensor an int8 op writes, the instance norms' internal tensors) to reproduce its own float drawings of the
calibration photos, and converted by the same converter on the same photos (QAT). The held-out photos are never
trained on.

Quality is PSNR of the uint8 drawing against the float Keras drawing of the generator *as given* (the target a
user compares with), on ``--photos`` held-out photos, styles cycled, as ``benchmarks.quant_sensitivity`` scores
it. Rows also give the fine-tuned float model against that target (what fine-tuning moved the float function) and
the simulation's own int8 drawing against the converter's (how faithful the simulation is). The run of 2026-12-05
also holds, per row, ``tfmot``: the exporter's earlier ``qat`` (tensorflow-model-optimization in ``tf_keras``),
run beside this one on the same photos before this replaced it (docs/design.md, dependency decisions).
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
from absl import flags

from benchmarks.common import results
from benchmarks.common.heldout import photo_split
from benchmarks.common.reference import models_or_defaults
from benchmarks.common.sensitivity import Sensitivity
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.hashing import file_sha256
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import ONE_HOTS
from export import clip_search, tflite, variance_bias
from export.balance import CLIP_QUANTILE, for_integer
from export.qat_sim import LOSSES, QuantizationSimulation
from keras_asym.evaluation import metrics
from keras_asym.inference.keras_generator import load_generator
from keras_asym.utils.imageio import list_images

_MODELS = flags.DEFINE_list(
    "models", None, "Generator .keras files (default: the benchmarks' reference generator and benchmarks.unpaired_drawer's shipped G)."
)
_SIZES = flags.DEFINE_list("sizes", ["256"], "Square sizes.")
_PHOTOS = flags.DEFINE_integer("photos", 10, "Held-out photos scored.", lower_bound=1)
_CALIBRATION = flags.DEFINE_integer("calibration", 16, "Calibration photos, also the fine-tuning photos.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 300, "Fine-tuning steps.", lower_bound=1)
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", 3e-5, "LAMB learning rate of the fine-tuning: the step relative to each weight tensor's norm."
)
_RECALIBRATE = flags.DEFINE_integer("recalibrate_every", 50, "Steps between recalibrations of the simulation's ranges.", lower_bound=1)
_LOSS = flags.DEFINE_enum("loss", "l2", LOSSES, "Fine-tuning loss against the float drawing: mean absolute or squared difference.")
_CLIP = flags.DEFINE_string(
    "clip_quantile",
    f"{CLIP_QUANTILE:g}",
    "Share of each norm input kept unclipped, or 'auto': chosen per generator and size on the calibration photos "
    "(export.clip_search), post-training int8 at the default then scored beside it.",
)
_VARIANCE_BIAS = flags.DEFINE_boolean(
    "correct_variance_bias",
    True,
    "Also score PTQ and QAT with each norm's int8 variance bias given back (export.variance_bias; the exporter does "
    "it for int8, not after QAT): one more conversion each.",
)
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/qat.json).")


def _psnr(drawings: list[np.ndarray], references: list[np.ndarray]) -> float:
    return float(np.mean([metrics.psnr(d, r) for d, r in zip(drawings, references)]))


def _keras_drawings(model, photos: list[np.ndarray]) -> list[np.ndarray]:
    return [
        to_pixels(np.asarray(model({"photo": to_model(p)[None], "style": ONE_HOTS[i % 3][None]}, training=False))[0, ..., 0])
        for i, p in enumerate(photos)
    ]


def _tflite_drawings(path: Path, photos: list[np.ndarray]) -> list[np.ndarray]:
    runner = TFLiteGenerator(path, threads=2, probe=False)
    return [runner.draw(p, ONE_HOTS[i % 3]) for i, p in enumerate(photos)]


def _full_int8(model, size: int, calibration: list[np.ndarray], work: Path) -> Path:
    s = Sensitivity(model, size, calibration, work)
    return s.write(s.quantize(), "int8")


def _corrected(model, int8: Path, size: int, calibration: list[np.ndarray], work: Path) -> tuple[Path, dict]:
    """``model`` with the variance bias measured in its ``int8`` file in its epsilons, converted again."""
    summary = variance_bias.corrected(model, int8.read_bytes(), calibration)
    return _full_int8(model, size, calibration, work), summary


def analyse(model_path: Path, size: int, quality_dir: Path, calibration_dir: Path, work: Path) -> dict:
    started = time.perf_counter()
    calibration, calibration_source = tflite.calibration_photos(calibration_dir, size, size, _CALIBRATION.value)
    photos, photo_source = tflite.calibration_photos(quality_dir, size, size, _PHOTOS.value, seed=1)
    generator = load_generator(model_path)
    references = _keras_drawings(generator, photos)
    clip, search = clip_search.parse(_CLIP.value), {}
    if clip == clip_search.AUTO:
        # scored as this benchmark's post-training int8 is converted: the converter's ranges, no space-to-depth
        choice = clip_search.choose(generator, calibration, size, size, range_quantile=None, subpixel_convs=False)
        clip, search = choice.clip, {"clip_search": choice.scores}
        if clip != CLIP_QUANTILE:  # the contender: post-training int8 at the default clip
            default = _tflite_drawings(_full_int8(for_integer(generator, calibration), size, calibration, work / "default"), photos)
            search["ptq_default_clip_psnr_db"] = _psnr(default, references)
    model = for_integer(generator, calibration, clip)

    ptq_file = _full_int8(model, size, calibration, work / "ptq")
    ptq = _tflite_drawings(ptq_file, photos)
    sim = QuantizationSimulation(model)
    sim.calibrate(calibration)
    simulated = [to_pixels(d[..., 0]) for d in sim.drawings(photos, quantized=True)]
    row = {
        "clip_quantile": clip,
        **search,
        "ptq_psnr_db": _psnr(ptq, references),
        "float_form_psnr_db": _psnr(_keras_drawings(model, photos), references),
        "simulation_vs_converter_before_db": _psnr(simulated, ptq),
    }
    if _VARIANCE_BIAS.value:  # a copy corrected: QAT starts from the model as converted above, as the exporter's does
        copy = for_integer(generator, calibration, clip)
        path, _ = _corrected(copy, ptq_file, size, calibration, work / "ptq_corrected")
        row["ptq_corrected_psnr_db"] = _psnr(_tflite_drawings(path, photos), references)
    print(
        f"[{model_path.name} {size}] PTQ {row['ptq_psnr_db']:.2f} dB; simulation within {row['simulation_vs_converter_before_db']:.1f} dB",
        flush=True,
    )

    keras.utils.set_random_seed(0)
    record = sim.finetune(
        calibration,
        _STEPS.value,
        learning_rate=_LEARNING_RATE.value,
        recalibrate_every=_RECALIBRATE.value,
        loss=_LOSS.value,
        label=f"[{size}] qat",
    )
    qat_file = _full_int8(model, size, calibration, work / "qat")
    qat = _tflite_drawings(qat_file, photos)
    simulated = [to_pixels(d[..., 0]) for d in sim.drawings(photos, quantized=True)]
    row.update(
        {
            "qat_psnr_db": _psnr(qat, references),
            "qat_float_psnr_db": _psnr(_keras_drawings(model, photos), references),
            "simulation_vs_converter_after_db": _psnr(simulated, qat),
            "finetune": record,
        }
    )
    if _VARIANCE_BIAS.value:
        path, summary = _corrected(model, qat_file, size, calibration, work / "qat_corrected")
        row["qat_corrected_psnr_db"] = _psnr(_tflite_drawings(path, photos), references)
        row["variance_bias"] = summary
    print(f"[{model_path.name} {size}] QAT {row['qat_psnr_db']:.2f} dB (fine-tuned float {row['qat_float_psnr_db']:.2f} dB)", flush=True)
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
    record = {
        **results.header("qat", 2),
        "settings": {
            "photo_names": {
                "scored": sorted(p.name for p in list_images(quality_dir)),
                "calibration": sorted(p.name for p in list_images(calibration_dir)),
            },
            "clip_quantile": clip_search.parse(_CLIP.value),
            **{flag.name: flag.value for flag in (_PHOTOS, _CALIBRATION, _STEPS, _LEARNING_RATE, _RECALIBRATE, _LOSS, _VARIANCE_BIAS)},
        },
        "rows": [],
    }
    path = Path(_OUTPUT.value) if _OUTPUT.value else results.RESULTS / "qat.json"
    results.write_rows(record, path, models, [int(s) for s in _SIZES.value], analyse, quality_dir, calibration_dir)
    from benchmarks import report

    print(report.render_qat(record))
    return 0


if __name__ == "__main__":
    from edge_demo.runtime import cli

    cli.run(main)
