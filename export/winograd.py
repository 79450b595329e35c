"""3x3 convolutions as Winograd F(2x2, 3x3) for the float TFLite file: the same function in fewer multiplies.

XNNPACK runs a 3x3 convolution as one matrix product per output pixel over 9 x C inputs. Winograd's minimal
filtering computes each 2x2 block of outputs from a 4x4 block of inputs with 16 products instead of 36: every
4x4 input tile is transformed (``B^T d B``, sums and differences only), multiplied channel-wise by the transformed
kernel (``G g G^T``: 16 matrix products of C x K, i.e. 16 1x1 convolutions on a half-size map), and transformed back
(``A^T m A``). The 1x1 convolutions do 4 C K multiplies per output pixel against the direct convolution's 9; the
transforms are memory-bound additions. Every op is one XNNPACK (and LiteRT GPU) takes: depthwise convolutions of
stride 2 for the input transform (4x1 down the rows, then 1x4 across, which reads less than sixteen 4x4 filters),
1x1 convolutions, additions, a concatenation and DEPTH_TO_SPACE.

Worth it only where the channels are wide: ``benchmarks.winograd`` times one 3x3 layer both ways (on this project's
Xeon, 2026-12-06: 0.62-0.69x the direct time at 256 channels, 0.86x at 128, 1.44x at 64), so ``for_speed`` rewrites the
layers with at least ``MIN_CHANNELS`` on both sides: the paper's G's style fusion and its 18 bottleneck
convolutions. ``benchmarks.inference --variants fp32,fp32_winograd`` times the whole generator beside PyTorch. The
transformed kernels are 16/9 the size of the originals. Float rounding differs from the direct convolution by about
1e-6 of the values (tests/test_winograd.py).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from export import rewrite
from keras_asym.layers.basic import PACKAGE

MIN_CHANNELS = 128

# F(2x2, 3x3) with interpolation points 0, 1, -1 and infinity (Lavin & Gray, 2016).
_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


def transform_kernel(kernel: np.ndarray) -> np.ndarray:
    """(3, 3, C, K) kernel -> (4, 4, C, K) ``G g G^T``, computed in float64."""
    return np.einsum("ia,abck,jb->ijck", _G, np.asarray(kernel, np.float64), _G).astype(np.float32)


def _signed_sum(coefficients, tensors):
    """sum(c * t) for c in {-1, 0, 1}: additions and subtractions only."""
    total = None
    for c, t in zip(coefficients, tensors):
        if c == 0:
            continue
        if total is None:
            total = t if c > 0 else -t
        else:
            total = total + t if c > 0 else total - t
    return total


@keras.saving.register_keras_serializable(package=PACKAGE)
class WinogradConv2D(keras.layers.Layer):
    """A 3x3, stride-1, 'valid' convolution with bias, computed as Winograd F(2x2, 3x3).

    Holds the transformed kernel (4, 4, C, K) and the bias. An odd output height or width is computed on one
    more row or column of zeros and cropped, so any size works, known when traced or not.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(name="winograd_kernel", shape=(4, 4, channels, self.filters), initializer="zeros", trainable=False)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros", trainable=False)
        # B^T d B, separably: row i of B^T as a 4x1 depthwise filter of stride 2 down the rows, then row j as 1x4 across.
        self._row_filters = [
            np.ascontiguousarray(np.broadcast_to(_BT[i].astype(np.float32)[:, None, None, None], (4, 1, channels, 1))) for i in range(4)
        ]
        self._column_filters = [f.reshape(1, 4, channels, 1) for f in self._row_filters]

    def call(self, inputs):
        static = inputs.shape[1] is not None and inputs.shape[2] is not None  # an export: every size known, no shape ops
        shape = inputs.shape if static else tf.shape(inputs)
        height, width = shape[1] - 2, shape[2] - 2
        x = inputs
        if not static or height % 2 or width % 2:  # an odd side: one more row or column of zeros, cropped below
            x = tf.pad(x, [[0, 0], [0, height % 2], [0, width % 2], [0, 0]])
        kernel, dtype = tf.cast(self.kernel, x.dtype), x.dtype
        products = {}
        for i in range(4):
            rows = tf.nn.depthwise_conv2d(x, tf.cast(self._row_filters[i], dtype), [1, 2, 1, 1], "VALID")
            for j in range(4):
                tiles = tf.nn.depthwise_conv2d(rows, tf.cast(self._column_filters[j], dtype), [1, 1, 2, 1], "VALID")
                products[i, j] = tf.nn.conv2d(tiles, kernel[i, j][None, None], 1, "VALID")
        rows = {(p, j): _signed_sum(_AT[p], [products[i, j] for i in range(4)]) for p in range(2) for j in range(4)}
        phases = [_signed_sum(_AT[q], [rows[p, j] for j in range(4)]) for p in range(2) for q in range(2)]
        y = tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2) + tf.cast(self.bias, x.dtype)
        return y[:, :height, :width, :] if not static or height % 2 or width % 2 else y

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else h - 2, None if w is None else w - 2, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def eligible(layer: keras.layers.Layer, min_channels: int = MIN_CHANNELS) -> bool:
    """A plain 3x3 stride-1 'valid' Conv2D with a bias, at least ``min_channels`` in and out."""
    return (
        type(layer) is keras.layers.Conv2D
        and tuple(layer.kernel_size) == (3, 3)
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.padding == "valid"
        and layer.groups == 1
        and layer.use_bias
        and layer.activation in (None, keras.activations.linear)
        and min(layer.kernel.shape[2], layer.filters) >= min_channels
    )


def for_speed(generator: keras.Model, min_channels: int | None = None) -> tuple[keras.Model, list[str]]:
    """(a functional copy of ``generator`` whose eligible convolutions are ``WinogradConv2D``, their names);
    ``min_channels`` defaults to ``MIN_CHANNELS``."""
    min_channels = MIN_CHANNELS if min_channels is None else min_channels

    def replacement(layer):
        if not eligible(layer, min_channels):
            return None
        new_layer = WinogradConv2D(layer.filters, name=layer.name, dtype=layer.dtype_policy)
        return new_layer, lambda weights: [transform_kernel(weights[0]), weights[1]]

    return rewrite.replace_layers(generator, replacement, "winograd")
