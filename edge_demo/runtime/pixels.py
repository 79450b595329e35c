"""The pixel contract every keras-asym generator shares: pixels p in 0..255 are x = p / 127.5 - 1 in the model's
range [-1, 1], and a drawing's x is p = (x + 1) * 127.5, rounded and clipped. One home, TensorFlow-free, for the
input pipeline, the drawers, the exporter (which writes it into every model's metadata), the TFLite runner and
the benchmarks.
"""

from __future__ import annotations

import numpy as np

SCALE = 127.5  # pixel units per model unit: also one gray level is 1 / SCALE in the model's range
OFFSET = -1.0


def to_model(pixels, dtype=np.float32):
    """Pixels (0..255) -> the model range [-1, 1].

    NumPy arrays, lists and numbers become ``dtype`` first; a TensorFlow or PyTorch float tensor is scaled as it
    is, so the same function serves inside a ``tf.data`` graph.
    """
    if isinstance(pixels, (np.ndarray, np.generic, list, tuple, int, float)):
        pixels = np.asarray(pixels, dtype)
    return pixels / SCALE + OFFSET


def to_pixels(values) -> np.ndarray:
    """The model range [-1, 1] -> uint8 pixels, rounded to the nearest level and clipped."""
    return np.clip((np.asarray(values) - OFFSET) * SCALE + 0.5, 0, 255).astype(np.uint8)
