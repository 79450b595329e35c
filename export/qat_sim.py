"""Quantization-aware fine-tuning in Keras 3: the generator trained through a simulation of its full-integer TFLite graph.

The simulation rounds what TFLite's int8 kernels round, so fine-tuning can move the weights to where int8 costs
least, instance norms included:

- every convolution's kernel to int8, symmetric, one scale per output channel (the converter's default);
- every tensor an int8 op writes, on one asymmetric scale over its calibration range: each layer's output, and
  inside each instance norm its mean, deviations, squared deviations, variance, variance plus epsilon, reciprocal
  square root and product, the ops TFLite lowers the norm to;
- a convolution feeding a clipping norm (``export.balance``) writes its clipped output, as TFLite fuses the clip;
- a batch norm after a convolution is folded into its kernel and bias before the kernel is rounded, as the
  converter folds it (the mobile student).

Not rounded: reflection padding (TFLite's MIRROR_PAD keeps its input's scale), and the output of a convolution or
norm that ReLUs alone read (TFLite fuses the ReLU into the op, so one tensor is written, after the ReLU).

Ranges are calibrated like the converter's: the float model (no rounding) on the calibration photos, smallest and
largest value of each tensor. Fine-tuning recalibrates every ``recalibrate_every`` steps, since the weights move.
The result is a float Keras model: export it as any generator, and the converter calibrates it again on the same
photos (``benchmarks.qat``). The objective is distillation: the fake-quantized model's drawing against the float
model's, mean squared difference (what PSNR scores), so no discriminators or drawings are needed.

The optimizer is LAMB, whose step is relative to each weight tensor's norm: balancing leaves kernels a few
thousandths in size, beside biases a hundred times larger, and Adam's equal absolute step drove the simulated
loss up within 25 steps at 1e-5 (on the unpaired G, 256²).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS
from export.balance import producer
from keras_asym.layers.basic import InstanceNormalization, ReflectionPadding2D

FLOAT, CALIBRATE, QUANTIZE = "float", "calibrate", "quantize"
LOSSES = ("l1", "l2")
NORM_TENSORS = ("mean", "centered", "squared", "variance", "shifted", "rsqrt", "output")


class _State:
    """The simulation's mode, read by every rounding point when its graph is traced."""

    def __init__(self):
        self.mode = FLOAT


class _Range:
    """One rounded tensor: its calibration range, and the int8 fake quantization over it."""

    def __init__(self, layer: keras.layers.Layer, name: str, state: _State):
        self.state = state
        self.low = layer.add_weight(name=f"{name}_low", shape=(), initializer="zeros", trainable=False)
        self.high = layer.add_weight(name=f"{name}_high", shape=(), initializer="zeros", trainable=False)

    def __call__(self, x):
        if self.state.mode == CALIBRATE:
            self.low.assign(tf.minimum(self.low, tf.reduce_min(x)))
            self.high.assign(tf.maximum(self.high, tf.reduce_max(x)))
            return x
        if self.state.mode == QUANTIZE:
            return tf.quantization.fake_quant_with_min_max_vars(x, self.low, self.high, num_bits=8, narrow_range=False)
        return x

    def reset(self):
        self.low.assign(0.0)
        self.high.assign(0.0)


def _int8_kernel(kernel, channel_axis: int):
    """Symmetric int8 per output channel (127 levels each side), straight-through gradient."""
    axes = [a for a in range(len(kernel.shape)) if a != channel_axis % len(kernel.shape)]
    scale = tf.maximum(tf.reduce_max(tf.abs(kernel), axis=axes, keepdims=True), 1e-12) / 127.0
    rounded = tf.clip_by_value(tf.round(kernel / scale), -127.0, 127.0) * scale
    return kernel + tf.stop_gradient(rounded - kernel)


