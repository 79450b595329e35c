"""Where a full-integer export clips the norm inputs, chosen per generator and size on the calibration photos.

The clip (``export.balance``) trades two errors: a lower quantile cuts more of each norm input's tail (the float
drawing itself moves), a higher one spreads int8's 256 levels over rare peaks (every typical value rounds more
coarsely). Which wins depends on the generator, the size and what the rest of the export does to those peaks: the
activation ranges set at a quantile (``export.activation_ranges``) clip them too, so a clip chosen on the
converter's own ranges can be too low for the file that ships (measured: the unpaired G at 256² chose 0.998 that
way and drew 1 dB further from float than at the default clip). ``choose`` therefore converts the generator at
each candidate in the form the exporter ships (space-to-depth convolutions, activation ranges searched as
``--range_quantile`` says), runs each int8 model on the calibration photos and keeps the clip whose drawings come
closest to the float generator's drawings of those photos. Held-out photos are never looked at (``benchmarks.qat``
and ``benchmarks.inference`` score the choice on them).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from export import activation_ranges, savedmodel, subpixel, tflite
from export.balance import CLIP_QUANTILE, for_integer

AUTO = "auto"
# From no clip worth the name to one that visibly cuts lines (the float drawing ~36 dB from the unclipped one).
CANDIDATES = (CLIP_QUANTILE, 0.9995, 0.999, 0.998)


@dataclass
class Choice:
    """The search's outcome: the chosen ``clip``, each candidate's ``scores`` (PSNR in dB, keyed ``f"{clip:g}"``) and
    activation ``ranges`` (``{"quantile": q}``, with each range candidate's PSNR where they were searched), and the
    chosen clip's integer generator as converted (``model``, ``subpixel_layers``) with its ``calibration`` (None where
    the converter's own ranges were scored), kept so that the exporter neither builds nor calibrates it again."""

    clip: float
    scores: dict[str, float]
    ranges: dict[str, dict]
    model: keras.Model
    subpixel_layers: list
    calibration: activation_ranges.Calibration | None


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
    range_quantile: float | str | None = activation_ranges.AUTO,
    subpixel_convs: bool = True,
    log=print,
) -> Choice:
    """Scores each candidate clip by its int8 drawings of ``photos`` against float at the export size (styles
    cycled; ties go to the earlier, higher candidate).

    ``range_quantile`` and ``subpixel_convs`` are the exporter's options; ``range_quantile=None`` scores the
    converter's own full-int8 conversion instead (``export.tflite.convert``)."""
    reference = tflite.keras_drawings(generator, photos)
    scores: dict[str, float] = {}
    ranges: dict[str, dict] = {}
    best = None
    with tempfile.TemporaryDirectory(prefix="clip_") as tmp:
        for k, quantile in enumerate(candidates):
            integer, spaced = for_integer(generator, photos, quantile), []
            if subpixel_convs:
                integer, spaced = subpixel.for_speed(integer)
            calibration = None
            saved = savedmodel.save_savedmodel(integer, Path(tmp) / f"c{k}", height, width, batch=1)
            label = f"{quantile:g}"
            if range_quantile is None:
                scores[label] = tflite.drawing_psnr(
                    tflite.convert(saved, "int8", photos, io_type), photos, reference, Path(tmp) / "c.tflite"
                )
            else:
                search = range_quantile == activation_ranges.AUTO
                calibration = activation_ranges.Calibration(
                    saved, photos, io_type, activation_ranges.CANDIDATES if search else (range_quantile,)
                )
                if search:
                    chosen, by_range = activation_ranges.choose(calibration, photos, reference, Path(tmp), log=lambda *a: None)
                    ranges[label] = {"quantile": chosen, "int8_psnr_db_on_calibration": by_range}
                    scores[label] = by_range[f"{chosen:g}"]
                else:
                    ranges[label] = {"quantile": range_quantile}
                    scores[label] = tflite.drawing_psnr(calibration.quantize(range_quantile), photos, reference, Path(tmp) / "c.tflite")
            log(
                f"clip search: quantile {label}: int8 {scores[label]:.2f} dB on {len(photos)} calibration photos"
                + (f" (activation ranges at {ranges[label]['quantile']:g})" if label in ranges else "")
            )
            if best is None or scores[label] > best.scores[f"{best.clip:g}"]:  # strictly: ties stay with the earlier
                best = Choice(quantile, scores, ranges, integer, spaced, calibration)
    return best
