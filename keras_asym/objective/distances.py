"""Distances for the relaxed forward cycle: how far F(G(x)) is from x.

The paper compares HED edge maps of the reconstruction and the photo with
LPIPS (``HedLpipsDistance``), which needs the pretrained HED and LPIPS
weights. ``EdgeDistance`` is a weights-free stand-in for offline use: Sobel
edges at three scales compared with L1 and SSIM. It keeps the *relaxed* nature
of the cycle (only edges must come back, not colours), but it is not the
paper's perceptual metric; switch with ``cycle_distance="hed_lpips"`` once the
official weights are imported.

Both are Keras layers: ``layer(reconstructions, target)`` returns a dict with
``distances`` (one (B,) tensor per reconstruction) and the edge maps
(``target_edges``, ``reconstruction_edges``) in [-1, 1] for monitoring.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_asym.layers.basic import PACKAGE
from keras_asym.objective import CYCLE_DISTANCES
from keras_asym.objective.hed import HED
from keras_asym.objective.lpips import LPIPS


def _grayscale(image):
    if image.shape[-1] == 1:
        return image
    weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=image.dtype)
    return ops.sum(image * weights, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package=PACKAGE)
class HedLpipsDistance(keras.layers.Layer):
    """``LPIPS(HED(F(G(x))), HED(x))`` on 3-channel-expanded edge maps in [-1, 1].

    All images go through HED in one batch and the photo's LPIPS features are
    computed once and shared by every reconstruction (the official code runs
    HED and LPIPS on the photo twice).
    """

    def __init__(self, hed: keras.Model | None = None, lpips: keras.Model | None = None, **kwargs):
        super().__init__(**kwargs)
        self.hed = hed or HED()
        self.lpips = lpips or LPIPS()
        self.hed.trainable = False
        self.lpips.trainable = False
        for net in (self.hed, self.lpips):
            if not net.built:
                net.build((None, None, None, 3))

    def call(self, reconstructions, target):
        count = len(reconstructions)
        images = ops.concatenate([target] + list(reconstructions), axis=0)
        edges = (self.hed(images / 2.0 + 0.5) - 0.5) * 2.0
        batch = ops.shape(target)[0]
        rgb_edges = ops.concatenate([edges, edges, edges], axis=-1)
        feats = self.lpips.features(rgb_edges)
        target_feats = [f[:batch] for f in feats]
        distances = []
        for k in range(1, count + 1):
            rec_feats = [f[k * batch : (k + 1) * batch] for f in feats]
            distances.append(self.lpips.distance_from_features(rec_feats, target_feats))
        return {
            "distances": distances,
            "target_edges": edges[:batch],
            "reconstruction_edges": [edges[k * batch : (k + 1) * batch] for k in range(1, count + 1)],
        }

    def get_config(self):
        return {
            **super().get_config(),
            "hed": keras.saving.serialize_keras_object(self.hed),
            "lpips": keras.saving.serialize_keras_object(self.lpips),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["hed"] = keras.saving.deserialize_keras_object(config["hed"])
        config["lpips"] = keras.saving.deserialize_keras_object(config["lpips"])
        return cls(**config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class EdgeDistance(keras.layers.Layer):
    """Weights-free relaxed-cycle distance: multi-scale Sobel edges, L1 + (1 - SSIM) / 2.

    Edge maps are ``tanh(2 |Sobel(luma)|)`` of the image mapped to [0, 1],
    at full, half and quarter resolution; the distance per sample is the mean
    over scales of the L1 difference plus half the SSIM dissimilarity
    (7x7 uniform window). Differentiable everywhere, no pretrained weights.

    Args:
        scales: int. Number of scales. Defaults to 3.
    """

    def __init__(self, scales: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.scales = int(scales)
        sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 4.0
        self._kernel = np.stack([sobel_x, sobel_x.T], axis=-1)[:, :, None, :]

    def _edges(self, image):
        gray = _grayscale(ops.cast(image, "float32")) / 2.0 + 0.5
        gray = ops.pad(gray, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
        grad = ops.conv(gray, ops.convert_to_tensor(self._kernel), padding="valid")
        magnitude = ops.sqrt(ops.sum(ops.square(grad), axis=-1, keepdims=True) + 1e-6)
        return ops.tanh(2.0 * magnitude)

    @staticmethod
    def _ssim(a, b):
        c1, c2 = 0.01**2, 0.03**2
        pool = lambda x: ops.average_pool(x, 7, 1, padding="valid")  # noqa: E731
        mu_a, mu_b = pool(a), pool(b)
        var_a = pool(a * a) - mu_a * mu_a
        var_b = pool(b * b) - mu_b * mu_b
        cov = pool(a * b) - mu_a * mu_b
        ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        return ops.mean(ssim, axis=(1, 2, 3))

    def _pyramid(self, image):
        levels = [image]
        for _ in range(self.scales - 1):
            levels.append(ops.average_pool(levels[-1], 2, 2, padding="valid"))
        return [self._edges(level) for level in levels]

    def call(self, reconstructions, target):
        target_levels = self._pyramid(target)
        distances, maps = [], []
        for reconstruction in reconstructions:
            levels = self._pyramid(reconstruction)
            per_scale = [ops.mean(ops.abs(r - t), axis=(1, 2, 3)) + 0.5 * (1.0 - self._ssim(r, t)) for r, t in zip(levels, target_levels)]
            distances.append(sum(per_scale) / float(self.scales))
            maps.append(levels[0] * 2.0 - 1.0)
        return {"distances": distances, "target_edges": target_levels[0] * 2.0 - 1.0, "reconstruction_edges": maps}

    def get_config(self):
        return {**super().get_config(), "scales": self.scales}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelL1Distance(keras.layers.Layer):
    """The strict CycleGAN forward cycle, mean |F(G(x)) - x|: the ablation baseline."""

    def call(self, reconstructions, target):
        target = ops.cast(target, "float32")
        distances = [ops.mean(ops.abs(ops.cast(r, "float32") - target), axis=(1, 2, 3)) for r in reconstructions]
        return {"distances": distances, "target_edges": target, "reconstruction_edges": list(reconstructions)}


def make_cycle_distance(kind: str) -> keras.layers.Layer:
    """``"edges"`` (weights-free default), ``"hed_lpips"`` (paper; load its weights
    afterwards) or ``"l1"`` (plain CycleGAN)."""
    if kind == "edges":
        return EdgeDistance(name="cycle_distance")
    if kind == "hed_lpips":
        return HedLpipsDistance(name="cycle_distance")
    if kind == "l1":
        return PixelL1Distance(name="cycle_distance")
    raise ValueError(f"Unknown cycle distance {kind!r}; expected one of {CYCLE_DISTANCES}.")
