"""Eyes, nose and lips masks for the local discriminators, from the 5 alignment points.

The official training masks (APDrawing style, see the parity fixture) are
axis-aligned boxes on the aligned 512x512 face: one per eye including the
brow, one from the eye line to below the nose tip, one around the mouth,
dilated a few pixels beyond the features. The boxes here are placed on the
detected points with sizes proportional to the inter-ocular distance,
calibrated on the official masks of ``official_small`` (IoU >= 0.6 there).
"""

from __future__ import annotations

import numpy as np

# (width, height, centre offset along y), in inter-ocular distances.
EYE_BOX = (0.70, 0.52, -0.16)
NOSE_BOX = (0.60, 0.64, -0.18)
LIPS_BOX = (1.12, 0.52, -0.08)
PARTS = ("eyes", "nose", "lips")  # the face parts with a mask and a local discriminator: their one home
# The official code builds the local discriminators, and sums their losses, in this order (nose, eyes, lips);
# the order fixes their initialisation and the loss table, so it stays.
LOCAL_ORDER = ("nose", "eyes", "lips")
assert sorted(LOCAL_ORDER) == sorted(PARTS)


def _box(mask: np.ndarray, center, width: float, height: float) -> None:
    h, w = mask.shape
    x0, x1 = int(round(center[0] - width / 2)), int(round(center[0] + width / 2))
    y0, y1 = int(round(center[1] - height / 2)), int(round(center[1] + height / 2))
    mask[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)] = 1


def part_masks(points: np.ndarray, shape: tuple[int, int], margin: float = 0.0) -> dict[str, np.ndarray]:
    """``{"eyes", "nose", "lips"}`` -> HxW uint8 {0, 1} masks of an aligned face.

    Args:
        points: the 5 points (image-left eye, image-right eye, nose tip,
            mouth-left, mouth-right) in the aligned image.
        shape: (height, width) of the aligned image.
        margin: extra pixels added on every side of every box.
    """
    points = np.asarray(points, np.float64)
    iod = float(np.linalg.norm(points[1] - points[0]))
    if not np.isfinite(iod) or iod <= 1:
        raise ValueError(f"degenerate eye points {points[:2].tolist()}.")
    masks = {part: np.zeros(shape, np.uint8) for part in PARTS}
    w, h, dy = EYE_BOX
    for eye in points[:2]:
        _box(masks["eyes"], (eye[0], eye[1] + dy * iod), w * iod + 2 * margin, h * iod + 2 * margin)
    w, h, dy = NOSE_BOX
    _box(masks["nose"], (points[2, 0], points[2, 1] + dy * iod), w * iod + 2 * margin, h * iod + 2 * margin)
    w, h, dy = LIPS_BOX
    mouth = points[3:5].mean(0)
    _box(masks["lips"], (mouth[0], mouth[1] + dy * iod), w * iod + 2 * margin, h * iod + 2 * margin)
    return masks
