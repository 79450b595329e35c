"""Similarity alignment of faces to the official 512x512 template, and back.

The official ``preprocess/face_align_512.m`` fits a least-squares similarity
(``cp2tform(..., 'similarity')``) from the 5 MTCNN points to a template given
in a 480 frame and mapped by ``(p - 240) / 560 * 512 + 256``, then warps
bilinearly with white fill. MATLAB coordinates are 1-based; everything here
is 0-based pixel centres (OpenCV), with the offset folded into the matrix so
the warp is the same.
"""

from __future__ import annotations

import cv2
import numpy as np

TEMPLATE_480 = np.array([[180, 230], [300, 230], [240, 301], [186, 365.6], [294, 365.6]], np.float64)
POINT_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")  # image-left first
WHITE = (255, 255, 255)


def template(size: int = 512) -> np.ndarray:
    """The 5 target points for a ``size`` x ``size`` output, in 0-based pixels.

    The official template is defined for 512; other sizes scale it.
    """
    official_512 = (TEMPLATE_480 - 240.0) / 560.0 * 512.0 + 256.0  # MATLAB 1-based
    return (official_512 - 1.0) * (size / 512.0) + (size / 512.0 - 1.0) / 2.0


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares non-reflective similarity mapping ``source`` points onto ``target`` (2x3).

    Solves ``x' = a x - b y + tx``, ``y' = b x + a y + ty``: the model of
    MATLAB's ``cp2tform(..., 'similarity')``.
    """
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 or len(source) < 2:
        raise ValueError(f"need matching (N>=2, 2) point arrays, got {source.shape} and {target.shape}.")
    x, y = source[:, 0], source[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    rows = np.concatenate([np.stack([x, -y, ones, zeros], 1), np.stack([y, x, zeros, ones], 1)])
    rhs = np.concatenate([target[:, 0], target[:, 1]])
    (a, b, tx, ty), *_ = np.linalg.lstsq(rows, rhs, rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]], np.float64)


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def align(image: np.ndarray, points: np.ndarray, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Warps ``image`` so its 5 points land on the template; returns (aligned, 2x3 matrix)."""
    matrix = similarity_matrix(points, template(size))
    fill = WHITE if image.ndim == 3 else 255
    aligned = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return aligned, matrix


def paste_back(frame: np.ndarray, drawing: np.ndarray, matrix: np.ndarray, feather: int = 0) -> np.ndarray:
    """Warps an aligned drawing back into ``frame`` (same channels) where it came from.

    Pixels outside the aligned square keep the frame; ``feather`` softens the
    square's border over that many pixels.
    """
    height, width = frame.shape[:2]
    size = drawing.shape[0]
    inverse = invert(matrix)
    if drawing.ndim == 2 and frame.ndim == 3:
        drawing = cv2.cvtColor(drawing, cv2.COLOR_GRAY2RGB)
    back = cv2.warpAffine(drawing, inverse, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    weight = np.ones((size, size), np.float32)
    if feather > 0:
        weight = cv2.erode(weight, np.ones((3, 3), np.uint8), iterations=1)
        weight = cv2.GaussianBlur(np.pad(weight[1:-1, 1:-1], 1), (0, 0), feather)
    alpha = cv2.warpAffine(weight, inverse, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0)
    if frame.ndim == 3:
        alpha = alpha[:, :, None]
    blended = frame.astype(np.float32) * (1.0 - alpha) + back.astype(np.float32) * alpha
    return np.clip(blended + 0.5, 0, 255).astype(frame.dtype)