class SimulatedLayer(keras.layers.Layer):
    """A layer of the float generator (its weights shared, not copied) computed as its int8 TFLite op would be."""

    def __init__(
        self,
        inner: keras.layers.Layer,
        state: _State,
        clip_output: bool = False,
        round_output: bool = True,
        folded: keras.layers.BatchNormalization | None = None,
        **kwargs,
    ):
        super().__init__(name=f"sim_{inner.name}", **kwargs)
        self.inner, self.state, self.clip_output, self.round_output, self.folded = inner, state, clip_output, round_output, folded
        names = NORM_TENSORS if isinstance(inner, InstanceNormalization) else ("output",)
        self.tensor = {name: _Range(self, name, state) for name in names}
        self.ranges = list(self.tensor.values())
        self.built = True

    def _kernel(self, kernel, channel_axis):
        """The kernel as the converter stores it: the folded batch norm's scale in it, then rounded to int8."""
        if self.folded is not None:
            shape = [1] * len(kernel.shape)
            shape[channel_axis] = -1
            kernel = kernel * tf.reshape(self._bn_scale(), shape)
        return _int8_kernel(kernel, channel_axis) if self.state.mode == QUANTIZE else kernel

    def _bn_scale(self):
        bn = self.folded
        scale = tf.math.rsqrt(bn.moving_variance + bn.epsilon)
        return scale * bn.gamma if bn.scale else scale

    def _bias(self, y):
        inner, bn = self.inner, self.folded
        if bn is None:
            return y + inner.bias if inner.use_bias else y
        bias = inner.bias * self._bn_scale() if inner.use_bias else 0.0
        bias = bias - bn.moving_mean * self._bn_scale()
        return y + (bias + bn.beta if bn.center else bias)

    def compute_output_spec(self, inputs, *rest):
        return self.inner.compute_output_spec(inputs, *rest)

    def call(self, inputs, *rest):
        inner = self.inner
        if isinstance(inner, InstanceNormalization):
            return self._norm(inputs)
        if isinstance(inner, keras.layers.DepthwiseConv2D):  # TFLite's channels: input channel x multiplier
            if inner.kernel.shape[-1] != 1:
                raise ValueError(f"{inner.name}: a depth multiplier other than 1 is not simulated.")
            kernel = self._kernel(inner.kernel, -2)
            y = keras.ops.depthwise_conv(
                inputs,
                kernel,
                strides=inner.strides,
                padding=inner.padding,
                data_format=inner.data_format,
                dilation_rate=inner.dilation_rate,
            )
            y = inner.activation(self._bias(y))
        elif isinstance(inner, keras.layers.Conv2DTranspose):
            y = keras.ops.conv_transpose(
                inputs,
                self._kernel(inner.kernel, -2),
                strides=inner.strides,
                padding=inner.padding,
                output_padding=inner.output_padding,
                data_format=inner.data_format,
                dilation_rate=inner.dilation_rate,
            )
            y = inner.activation(self._bias(y))
        elif isinstance(inner, keras.layers.Conv2D):
            y = inner.convolution_op(inputs, self._kernel(inner.kernel, -1))
            y = inner.activation(self._bias(y))
        else:
            y = inner(inputs, *rest)
        if self.clip_output:
            y = tf.clip_by_value(y, -1.0, 1.0)
        return self.tensor["output"](y) if self.round_output else y

    def _norm(self, x):
        norm, t = self.inner, self.tensor
        x = tf.cast(x, tf.float32)
        if norm.clip:
            x = tf.clip_by_value(x, -1.0, 1.0)
        mean = t["mean"](tf.reduce_mean(x, axis=(1, 2), keepdims=True))
        centered = t["centered"](x - mean)
        squared = t["squared"](centered * centered)
        variance = t["variance"](tf.reduce_mean(squared, axis=(1, 2), keepdims=True))
        epsilon = norm.epsilon if isinstance(norm.epsilon, float) else np.asarray(norm.epsilon, np.float32)
        rsqrt = t["rsqrt"](tf.math.rsqrt(t["shifted"](variance + epsilon)))
        out = centered * rsqrt
        return t["output"](out) if self.round_output else out


def _readers(layer: keras.layers.Layer) -> list:
    return [node.operation for node in layer._outbound_nodes]  # noqa: SLF001  (functional wiring; no public accessor)


CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.DepthwiseConv2D)


def _batch_norms_to_fold(generator: keras.Model) -> dict[str, keras.layers.BatchNormalization]:
    """Convolution name -> the batch norm that alone reads it (TFLite folds it in); any other batch norm is refused."""
    folded = {}
    for bn in generator.layers:
        if not isinstance(bn, keras.layers.BatchNormalization):
            continue
        conv = bn.input._keras_history.operation  # noqa: SLF001  (functional wiring; no public accessor)
        if not (isinstance(conv, CONVOLUTIONS) and _readers(conv) == [bn] and conv.get_config()["activation"] == "linear"):
            raise ValueError(f"{generator.name}: batch norm {bn.name} does not follow a convolution it could be folded into.")
        folded[conv.name] = bn
    return folded


def _relu_only(layer, folded: dict) -> bool:
    """Whether ReLUs alone read the layer's output (through its folded batch norm): TFLite fuses them into it."""
    readers = _readers(layer)
    if layer.name in folded:
        readers = _readers(folded[layer.name])
    return bool(readers) and all(
        isinstance(r, keras.layers.ReLU) or (isinstance(r, keras.layers.Activation) and r.get_config()["activation"] == "relu")
        for r in readers
    )


