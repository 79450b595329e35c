"""Where a full-integer export clips the norm inputs, chosen per generator and size on the calibration photos.

The clip (``export.balance``) trades two errors: a lower quantile cuts more of each norm input's tail (the float
drawing itself moves), a higher one spreads int8's 256 levels over rare peaks (every typical value rounds more
coarsely). Which wins depends on the generator, the size and what the rest of the export does to those peaks: the
activation ranges set at a quantile (``export.activation_ranges``) clip them too, so a clip chosen on the
converter's own ranges can be too low for the file that ships (measured: the unpaired G at 256² chose 0.998 that
way and drew 1 dB further from float than at the default clip). ``choose`` therefore converts the generator at
each candidate in the form the exporter ships (space-to-depth convolutions, activation ranges searched as
``--range_quantile`` says, each norm's int8 variance bias corrected as ``--correct_variance_bias`` says), runs each
int8 model on the calibration photos and keeps the clip whose drawings come closest to the float generator's
drawings of those photos. The correction moves the optimum: on the unpaired G at 512² it gained 1.25 dB at 0.999
and 1.63 dB at 0.9995, so scoring before it kept 0.999, whose file drew 29.87 dB from fp32 on held-out photos where
the clip kept when scoring as shipped drew 30.16 dB (``docs/results/inference_unpaired_g*.json``). After the grid,
one more clip is tried between the best candidate and its better neighbour, since the best clip can lie between grid
points a factor of two apart (that G at 512² kept 0.99929, between 0.9995 and 0.999). Held-out photos are never looked at (``benchmarks.qat`` and
``benchmarks.inference`` score the choice on them).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from export import activation_ranges, savedmodel, subpixel, tflite, variance_bias
from export.balance import CLIP_QUANTILE, for_integer

AUTO = "auto"
# From no clip worth the name to one that visibly cuts lines (the float drawing ~36 dB from the unclipped one).
CANDIDATES = (CLIP_QUANTILE, 0.9995, 0.999, 0.998)


@dataclass
class Choice:
    """One clip converted as the exporter ships it, or the search's outcome: the chosen ``clip``, each candidate's
    ``scores`` (PSNR in dB, keyed ``f"{clip:g}"``) and activation ``ranges`` (``{"quantile": q}``, with each range
    candidate's PSNR where they were searched, and the PSNR before the variance correction where corrected), and
    the chosen clip's integer generator (``model``, ``subpixel_layers``; its epsilons corrected where
    ``variance_bias`` says so), its SavedModel before the correction (``saved``) and the one int8 is converted from
    (``shipped``), with that one's ``calibration`` (None where the converter's own ranges were scored): kept so that
    the exporter neither builds nor calibrates it again."""

    clip: float
    scores: dict[str, float]
    ranges: dict[str, dict]
    model: keras.Model
    subpixel_layers: list
    saved: Path
    shipped: Path
    calibration: activation_ranges.Calibration | None
    variance_bias: dict | None


def parse(value: str | float) -> float | str:
    """``"auto"`` or a quantile in (0, 1]; raises ``ValueError`` naming the value otherwise."""
    return tflite.parse_quantile(value, "clip quantile")


def refined(candidates: tuple[float, ...], scores: dict[str, float]) -> float | None:
    """A clip between the best-scoring candidate and its better-scoring neighbour on the quantile axis: the geometric
    mean of their tail shares (to two significant digits); None with fewer than two candidates or where it was
    scored already."""
    order = sorted(set(candidates), reverse=True)
    if len(order) < 2:
        return None
    best = tflite.best_candidate(candidates, scores)
    at = order.index(best)
    neighbour = max((order[i] for i in (at - 1, at + 1) if 0 <= i < len(order)), key=lambda q: scores[f"{q:g}"])
    tail = math.sqrt((1.0 - best) * (1.0 - neighbour))
    quantile = round(1.0 - float(f"{tail:.2g}"), 12)
    if not min(best, neighbour) < quantile < max(best, neighbour):  # candidates too close for two digits
        quantile = 1.0 - tail
    return None if f"{quantile:g}" in scores else quantile


def _convert(
    generator, photos, reference, quantile, folder: Path, *, height, width, io_type, range_quantile, subpixel_convs, correct
) -> Choice:
    """``generator`` at one clip, converted as shipped and scored on ``photos``."""
    label = f"{quantile:g}"
    folder.mkdir(parents=True, exist_ok=True)
    integer, spaced = for_integer(generator, photos, quantile), []
    if subpixel_convs:
        integer, spaced = subpixel.for_speed(integer)
    saved = shipped = savedmodel.save_savedmodel(integer, folder / "integer", height, width, batch=1)
    calibration, ranges, corrected = None, {}, None
    if range_quantile is None:
        score = tflite.drawing_psnr(tflite.convert(saved, "int8", photos, io_type), photos, reference, folder / "c.tflite")
        return Choice(quantile, {label: score}, ranges, integer, spaced, saved, shipped, calibration, corrected)
    search = range_quantile == activation_ranges.AUTO
    calibration = activation_ranges.Calibration(saved, photos, io_type, activation_ranges.CANDIDATES if search else (range_quantile,))
    if search:
        chosen, by_range = activation_ranges.choose(calibration, photos, reference, folder, log=lambda *a: None)
        ranges[label] = {"quantile": chosen, "int8_psnr_db_on_calibration": by_range}
        score = by_range[f"{chosen:g}"]
    else:
        chosen = range_quantile
        ranges[label] = {"quantile": chosen}
        score = tflite.drawing_psnr(calibration.quantize(chosen), photos, reference, folder / "c.tflite")
    if correct:  # measured in the file at the chosen ranges, as the exporter would; corrected, calibrated again
        corrected = variance_bias.corrected(integer, calibration.quantize(chosen), photos)
        if corrected["norms_corrected"]:
            shipped = savedmodel.save_savedmodel(integer, folder / "corrected", height, width, batch=1)
            calibration = activation_ranges.Calibration(shipped, photos, io_type, (chosen,))
            ranges[label]["int8_psnr_db_before_variance_correction"] = score
            score = tflite.drawing_psnr(calibration.quantize(chosen), photos, reference, folder / "c.tflite")
    return Choice(quantile, {label: score}, ranges, integer, spaced, saved, shipped, calibration, corrected)


def choose(
    generator: keras.Model,
    photos: list[np.ndarray],
    height: int,
    width: int,
    io_type: str = "uint8",
    candidates: tuple[float, ...] | None = None,
    range_quantile: float | str | None = activation_ranges.AUTO,
    subpixel_convs: bool = True,
    correct_variance_bias: bool = False,
    refine: bool = True,
    work: str | Path | None = None,
    log=print,
) -> Choice:
    """Scores each candidate clip (and, with ``refine``, one more: ``refined``) by its int8 drawings of ``photos``
    against float at the export size (styles cycled; ties go to the candidate scored first).

    ``range_quantile``, ``subpixel_convs`` and ``correct_variance_bias`` are the exporter's options for ``int8``;
    ``range_quantile=None`` scores the converter's own full-int8 conversion instead (``export.tflite.convert``), not
    corrected. Every candidate's SavedModels are written under ``work``; without one they are deleted on return, and
    the returned ``saved`` and ``shipped`` paths no longer exist. ``candidates`` defaults to ``CANDIDATES``."""
    candidates = CANDIDATES if candidates is None else candidates
    if not candidates:
        raise ValueError("clip search: no candidate clips.")
    reference = tflite.keras_drawings(generator, photos)
    scores: dict[str, float] = {}
    ranges: dict[str, dict] = {}
    best = None
    with contextlib.ExitStack() as stack:
        root = Path(work) if work is not None else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clip_")))
        tried = list(candidates)
        for k, quantile in enumerate(tried):
            found = _convert(
                generator, photos, reference, quantile, root / f"c{k}", height=height, width=width, io_type=io_type,
                range_quantile=range_quantile, subpixel_convs=subpixel_convs,
                correct=correct_variance_bias and range_quantile is not None,
            )  # fmt: skip
            scores.update(found.scores)
            ranges.update(found.ranges)
            label = f"{quantile:g}"
            log(
                f"clip search: quantile {label}: int8 {scores[label]:.2f} dB on {len(photos)} calibration photos"
                + (f" (activation ranges at {ranges[label]['quantile']:g})" if label in ranges else "")
                + (" after the variance correction" if found.variance_bias and found.variance_bias["norms_corrected"] else "")
            )
            if best is None or scores[label] > scores[f"{best.clip:g}"]:  # strictly: ties stay with the earlier
                best = found
            if refine and k == len(candidates) - 1 and (between := refined(candidates, scores)) is not None:
                tried.append(between)
    best.scores, best.ranges = scores, ranges
    return best
