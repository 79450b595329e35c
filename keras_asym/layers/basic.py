"""Small layers the official PyTorch networks rely on, written for Keras 3.

Everything here is registered under the ``keras_asym`` package so that ``.keras``
files round-trip without ``custom_objects``. No ``tensorflow-addons``: it is
end-of-life and does not import beside Keras 3.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

PACKAGE = "keras_asym"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ReflectionPadding2D(keras.layers.Layer):
    """``torch.nn.ReflectionPad2d`` for NHWC tensors (edge pixel not repeated).

    Written as one-row/column slices and a concatenation rather than
    ``pad(mode="reflect")``: the copy is exact either way, but TFLite's
    MIRROR_PAD is not an XNNPACK op, so each of the generator's 20 pads split
    the CPU graph and ran on the slow reference kernel (12% of a 256x256
    drawing on 2 cores; ``benchmarks/inference.py``).

    Args:
        padding: int. Rows/columns added on every side.
    """

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        if p == 0:
            return inputs
        x = _reflect(inputs, p, axis=1)
        return _reflect(x, p, axis=2)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = lambda n: None if n is None else n + 2 * self.padding  # noqa: E731
        return (b, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def _reflect(x, p: int, axis: int):
    """``x`` with ``p`` mirrored rows (axis 1) or columns (axis 2) on both sides, edge not repeated."""
    n = ops.shape(x)[axis]

    def line(i):
        return x[:, i : i + 1] if axis == 1 else x[:, :, i : i + 1]

    before = [line(i) for i in range(p, 0, -1)]
    after = [line(n - 1 - i) for i in range(1, p + 1)]
    if p > 1:  # three pieces: XNNPACK refuses a concatenation of seven, which then ran on the reference kernel
        before, after = [ops.concatenate(before, axis=axis)], [ops.concatenate(after, axis=axis)]
    return ops.concatenate([*before, x, *after], axis=axis)


@keras.saving.register_keras_serializable(package=PACKAGE)
class InstanceNormalization(keras.layers.Layer):
    """Instance norm without affine parameters, as ``nn.InstanceNorm2d(affine=False)``.

    Statistics are taken per sample and channel over H and W with the biased
    variance, like PyTorch. They are computed in float32 even under a mixed
    precision policy, since float16 variances of 512x512 maps lose precision
    (in float64 under a float64 policy: ``benchmarks.float_parity``'s reference).
    Equivalent to ``keras.layers.GroupNormalization(groups=-1, center=False,
    scale=False)`` but lowers to plain mean/variance ops that TFLite and its
    GPU delegate handle.

    Args:
        epsilon: float, or one float per channel. Added to the variance. Defaults to 1e-5 (PyTorch). Per channel
            for a norm whose input the exporter rescaled (``export.balance``).
        product: bool. Squares the deviations as ``centered * centered`` instead of ``square(centered)``: the
            same values, but TFLite then keeps a MUL, which XNNPACK runs in int8 and LiteRT in 16x8, where it
            fuses a square into SQUARED_DIFFERENCE, which neither does. Set by the exporter for integer
            variants; training keeps the square, whose gradient matches the official step's (test_parity_steps).
        clip: bool. Clips the input to [-1, 1] first. Set by the exporter on a norm whose input it scaled so that
            1 is a high quantile of the calibration values (``export.balance``): TFLite fuses the clip into the
            convolution before it, and int8 then spends its levels on the bulk of the values, not on rare peaks.
    """

    def __init__(self, epsilon: float | list[float] = 1e-5, product: bool = False, clip: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon) if np.ndim(epsilon) == 0 else [float(e) for e in epsilon]
        self.product = bool(product)
        self.clip = bool(clip)

    def call(self, inputs):
        dtype = "float64" if self.compute_dtype == "float64" else "float32"  # at least float32, as said above
        x = ops.cast(inputs, dtype)
        if self.clip:
            x = ops.clip(x, -1.0, 1.0)
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        centered = x - mean
        variance = ops.mean(centered * centered if self.product else ops.square(centered), axis=(1, 2), keepdims=True)
        epsilon = self.epsilon if isinstance(self.epsilon, float) else np.asarray(self.epsilon, dtype)
        out = centered * ops.rsqrt(variance + epsilon)
        return ops.cast(out, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "product": self.product, "clip": self.clip}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConcatenateStyle(keras.layers.Layer):
    """Tiles a (batch, k) style vector over a feature map and appends it as channels.

    The official generator receives the style already tiled to the bottleneck
    size; tiling inside the model lets callers pass the plain 3-vector at any
    input size. ``tile`` (TFLite TILE), not ``broadcast_to``: LiteRT's GPU
    accelerator has no BROADCAST_TO, and the copy is exact either way.
    """

    def call(self, features, style):
        style = ops.cast(style, features.dtype)
        shape = ops.shape(features)
        tiled = ops.tile(style[:, None, None, :], (1, shape[1], shape[2], 1))
        return ops.concatenate([features, tiled], axis=-1)

    def compute_output_shape(self, features_shape, style_shape):
        b, h, w, c = features_shape
        return (b, h, w, c + style_shape[-1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResizeLike(keras.layers.Layer):
    """Bilinear resize of ``inputs`` to the spatial size of ``reference``.

    Half-pixel centres, no antialiasing: the same sampling as PyTorch's
    ``interpolate(mode="bilinear", align_corners=False)`` when upsampling.
    """

    def call(self, inputs, reference):
        shape = ops.shape(reference)
        return ops.image.resize(inputs, (shape[1], shape[2]), interpolation="bilinear", antialias=False)

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (inputs_shape[0], reference_shape[1], reference_shape[2], inputs_shape[3])


def normal_init(seed: int | None = None) -> keras.initializers.Initializer:
    """N(0, 0.02): the official ``init_type='normal'`` for conv and linear weights."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=seed)
