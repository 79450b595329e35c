"""Image metrics for drawings: PSNR, SSIM, and line-based edge-F1 / Chamfer distance.

NumPy + OpenCV only, on uint8 grayscale drawings (black lines on white);
shared by the export benchmark, ``evaluate`` and ``distill``.
"""

from __future__ import annotations

import cv2
import keras
import numpy as np

INK_THRESHOLD = 128


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(value.mean())


def ink(drawing: np.ndarray, threshold: int = INK_THRESHOLD) -> np.ndarray:
    """Boolean line mask of a drawing (dark pixels)."""
    return np.asarray(drawing) < threshold


def _distance_to(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest True pixel of ``mask`` (inf-like when empty)."""
    if not mask.any():
        return np.full(mask.shape, np.float32(1e6))
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)


def edge_f1(prediction: np.ndarray, reference: np.ndarray, tolerance: float = 1.5) -> float:
    """F1 of line pixels, a pixel counting as matched within ``tolerance`` px of the other drawing's lines.

    Two blank drawings score 1; a blank against a non-blank one scores 0.
    """
    pred, ref = ink(prediction), ink(reference)
    if not pred.any() and not ref.any():
        return 1.0
    if not pred.any() or not ref.any():
        return 0.0
    precision = float((_distance_to(ref)[pred] <= tolerance).mean())
    recall = float((_distance_to(pred)[ref] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def edge_scores_in(prediction: np.ndarray, reference: np.ndarray, mask: np.ndarray, tolerance: float = 1.5) -> dict:
    """Precision, recall and F1 of line pixels inside ``mask`` (a face part), matched within ``tolerance`` px.

    Lines are matched against the other drawing's lines anywhere (a line just outside the mask still counts);
    only the pixels scored are limited to the mask. No reference line in the mask scores recall 1; no
    predicted line there scores precision 1 (nothing drawn wrongly).
    """
    region = np.asarray(mask) > 0
    pred, ref = ink(prediction), ink(reference)
    pred_in, ref_in = pred & region, ref & region
    precision = float((_distance_to(ref)[pred_in] <= tolerance).mean()) if pred_in.any() else 1.0
    recall = float((_distance_to(pred)[ref_in] <= tolerance).mean()) if ref_in.any() else 1.0
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def chamfer(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Symmetric mean Chamfer distance between line pixels, in pixels (inf if either is blank)."""
    pred, ref = ink(prediction), ink(reference)
    if not pred.any() or not ref.any():
        return float("inf")
    return 0.5 * float(_distance_to(ref)[pred].mean() + _distance_to(pred)[ref].mean())


def conv_gflops(model, height: int, width: int) -> float:
    """Multiply-adds x 2 of the convolutions of a functional Keras model at one input size, in GFLOP.

    Only convolution layers are counted (norms and activations are < 1% of the
    generators' cost). Shapes come from a fixed-size rebuild of the model.
    """
    config = model.get_config()
    if "height" not in config:
        raise ValueError(f"{type(model).__name__}: cannot rebuild at a fixed size (no height/width in its config).")
    fixed = type(model).from_config({**config, "height": height, "width": width})
    total = 0.0
    for layer in fixed.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.DepthwiseConv2D)):
            # A transpose conv scatters a full kernel from every *input* pixel.
            transposed = isinstance(layer, keras.layers.Conv2DTranspose)
            h, w = (layer.input if transposed else layer.output).shape[1:3]
            total += 2.0 * h * w * np.prod(layer.kernel.shape)
    return total / 1e9


def receptive_radius(model) -> float:
    """Input pixels a drawn pixel can see on each side, along a functional model's layers in order (an upper
    bound where two branches run side by side): each kernel's half-width times the spacing of its input grid.
    Norms over the whole image (instance norm) reach further; this counts the convolutions."""
    radius, step = 0.0, 1.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            step /= layer.strides[0]
            radius += (layer.kernel_size[0] - 1) / 2 * step
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            radius += (layer.kernel_size[0] - 1) / 2 * layer.dilation_rate[0] * step
            step *= layer.strides[0]
        elif isinstance(layer, keras.layers.UpSampling2D):
            step /= layer.size[0]
    return radius


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (Heusel et al. 2017)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) from the eigenvalues of sqrt(A) B sqrt(A), which is symmetric PSD.
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sum(np.sqrt(np.clip(middle, 0, None))))


def kid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    d = a.shape[1]

    def kernel(x, y):
        return (x @ y.T / d + 1.0) ** 3

    m, n = len(a), len(b)
    k_aa, k_bb, k_ab = kernel(a, a), kernel(b, b), kernel(a, b)
    return float((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1)) - 2 * k_ab.mean())
