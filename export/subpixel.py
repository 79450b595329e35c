"""Full-resolution convolutions over few channels, and stride-2 transposed convolutions, on space-to-depth maps.

XNNPACK computes a convolution as one small matrix product per output pixel and kernel tap, over the input
channels in blocks and the output channels in blocks (16 wide for int8 on this Xeon). G's 7x7 stem (3 channels in)
and 7x7 head (1 channel out) run at full resolution with almost every block empty: timed alone at 256²
(``benchmarks.subpixel``, 2026-12-06, 2 threads) each takes 5.5-6.1 ms in int8 whatever its width, and the transposed
convolutions (XNNPACK's deconvolution) up to 7.7 ms. The same functions on space-to-depth maps fill the blocks
(0.12-0.60x those times in int8):

* ``SubpixelConv2D``: a stride-1 'valid' k x k convolution with output ``y[b Y + a] = sum_t x[b Y + a + t] w[t]``
  reads input block ``Y + u`` at offset ``r`` where ``a + t = b u + r``: SPACE_TO_DEPTH by ``b``, one convolution
  of ``ceil((k + b - 1) / b)`` taps from ``b² C`` to ``b² K`` channels (zeros where ``t`` falls outside the kernel),
  DEPTH_TO_SPACE by ``b``.
* ``SubpixelConv2DTranspose``: a stride-``s`` 'valid' transposed convolution writes ``out[s Y + a] = sum_u
  x[Y - u] w[a + s u]``: one ``ceil(k / s)``-tap convolution of the zero-padded input to ``s² K`` channels, one per
  output phase, and DEPTH_TO_SPACE (the sub-pixel convolution of Shi et al., 2016).

Every product of the original is computed once, the zeros aside; in int8 the products are the original ones and
the output tensor holds the same values (in another order), so its calibrated range is the same, while each
output phase gets its own weight scale. Float rounding differs by the order of the sums (``tests/test_subpixel.py``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from export import rewrite
from export.balance import source
from keras_asym.layers.basic import PACKAGE, InstanceNormalization

MIN_KERNEL = 5  # the 7x7 stem and head; G's 3x3 convolutions are wide and stay direct
MAX_NARROW_CHANNELS = 8  # a side this narrow leaves XNNPACK's channel blocks mostly empty
_OUTPUT_BLOCK = 16  # XNNPACK's int8 output-channel block: the block size b is the smallest with b² K >= this
_BLOCKS = (2, 4)
# In float the space-to-depth form of a stride-1 convolution pays while it has at most this many output channels
# (b² K; benchmarks.subpixel, 2026-12-06: the stem at 16 and 24 outputs 0.50x and 0.53x the direct time, at 32 to 64 1.07-1.71x);
# in int8 it pays at every width measured.
FLOAT_MAX_SPACED_OUTPUTS = 96
PRECISIONS = ("int8", "float")


def _static_or_dynamic(x, axis):
    side = x.shape[axis]
    return int(side) if side is not None else tf.shape(x)[axis]


def block_for(filters: int) -> int:
    """The space-to-depth block for a convolution with ``filters`` outputs: the smallest of 2 and 4 that gives at
    least one full int8 output block of channels."""
    return next((b for b in _BLOCKS if b * b * filters >= _OUTPUT_BLOCK), _BLOCKS[-1])


def subpixel_kernel(kernel: np.ndarray, block: int) -> np.ndarray:
    """(k, k, C, K) stride-1 kernel -> (t, t, b² C, b² K) kernel on space-to-depth maps, t = ceil((k + b - 1) / b).

    Channel orders are TensorFlow's: SPACE_TO_DEPTH puts offset (r, s) of a block at channels (r b + s) C + c,
    DEPTH_TO_SPACE reads phase (a, e) from channels (a b + e) K + o."""
    k, _, channels, filters = kernel.shape
    b, taps = block, (k + block - 2) // block + 1
    out = np.zeros((taps, taps, b * b * channels, b * b * filters), kernel.dtype)
    for a in range(b):
        for e in range(b):
            phase = slice((a * b + e) * filters, (a * b + e + 1) * filters)
            for u in range(taps):
                for v in range(taps):
                    for r in range(b):
                        for s in range(b):
                            i, j = b * u + r - a, b * v + s - e
                            if 0 <= i < k and 0 <= j < k:
                                out[u, v, (r * b + s) * channels : (r * b + s + 1) * channels, phase] = kernel[i, j]
    return out


def transposed_kernel(kernel: np.ndarray, strides: int) -> np.ndarray:
    """Keras (k, k, K, C) transposed kernel of stride s -> (t, t, C, s² K) kernel of its phases, t = ceil(k / s),
    applied to the input padded by t - 1 zeros on every side."""
    k, _, filters, channels = kernel.shape
    s, taps = strides, math.ceil(kernel.shape[0] / strides)
    out = np.zeros((taps, taps, channels, s * s * filters), kernel.dtype)
    for a in range(s):
        for e in range(s):
            for u in range(taps):
                for v in range(taps):
                    i, j = a + s * (taps - 1 - u), e + s * (taps - 1 - v)
                    if i < k and j < k:
                        out[u, v, :, (a * s + e) * filters : (a * s + e + 1) * filters] = kernel[i, j].T
    return out


class _Subpixel(keras.layers.Layer):
    """Kernel and bias in the space-to-depth form; ``call`` in the subclasses."""

    def __init__(self, filters: int, kernel_size: int, block: int, clip: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.block = int(filters), int(kernel_size), int(block)
        self.clip = bool(clip)  # to [-1, 1] before DEPTH_TO_SPACE, where TFLite fuses it into the convolution

    def _add_weights(self, taps: int, channels: int):
        outputs = self.block * self.block * self.filters
        self.kernel = self.add_weight(name="subpixel_kernel", shape=(taps, taps, channels, outputs), initializer="zeros", trainable=False)
        self.bias = self.add_weight(name="bias", shape=(outputs,), initializer="zeros", trainable=False)

    def _convolve(self, x, height, width):
        y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), 1, "VALID") + tf.cast(self.bias, x.dtype)
        if self.clip:
            y = tf.clip_by_value(y, -1.0, 1.0)
        return tf.nn.depth_to_space(y, self.block)[:, :height, :width, :]

    def get_config(self):
        config = {"filters": self.filters, "kernel_size": self.kernel_size, "block": self.block, "clip": self.clip}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SubpixelConv2D(_Subpixel):
    """A k x k, stride-1, 'valid' convolution with bias computed on the input's space-to-depth map (any size)."""

    def build(self, input_shape):
        taps = (self.kernel_size + self.block - 2) // self.block + 1
        self._add_weights(taps, self.block * self.block * int(input_shape[-1]))

    def call(self, inputs):
        b, k = self.block, self.kernel_size
        height, width = _static_or_dynamic(inputs, 1) - k + 1, _static_or_dynamic(inputs, 2) - k + 1
        taps = (k + b - 2) // b + 1
        # Enough rows and columns for every output block and its taps: zeros past the input meet zero weights.
        rows, columns = ((height + b - 1) // b + taps - 1) * b, ((width + b - 1) // b + taps - 1) * b
        x = tf.pad(inputs, [[0, 0], [0, rows - (height + k - 1)], [0, columns - (width + k - 1)], [0, 0]])
        return self._convolve(tf.nn.space_to_depth(x, b), height, width)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        k = self.kernel_size
        return (n, None if h is None else h - k + 1, None if w is None else w - k + 1, self.filters)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SubpixelConv2DTranspose(_Subpixel):
    """A k x k, stride-s, 'valid' transposed convolution with bias (``block`` = s) as the convolution of its s² output
    phases and DEPTH_TO_SPACE (any size)."""

    def build(self, input_shape):
        self._add_weights(math.ceil(self.kernel_size / self.block), int(input_shape[-1]))

    def call(self, inputs):
        s, k = self.block, self.kernel_size
        pad = math.ceil(k / s) - 1
        height, width = (_static_or_dynamic(inputs, 1) - 1) * s + k, (_static_or_dynamic(inputs, 2) - 1) * s + k
        x = tf.pad(inputs, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        return self._convolve(x, height, width)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        s, k = self.block, self.kernel_size
        return (n, None if h is None else (h - 1) * s + k, None if w is None else (w - 1) * s + k, self.filters)


def _plain(layer) -> bool:
    return layer.activation in (None, keras.activations.linear) and all(d == 1 for d in layer.dilation_rate)


def eligible(layer: keras.layers.Layer) -> bool:
    """A square stride-1 'valid' Conv2D of ``MIN_KERNEL``+ taps with at most ``MAX_NARROW_CHANNELS`` on one side, or a
    square 'valid' Conv2DTranspose of equal strides no larger than its kernel; either with a bias and no activation."""
    if type(layer) is keras.layers.Conv2D:
        k = layer.kernel_size
        return (
            _plain(layer)
            and layer.use_bias
            and layer.groups == 1
            and layer.padding == "valid"
            and tuple(layer.strides) == (1, 1)
            and k[0] == k[1] >= MIN_KERNEL
            and min(layer.kernel.shape[2], layer.filters) <= MAX_NARROW_CHANNELS
        )
    if type(layer) is keras.layers.Conv2DTranspose:
        k, s = layer.kernel_size, layer.strides
        return (
            _plain(layer)
            and layer.use_bias
            and layer.padding == "valid"
            and layer.output_padding is None
            and k[0] == k[1]
            and s[0] == s[1] >= 2
            and k[0] >= s[0]
        )
    return False


def for_speed(generator: keras.Model, precision: str = "int8") -> tuple[keras.Model, list[str]]:
    """(a functional copy of ``generator`` whose eligible convolutions are computed on space-to-depth maps, their
    names), for a file in ``precision`` (``"float"``: stride-1 convolutions only up to ``FLOAT_MAX_SPACED_OUTPUTS``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")

    def replacement(layer):
        if not eligible(layer):
            return None
        if precision == "float" and type(layer) is keras.layers.Conv2D:
            if block_for(layer.filters) ** 2 * layer.filters > FLOAT_MAX_SPACED_OUTPUTS:
                return None
        k = layer.kernel_size[0]
        if type(layer) is keras.layers.Conv2DTranspose:
            s = layer.strides[0]
            new = SubpixelConv2DTranspose(layer.filters, k, s, name=layer.name, dtype=layer.dtype_policy)
            return new, lambda weights: [transposed_kernel(weights[0], s), np.tile(weights[1], s * s)]
        b = block_for(layer.filters)
        new = SubpixelConv2D(layer.filters, k, b, name=layer.name, dtype=layer.dtype_policy)
        return new, lambda weights: [subpixel_kernel(weights[0], b), np.tile(weights[1], b * b)]

    copy, names = rewrite.replace_layers(generator, replacement, "subpixel")
    _clip_before_depth_to_space(copy)
    return copy, names


def _clip_before_depth_to_space(model: keras.Model) -> None:
    """Moves a clipping norm's clip (``export.balance``) into the rewritten convolution feeding it.

    The clip is elementwise, so it commutes with DEPTH_TO_SPACE and the crops; before them TFLite fuses it into the
    convolution as its activation, where after them it is a RELU_N1_TO_1 of its own, which XNNPACK does not take in
    int8 (the reference kernel then runs it on the whole full-resolution map)."""
    for norm in model.layers:
        if not (isinstance(norm, InstanceNormalization) and norm.clip):
            continue
        producer = source(norm)
        if isinstance(producer, _Subpixel):
            producer.clip, norm.clip = True, False
