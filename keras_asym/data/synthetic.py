"""Random batches in the training layout, for timing and smoke runs where image content does not matter."""

from __future__ import annotations

import numpy as np

from keras_asym.face.masks import LOCAL_ORDER


def random_batch(batch: int, size: int, seed: int = 0, parts=LOCAL_ORDER, mask_fraction: float = 0.1) -> dict:
    """``{"photo", "drawing", "style", "photo_masks", "drawing_masks"}`` of uniform noise, float32."""
    rng = np.random.default_rng(seed)

    def masks():
        return {p: (rng.uniform(size=(batch, size, size, 1)) < mask_fraction).astype(np.float32) for p in parts}

    return {
        "photo": rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32),
        "drawing": rng.uniform(-1, 1, (batch, size, size, 1)).astype(np.float32),
        "style": np.tile(np.float32([[0.7, 0.2, 0.1]]), (batch, 1)),
        "photo_masks": masks(),
        "drawing_masks": masks(),
    }
