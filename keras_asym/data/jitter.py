"""Photometric and small geometric jitter of aligned face photos.

Distillation needs many real-looking inputs, and a few dozen aligned photos
are all most users have: each jittered copy is a new input for the teacher
to draw. The warp stays small (a few degrees, a few percent) so the copy is
still an aligned face; the colour changes mimic other cameras and lighting.
"""

from __future__ import annotations

import cv2
import numpy as np


def jitter_photo(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomly warped, relit, recoloured, maybe blurred or noisy copy of a uint8 RGB photo."""
    if photo.ndim != 3 or photo.shape[-1] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image, got {photo.dtype} {photo.shape}")
    h, w = photo.shape[:2]
    angle = rng.uniform(-8.0, 8.0)
    scale = rng.uniform(0.92, 1.08)
    warp = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    warp[:, 2] += rng.uniform(-0.04, 0.04, 2) * (w, h)
    image = cv2.warpAffine(photo, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101).astype(np.float32) / 255.0
    gray = image.mean(axis=-1, keepdims=True)
    image = gray + rng.uniform(0.6, 1.3) * (image - gray)
    image = image * rng.uniform(0.9, 1.1, 3)
    image = (image - 0.5) * rng.uniform(0.75, 1.25) + 0.5 + rng.uniform(-0.1, 0.1)
    image = np.clip(image, 0.0, 1.0) ** rng.uniform(0.8, 1.25)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < 0.3:
        image = image + rng.normal(0.0, rng.uniform(0.005, 0.02), image.shape)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
