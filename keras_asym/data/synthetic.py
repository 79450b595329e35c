"""Random batches in the training layout: the one home for inputs whose image content does not matter.

Timing and smoke runs (``benchmarks.train_step``, ``benchmarks.train_throughput``) and the tests of the
training step and its distribution use these.
"""

from __future__ import annotations

import numpy as np

from keras_asym.face.masks import LOCAL_ORDER


def random_batch(batch: int, size: int, seed: int = 0, parts=LOCAL_ORDER, mask_fraction: float = 0.1, soft_styles: bool = False) -> dict:
    """``{"photo", "drawing", "style", "photo_masks", "drawing_masks"}`` of uniform noise, float32.

    ``style``: the soft vector (0.7, 0.2, 0.1) for every sample, or with ``soft_styles`` a Dirichlet draw
    per sample. Each mask covers about ``mask_fraction`` of the pixels.
    """
    rng = np.random.default_rng(seed)

    def masks():
        return {p: (rng.uniform(size=(batch, size, size, 1)) < mask_fraction).astype(np.float32) for p in parts}

    photo = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    drawing = rng.uniform(-1, 1, (batch, size, size, 1)).astype(np.float32)
    if soft_styles:
        style = rng.dirichlet([1, 1, 1], size=batch).astype(np.float32)
    else:
        style = np.tile(np.float32([[0.7, 0.2, 0.1]]), (batch, 1))
    return {"photo": photo, "drawing": drawing, "style": style, "photo_masks": masks(), "drawing_masks": masks()}
