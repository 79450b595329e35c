"""Quantization-aware fine-tuning, the ``qat`` variant: full integer like ``int8``, from weights fine-tuned for it.

The generator, in the form ``int8`` converts (``export.balance.for_integer``), is fine-tuned through its int8
simulation (``export.qat_sim``: kernels, every tensor an int8 op writes, the instance norms' internal tensors) to
reproduce its own float drawings of the calibration photos, and then converted by the same converter on the same
photos. It runs in this process, in Keras 3, at the export size. ``benchmarks.qat`` measures it against
post-training int8.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from export import activation_ranges, savedmodel, subpixel
from export.balance import CLIP_QUANTILE, for_integer
from export.qat_sim import QuantizationSimulation
from keras_asym.inference.keras_generator import load_generator


def run_qat(
    model_path: str | Path,
    height: int,
    width: int,
    photos: list[np.ndarray],
    io_type: str = "uint8",
    steps: int = 300,
    batch_size: int = 1,
    learning_rate: float = 3e-5,
    balance_norms: bool = True,
    clip_quantile: float = CLIP_QUANTILE,
    subpixel_convs: bool = True,
    log=print,
) -> tuple[dict[str, bytes], dict]:
    """Returns ``({"qat": full-integer flatbuffer}, {"qat": record})``; photos are at the export size."""
    started = time.perf_counter()
    model = for_integer(load_generator(model_path), photos if balance_norms else None, clip_quantile)
    record = QuantizationSimulation(model).finetune(photos, steps, learning_rate=learning_rate, batch_size=batch_size, label="qat")
    with tempfile.TemporaryDirectory(prefix="qat_") as tmp:
        # the fine-tuned weights, converted with the stem, head and upsampling on space-to-depth maps (export.subpixel)
        spaced, spaced_names = subpixel.for_speed(model) if subpixel_convs else (model, [])
        saved = savedmodel.save_savedmodel(spaced, Path(tmp) / "savedmodel", height, width, batch=1)
        # the calibrator's ranges, but for those XNNPACK could not take (export.activation_ranges.delegable)
        converted = activation_ranges.Calibration(saved, photos, io_type, (activation_ranges.EXTREMES,)).quantize()
    log(f"qat: {steps} steps at {height}x{width}, simulated int8 error (mean squared) {record['first']:.5f} -> {record['last']:.5f}")
    return {"qat": converted}, {
        "qat": {
            **record,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "norm_inputs_balanced": balance_norms,
            "norm_inputs_clipped_at": clip_quantile if balance_norms else None,
            "subpixel_layers": spaced_names,
            "seconds": round(time.perf_counter() - started, 1),
        }
    }
