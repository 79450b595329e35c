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

from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.styles import ONE_HOTS
from export import savedmodel, tflite
from export.balance import CLIP_QUANTILE, for_integer
from keras_asym.evaluation.metrics import psnr

AUTO = "auto"
# From no clip worth the name to one that visibly cuts lines (the float drawing ~36 dB from the unclipped one).
CANDIDATES = (CLIP_QUANTILE, 0.9995, 0.999, 0.998)


def parse(value: str | float) -> float | str:
    """``"auto"`` or a quantile in (0, 1]; raises ``ValueError`` naming the value otherwise."""
    if value == AUTO:
        return AUTO
    try:
        quantile = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"clip quantile must be 'auto' or a number in (0, 1], got {value!r}.") from None
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"clip quantile must be 'auto' or a number in (0, 1], got {value!r}.")
    return quantile


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
            path = Path(tmp) / f"c{k}.tflite"
            path.write_bytes(tflite.convert(saved, "int8", photos, io_type))
            runner = TFLiteGenerator(path, threads=2, probe=False)
            outputs = [runner.run(to_model(p), ONE_HOTS[i % 3]) for i, p in enumerate(photos)]
            scores[f"{quantile:g}"] = float(np.mean([psnr(o, r, peak=2.0) for o, r in zip(outputs, reference)]))
            log(f"clip search: quantile {quantile:g}: int8 {scores[f'{quantile:g}']:.2f} dB on {len(photos)} calibration photos")
    best = max(candidates, key=lambda q: (scores[f"{q:g}"], -candidates.index(q)))
    return best, scores