class QuantizationSimulation:
    """The generator beside its int8 simulation (shared weights), calibrated and fine-tuned through it.

    Args:
        generator: a Keras generator in the form it will be exported (``export.balance.for_integer``'s output for
            a full-integer export: balanced, clipped, norms squaring by a product).
    """

    def __init__(self, generator: keras.Model):
        folded = _batch_norms_to_fold(generator)
        self.generator = generator
        self.state = _State()
        clipped = {producer(n).name for n in generator.layers if isinstance(n, InstanceNormalization) and n.clip and producer(n)}
        self.layers: list[SimulatedLayer] = []

        def call_function(layer, *args, **kwargs):
            if isinstance(layer, (keras.layers.InputLayer, ReflectionPadding2D)):
                return layer(*args, **kwargs)
            if isinstance(layer, keras.layers.BatchNormalization):  # folded into the convolution before it
                return args[0]
            round_output = not (isinstance(layer, (InstanceNormalization, *CONVOLUTIONS)) and _relu_only(layer, folded))
            sim = SimulatedLayer(
                layer, self.state, clip_output=layer.name in clipped, round_output=round_output, folded=folded.get(layer.name)
            )
            self.layers.append(sim)
            return sim(*args, **kwargs)

        self.model = keras.models.clone_model(generator, clone_function=lambda layer: layer, call_function=call_function)

    @property
    def ranges(self) -> list[_Range]:
        return [r for layer in self.layers for r in layer.ranges]

    def _inputs(self, photos: list[np.ndarray], index) -> dict:
        return {
            "photo": np.stack([to_model(photos[i]) for i in index]).astype(np.float32),
            "style": np.stack([ONE_HOTS[i % len(ONE_HOTS)] for i in index]).astype(np.float32),
        }

    def calibrate(self, photos: list[np.ndarray]) -> None:
        """Every tensor's range over the photos (styles cycled), the float model running: the converter's calibration."""
        for r in self.ranges:
            r.reset()
        self.state.mode = CALIBRATE
        try:
            for i in range(len(photos)):
                self.model(self._inputs(photos, [i]), training=False)
        finally:
            self.state.mode = FLOAT

    def drawings(self, photos: list[np.ndarray], quantized: bool) -> np.ndarray:
        """Drawings in [-1, 1] of the float model or of its simulation (styles cycled), one photo at a time."""
        self.state.mode = QUANTIZE if quantized else FLOAT
        try:
            return np.concatenate([np.asarray(self.model(self._inputs(photos, [i]), training=False)) for i in range(len(photos))])
        finally:
            self.state.mode = FLOAT

    def finetune(
        self,
        photos: list[np.ndarray],
        steps: int,
        learning_rate: float = 3e-5,
        batch_size: int = 1,
        recalibrate_every: int = 50,
        seed: int = 0,
        loss: str = "l2",
        label: str = "qat",
    ) -> dict:
        """Fine-tunes the shared weights so the simulated int8 drawing matches the float model's drawing before
        fine-tuning (``loss``: mean absolute or squared difference), photos flipped at random, styles at random.
        Returns the loss at the start and the end of fine-tuning (means of its first and last steps)."""
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
        n = len(photos)
        targets = {}
        for i in range(n):
            for flip in (False, True):
                photo = photos[i][:, ::-1] if flip else photos[i]
                for s in range(len(ONE_HOTS)):
                    x = {"photo": to_model(photo)[None].astype(np.float32), "style": ONE_HOTS[s][None].astype(np.float32)}
                    targets[i, flip, s] = np.asarray(self.generator(x, training=False))[0]
        optimizer = keras.optimizers.Lamb(learning_rate)
        weights = self.generator.trainable_variables
        optimizer.build(weights)

        @tf.function(reduce_retracing=True)
        def step(photo, style, target):
            with tf.GradientTape() as tape:
                error = self.model({"photo": photo, "style": style}, training=False) - target
                value = tf.reduce_mean(tf.abs(error) if loss == "l1" else tf.square(error))
            optimizer.apply_gradients(zip(tape.gradient(value, weights), weights))
            return value

        rng = np.random.default_rng(seed)
        losses = []
        progress = Progress(steps, label, unit="steps")
        self.calibrate(photos)
        for k in range(steps):
            if k and k % recalibrate_every == 0:
                self.calibrate(photos)
            picks = [(int(rng.integers(n)), bool(rng.integers(2)), int(rng.integers(len(ONE_HOTS)))) for _ in range(batch_size)]
            photo = np.stack([to_model(photos[i][:, ::-1] if f else photos[i]) for i, f, _ in picks]).astype(np.float32)
            style = np.stack([ONE_HOTS[s] for _, _, s in picks]).astype(np.float32)
            target = np.stack([targets[p] for p in picks])
            self.state.mode = QUANTIZE
            try:
                losses.append(float(step(photo, style, target)))
            finally:
                self.state.mode = FLOAT
            progress.update(k + 1, note=f"{loss} {np.mean(losses[-20:]):.5f}")
        self.calibrate(photos)
        head = max(1, min(20, steps // 5))
        return {"steps": steps, "loss": loss, "first": float(np.mean(losses[:head])), "last": float(np.mean(losses[-head:]))}
