"""Where a full-integer export clips the norm inputs, chosen per generator and size on the calibration photos.

The clip (``export.balance``) trades two errors: a lower quantile cuts more of each norm input's tail (the float
drawing itself moves), a higher one spreads int8's 256 levels over rare peaks (every typical value rounds more
coarsely). Which wins depends on the generator and the size, so ``choose`` converts the generator at each
candidate, runs each int8 model on the calibration photos and keeps the quantile whose drawings come closest to
the float generator's drawings of those photos. Held-out photos are never looked at (``benchmarks.qat`` scores the
choice on them).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np

from export import savedmodel, tflite
from export.balance import CLIP_QUANTILE, for_integer

AUTO = "auto"
# From no clip worth the name to one that visibly cuts lines (the float drawing ~36 dB from the unclipped one).
CANDIDATES = (CLIP_QUANTILE, 0.9995, 0.999, 0.998)


def parse(value: str | float) -> float | str:
    """``"auto"`` or a quantile in (0, 1]; raises ``ValueError`` naming the value otherwise."""
    return tflite.parse_quantile(value, "clip quantile")


def choose(
    generator: keras.Model,
    photos: list[np.ndarray],
    height: int,
    width: int,
    io_type: str = "uint8",
    candidates: tuple[float, ...] = CANDIDATES,
    log=print,
) -> tuple[float, dict[str, float]]:
    """Returns the best quantile and each candidate's PSNR (dB, int8 drawing against float, on ``photos`` at the
    export size, styles cycled); ties go to the earlier (higher) candidate."""
    reference = tflite.keras_drawings(generator, photos)
    scores: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="clip_") as tmp:
        for k, quantile in enumerate(candidates):
            saved = savedmodel.save_savedmodel(for_integer(generator, photos, quantile), Path(tmp) / f"c{k}", height, width, batch=1)
            converted = tflite.convert(saved, "int8", photos, io_type)
            scores[f"{quantile:g}"] = tflite.drawing_psnr(converted, photos, reference, Path(tmp) / f"c{k}.tflite")
            log(f"clip search: quantile {quantile:g}: int8 {scores[f'{quantile:g}']:.2f} dB on {len(photos)} calibration photos")
    return tflite.best_candidate(candidates, scores), scores
