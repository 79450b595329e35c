"""Instance norm made representable in int8 without changing what the float generator computes.

Full-integer TFLite quantizes each activation tensor with one scale for all its channels. Before an instance norm
the channels of a convolution's output differ by orders of magnitude in spread and sit on offsets larger than
their spread, so one int8 scale leaves a quiet channel a few levels, its squared deviations round to zero, and the
norm divides by ``sqrt(epsilon)``: that is where full int8 loses the drawing (``benchmarks.quant_sensitivity``).

Instance norm removes any per-channel offset and scale: ``norm(c * (y - m)) == norm(y)`` when its epsilon is
scaled by ``c**2`` too. So each convolution feeding a norm is rescaled, per output channel, to unit spread and
zero offset on calibration photos (kernel and bias times ``c``, offset ``m`` taken out of the bias), and its norm
gets the per-channel epsilon ``epsilon * c**2``. In float the result is the same function (to rounding); in int8
every channel of every norm input then uses the whole 8-bit range.

One more step changes the float function, slightly: each balanced norm input is scaled so that 1 is its
``CLIP_QUANTILE`` on every calibration photo, and the norm clips it to [-1, 1] (``InstanceNormalization.clip``;
TFLite fuses the clip into the convolution). Without it the int8 range is set by a few peaks: at 512² the stem's
7x7 responses to a full-resolution photo are heavy-tailed, so one int8 step is a sizeable part of a typical value.
"""

from __future__ import annotations

import keras
import numpy as np

from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.styles import ONE_HOTS
from keras_asym.layers.basic import InstanceNormalization

# Share of each calibration photo's norm-input values left unclipped: the float drawing stays about 50 dB from the
# unclipped one (benchmarks.quant_sensitivity); a lower share starts to clip visible lines.
CLIP_QUANTILE = 0.9999
_SAMPLES = 2_000_000  # values per photo and norm a quantile is estimated from
PASS_THROUGH = (keras.layers.Cropping2D,)  # between a convolution and its norm, keeping channels as they are


def source(norm: InstanceNormalization):
    """The layer whose output the norm normalises, looking through channel-preserving layers."""
    layer = norm.input._keras_history.operation
    while isinstance(layer, PASS_THROUGH):
        layer = layer.input._keras_history.operation
    return layer


def producer(norm: InstanceNormalization):
    """The convolution with a bias whose output the norm normalises (``source``), which balancing rescales; else None."""
    layer = source(norm)
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) and layer.use_bias:
        return layer
    return None


def norm_input_statistics(generator: keras.Model, photos: list[np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per norm: each channel's mean offset and RMS spread over the photos (styles cycled), at the norm's input."""
    norms = [layer for layer in generator.layers if isinstance(layer, InstanceNormalization) and producer(layer)]
    if not norms:  # e.g. norms after depthwise convolutions, which are not rescaled
        return {}
    probe = keras.Model(generator.inputs, [norm.input for norm in norms])
    sums = {norm.name: [0.0, 0.0] for norm in norms}
    for i, photo in enumerate(photos):
        outputs = probe({"photo": to_model(photo)[None], "style": ONE_HOTS[i % len(ONE_HOTS)][None]}, training=False)
        for norm, value in zip(norms, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            value = np.asarray(value, np.float64)[0]
            sums[norm.name][0] = sums[norm.name][0] + value.mean(axis=(0, 1))
            sums[norm.name][1] = sums[norm.name][1] + value.var(axis=(0, 1))
    return {name: (mean / len(photos), np.sqrt(var / len(photos))) for name, (mean, var) in sums.items()}


def norm_input_bounds(generator: keras.Model, photos: list[np.ndarray], quantile: float) -> dict[str, dict]:
    """Per norm: ``bound``, the largest over the photos of each photo's ``quantile`` of |input| (all channels
    together, as int8 sees them), and ``peak``, the largest |input|. Styles are cycled as in the statistics."""
    norms = [layer for layer in generator.layers if isinstance(layer, InstanceNormalization) and producer(layer)]
    if not norms:
        return {}
    probe = keras.Model(generator.inputs, [norm.input for norm in norms])
    rng = np.random.default_rng(0)
    bounds = {norm.name: {"bound": 0.0, "peak": 0.0} for norm in norms}
    for i, photo in enumerate(photos):
        outputs = probe({"photo": to_model(photo)[None], "style": ONE_HOTS[i % len(ONE_HOTS)][None]}, training=False)
        for norm, value in zip(norms, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            magnitude = np.abs(np.asarray(value, np.float32)).ravel()
            sample = magnitude if magnitude.size <= _SAMPLES else magnitude[rng.integers(0, magnitude.size, _SAMPLES)]
            entry = bounds[norm.name]
            entry["bound"] = max(entry["bound"], float(np.quantile(sample, quantile)))
            entry["peak"] = max(entry["peak"], float(magnitude.max()))
    return bounds


def for_integer(generator: keras.Model, photos: list[np.ndarray] | None, clip_quantile: float | None = CLIP_QUANTILE) -> keras.Model:
    """A copy of ``generator`` for integer conversion: every norm squares by a product (see InstanceNormalization)
    and, given ``photos``, its norm inputs are balanced on them, then clipped at ``clip_quantile`` (None: not
    clipped, the same function in float to rounding, ``tests/test_balance.py``). A plain functional model, which
    saves with its per-channel epsilons."""
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(generator))
    copy.set_weights(generator.get_weights())
    for layer in copy.layers:
        if isinstance(layer, InstanceNormalization):
            layer.product = True
    if photos:
        _balance(copy, photos)
        if clip_quantile is not None:
            _clip(copy, photos, clip_quantile)
    return keras.Model(copy.input, copy.output, name=f"{copy.name}_integer")


def balance_norm_inputs(generator: keras.Model, photos: list[np.ndarray]) -> keras.Model:
    """A copy of ``generator`` whose norm inputs have zero offset and unit spread per channel on ``photos``."""
    return for_integer(generator, photos, clip_quantile=None)


def _balance(balanced: keras.Model, photos: list[np.ndarray]) -> None:
    statistics = norm_input_statistics(balanced, photos)
    for name, (mean, spread) in statistics.items():
        norm = balanced.get_layer(name)
        conv = producer(norm)
        floor = max(float(np.median(spread)), 1e-12) * 1e-3  # a dead channel keeps a bounded gain
        gain = 1.0 / np.maximum(spread, floor)
        kernel, bias = conv.get_weights()
        axis = 2 if isinstance(conv, keras.layers.Conv2DTranspose) else 3  # the output-channel axis
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        conv.set_weights([(kernel * gain.reshape(shape)).astype(kernel.dtype), ((bias - mean) * gain).astype(bias.dtype)])
        norm.epsilon = [float(e) for e in np.broadcast_to(norm.epsilon, gain.shape) * gain**2]


def _clip(balanced: keras.Model, photos: list[np.ndarray], quantile: float) -> None:
    for name, entry in norm_input_bounds(balanced, photos, quantile).items():
        norm = balanced.get_layer(name)
        conv = producer(norm)
        bound = max(entry["bound"], 1e-12)
        kernel, bias = conv.get_weights()
        conv.set_weights([(kernel / bound).astype(kernel.dtype), (bias / bound).astype(bias.dtype)])
        norm.epsilon = [float(e) / bound**2 for e in np.broadcast_to(norm.epsilon, bias.shape)]
        norm.clip = True
