"""Feature hints: the teacher's bottleneck features as a second target for the student (FitNets, Romero et al. 2015).

A drawing gives the student one number a pixel to learn the teacher from; the teacher's features where it decides
what to draw (after its residual blocks, 256 channels at 1/4 resolution for the paper's G) give hundreds for every
8x8 block. ``distill --feature_weight`` asks the student's own bottleneck, through a 1x1 convolution used only in
training, for those features average-pooled to 1/8 resolution and standardised per channel (a student whose
bottleneck is finer, ``--bottleneck_stride 4``, is pooled to 1/8 alike: one cache serves both).
"""

from __future__ import annotations

import keras
import numpy as np

STUDENT_STRIDE = 8  # the cached features' grid: MobileStyleGenerator's default bottleneck, three stride-2 convolutions


def _probe_sizes(model: keras.Model, probe: int) -> list[tuple]:
    """The input sizes to probe a generator at: its fixed size, or ``probe`` and twice that."""
    fixed = tuple(model.input["photo"].shape[1:3])
    return [fixed] if None not in fixed else [(probe, probe), (2 * probe, 2 * probe)]


def _heights(model: keras.Model, outputs: list, size: tuple) -> list[int]:
    """The heights of ``outputs`` (tensors of ``model``'s graph) for a blank photo of ``size``."""
    style = np.full((1, model.input["style"].shape[-1]), 1 / 3, np.float32)
    maps = keras.Model(model.inputs, outputs)({"photo": np.zeros((1, *size, 3), np.float32), "style": style})
    return [int(m.shape[1]) for m in maps]


def bottleneck_layer(model: keras.Model, probe: int = 64) -> str:
    """The name of the last layer at a functional generator's coarsest resolution (its residual blocks' output):
    found by running ``probe`` and twice that, so maps pooled to a fixed size (a global context's) are not taken; a
    generator of fixed input size runs at that size once."""
    candidates = []
    for layer in model.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):  # an input layer, or a layer called more than once
            continue
        if getattr(output, "shape", None) is not None and len(output.shape) == 4:
            candidates.append(layer)
    if not candidates:
        raise ValueError(f"{model.name}: no image-shaped layer output to take features from.")
    heights = [_heights(model, [layer.output for layer in candidates], size) for size in _probe_sizes(model, probe)]
    if len(heights) == 1:  # a fixed input size: one probe, and a map pooled to one pixel is a context
        scaled = [(h, k) for k, h in enumerate(heights[0]) if h > 1]
    else:
        scaled = [(h1, k) for k, (h1, h2) in enumerate(zip(*heights)) if h2 == 2 * h1]
    coarsest = min(h for h, _ in scaled)
    return candidates[max(k for h, k in scaled if h == coarsest)].name


def feature_stride(model: keras.Model, layer: str, probe: int = 64) -> int:
    """How many input pixels one pixel of ``layer``'s output spans (a generator of fixed size runs at that size)."""
    size = _probe_sizes(model, probe)[0]
    return size[0] // _heights(model, [model.get_layer(layer).output], size)[0]


def feature_model(model: keras.Model, layer: str | None = None) -> keras.Model:
    """``model`` with a second output: the features of ``layer`` (default its bottleneck). Shares its weights."""
    return keras.Model(model.inputs, [model.output, model.get_layer(layer or bottleneck_layer(model)).output])


def pooled(features: np.ndarray, size: int, stride: int = STUDENT_STRIDE) -> np.ndarray:
    """Features of a ``size``-pixel image average-pooled to the student's 1/``stride`` resolution."""
    factor = features.shape[1] * stride // size
    if factor < 1 or features.shape[1] * stride != size * factor or features.shape[1] % factor:
        raise ValueError(
            f"teacher features at {features.shape[1]}x{features.shape[2]} for a {size}-pixel image cannot be pooled to its "
            f"1/{stride} resolution: --feature_weight needs a teacher whose bottleneck is at 1/{stride} or a finer power of 2."
        )
    n, h, w, c = features.shape
    return features.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def standardised(features: np.ndarray) -> np.ndarray:
    """Per-channel z-scores over all rows and positions (float16: the cache holds hundreds of them); a constant
    channel becomes 0."""
    mean = features.mean(axis=(0, 1, 2), dtype=np.float64)
    std = features.std(axis=(0, 1, 2), dtype=np.float64)
    return ((features - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float16)
