"""Each instance norm's int8 variance error, measured in the converted graph and given back through its epsilon.

A full-integer norm squares its centered input into one int8 tensor whose scale is set by the largest square on
the calibration photos, and averages them into one int8 variance per channel on a scale shared by all channels.
Where norm inputs are heavy-tailed (the unpaired G's upsampling and residual blocks) most squares are a fraction of one step and round
down more often than up: int8 computes some channels' variance several percent low, so draws them too strong, and
mostly the same channels by the same amount on every photo. That shared part is a bias per channel, and epsilon is
per channel (``export.balance``) and is added to the variance inside the int8 graph. So the converted model runs
the calibration photos with every tensor kept, each norm's variance is compared with the variance of its own int8
centered input, the mean difference is added to epsilon, and the model is converted again.

The float model's variance is not low, so the corrected model drifts in float by as much as int8 gains: this is for
a graph whose norms run in int8 (``int8``), not for ``int8_float_norm`` or a mixed plan with float norms. Nor after
quantization-aware fine-tuning, which has already learnt to offset the bias through its simulation: corrected again,
the unpaired G's QAT file at 512² fell from 28.6 to 27.2 dB (``benchmarks.qat``).
"""

from __future__ import annotations

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.styles import ONE_HOTS
from export import tflite
from keras_asym.layers.basic import InstanceNormalization


def _norm_tensors(interpreter: Interpreter, names: list[str]) -> dict[str, tuple[int, int]]:
    """Norm layer name -> (its int8 centered input, its int8 variance): each RSQRT reads ADD(MEAN(MUL(c, c)), eps)."""
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # noqa: SLF001  (op wiring; no public accessor)
    producer = {t: op for op in ops for t in op["outputs"]}
    found = {}
    for op in ops:
        if op["op_name"] != "RSQRT" or op["inputs"][0] not in producer:
            continue
        add = producer[op["inputs"][0]]
        means = [t for t in add["inputs"] if t in producer and producer[t]["op_name"] == "MEAN"]
        if add["op_name"] != "ADD" or len(means) != 1:
            continue
        square = producer.get(producer[means[0]]["inputs"][0])
        if square is None or square["op_name"] != "MUL" or square["inputs"][0] != square["inputs"][1]:
            continue
        tensor_name = details[op["outputs"][0]]["name"]
        owners = sorted((n for n in names if f"/{n}" in tensor_name), key=len)  # "block1_norm1" is in "block1_norm10"
        if owners and (len(owners) == 1 or len(owners[-1]) > len(owners[-2])) and details[means[0]]["dtype"] == np.int8:
            found[owners[-1]] = (square["inputs"][0], means[0])
    return found


def measure(model: bytes, integer: keras.Model, photos: list[np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per norm of ``integer`` found in the full-int8 ``model``: each channel's variance of the int8 centered input
    minus the int8 variance (the bias), and that variance, averaged over ``photos`` (styles cycled). TFLite's own
    kernels, every tensor kept."""
    interpreter = tflite.every_tensor_interpreter(model)
    names = [layer.name for layer in integer.layers if isinstance(layer, InstanceNormalization)]
    tensors = _norm_tensors(interpreter, names)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}

    def value(index):
        scale, zero = details[index]["quantization"]
        return (interpreter.get_tensor(index).astype(np.float64) - zero) * scale

    inputs = interpreter.get_input_details()
    bias, spread = {name: 0.0 for name in tensors}, {name: 0.0 for name in tensors}
    for i, photo in enumerate(photos):
        for detail in inputs:
            is_photo = len(detail["shape"]) == 4
            x = to_model(photo)[None] if is_photo else ONE_HOTS[i % len(ONE_HOTS)][None]
            scale, zero = detail["quantization"]
            if detail["dtype"] != np.float32:  # integer I/O: photo and style on their own scales
                info = np.iinfo(detail["dtype"])
                x = np.clip(np.round(x / scale + zero), info.min, info.max)
            interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
        interpreter.invoke()
        for name, (centered, variance) in tensors.items():
            squares = np.square(value(centered)[0]).mean(axis=(0, 1))
            bias[name] = bias[name] + (squares - value(variance).reshape(-1)) / len(photos)
            spread[name] = spread[name] + squares / len(photos)
    return {name: (bias[name], spread[name]) for name in tensors}


def correct(integer: keras.Model, bias: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sets each norm's epsilon to its own plus ``bias`` floored at 0, replacing what an earlier call added: the
    bias is the rounding's, which epsilon (added after the variance) does not change, so it is measured once, not
    accumulated. Returns what each norm now carries."""
    added = {}
    for name, delta in bias.items():
        norm = integer.get_layer(name)
        total = np.maximum(np.asarray(delta, np.float64), 0.0)
        base = np.broadcast_to(np.asarray(norm.epsilon, np.float64), total.shape) - getattr(norm, "variance_bias", 0.0)
        norm.epsilon = [float(e) for e in base + total]
        norm.variance_bias = total
        added[name] = total
    return added


def corrected(integer: keras.Model, model: bytes, photos: list[np.ndarray]) -> dict:
    """Measures ``model`` (the full-int8 conversion of ``integer``) on ``photos`` and corrects ``integer``'s
    epsilons in place; convert it again to get the corrected file. Returns a summary for a record: how many norms,
    and the bias as a share of the variance (mean over channels, per norm)."""
    measured = measure(model, integer, photos)
    correct(integer, {name: bias for name, (bias, _) in measured.items()})
    return {
        "norms_corrected": len(measured),
        "bias_share_of_variance": {
            name: round(float(np.mean(bias / np.maximum(variance, 1e-30))), 4) for name, (bias, variance) in measured.items()
        },
    }
