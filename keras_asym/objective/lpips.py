"""LPIPS v0.1 ``net-lin`` over AlexNet (Zhang et al. 2018), as the official code uses it.

Inputs in [-1, 1] are shifted and scaled per channel, passed through the five
ReLU stages of torchvision's AlexNet ``features``, unit-normalised along the
channels, differenced, squared, weighted by non-negative 1x1 ``lin`` layers,
averaged over space and summed over stages. Dropout before ``lin`` is off
(evaluation mode), as in the official training. Frozen during training.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_asym.layers.basic import PACKAGE

# LPIPS v0.1 ScalingLayer constants.
DEFAULT_SHIFT = (-0.030, -0.088, -0.188)
DEFAULT_SCALE = (0.458, 0.448, 0.450)
# (filters, kernel, stride, padding, max-pool before the conv)
ALEXNET_STAGES = ((64, 11, 4, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, True), (256, 3, 1, 1, False), (256, 3, 1, 1, False))
NORM_EPSILON = 1e-10


@keras.saving.register_keras_serializable(package=PACKAGE)
class LPIPS(keras.Model):
    """Learned perceptual distance between two image batches.

    ``lpips([a, b])`` with ``a, b`` of shape (B, H, W, 3) in [-1, 1] returns
    (B,) distances. ``features`` and ``distance_from_features`` let a caller
    reuse the features of a shared reference image.
    """

    def __init__(self, name: str = "lpips", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pads = [keras.layers.ZeroPadding2D(p, name=f"alex_pad{i + 1}") for i, (_, _, _, p, _) in enumerate(ALEXNET_STAGES)]
        self.convs = [
            keras.layers.Conv2D(f, k, strides=s, activation="relu", name=f"alex_conv{i + 1}")
            for i, (f, k, s, _, _) in enumerate(ALEXNET_STAGES)
        ]
        self.pool = keras.layers.MaxPooling2D(3, 2, padding="valid", name="alex_pool")
        self.lins = [keras.layers.Conv2D(1, 1, use_bias=False, name=f"lin{i}") for i in range(len(ALEXNET_STAGES))]

    def build(self, input_shape):
        self.shift = self.add_weight(shape=(3,), initializer=keras.initializers.Constant(DEFAULT_SHIFT), trainable=False, name="shift")
        self.scale = self.add_weight(shape=(3,), initializer=keras.initializers.Constant(DEFAULT_SCALE), trainable=False, name="scale")
        channels = 3
        for conv, lin in zip(self.convs, self.lins):
            conv.build((None, None, None, channels))
            channels = conv.filters
            lin.build((None, None, None, channels))
        self.built = True

    def features(self, image) -> list:
        """Unit-normalised AlexNet features of the five stages."""
        x = (ops.cast(image, self.compute_dtype) - self.shift) / self.scale
        feats = []
        for (_, _, _, _, pool_first), pad, conv in zip(ALEXNET_STAGES, self.pads, self.convs):
            if pool_first:
                x = self.pool(x)
            x = conv(pad(x))
            norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
            feats.append(x / (norm + NORM_EPSILON))
        return feats

    def distance_from_features(self, feats0: list, feats1: list):
        total = 0.0
        for lin, f0, f1 in zip(self.lins, feats0, feats1):
            total = total + ops.mean(lin(ops.square(f0 - f1)), axis=(1, 2, 3))
        return ops.cast(total, "float32")

    def call(self, inputs):
        image0, image1 = inputs
        return self.distance_from_features(self.features(image0), self.features(image1))

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}
