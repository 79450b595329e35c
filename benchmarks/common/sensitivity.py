"""Requantizing one calibrated generator with any set of its units left float (``benchmarks.quant_sensitivity``).

Flag-free, so tests and other benchmarks can import it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import convert as lite_convert

from export import tflite
from export.savedmodel import save_savedmodel
from keras_asym.layers.basic import InstanceNormalization

# The MLIR quantizer ignores a node denylist on TRANSPOSE_CONV: only the op type can keep it float, so the
# upsampling's transpose convolutions are one unit, in int8 together or float together.
TRANSPOSE_CONVS = "transpose convolutions"


def layer_of(part: str) -> str | None:
    """The Keras layer named in one part of a TFLite op's output name (``model/block6_norm1_1/Mean`` -> ``block6_norm1``)."""
    match = re.search(r"^[^/]+/([^/]+?)(?:_\d+)?/", part)
    return match.group(1) if match else None


def units_of_ops(calibrated: bytes, model) -> tuple[dict[str, list[str]], list[str]]:
    """Each op's output tensor name grouped by *unit*: a layer with weights, an instance norm, or an add.

    Weightless ops (padding, cropping, ReLU, the style tiling) join the next unit in execution order, so a
    convolution carries its padding; a fused op name counts for the unit it names, the layer with weights where it
    names two (a convolution with its norm's clip fused in); the model's last ops (tanh) join the last unit.
    Returns {unit: [node names]} and the units in execution order.
    """
    weighted = {layer.name for layer in model.layers if layer.weights}
    kinds = weighted | {
        layer.name for layer in model.layers if isinstance(layer, InstanceNormalization) or type(layer).__name__ in ("Add", "Multiply")
    }
    interpreter = Interpreter(model_content=calibrated)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    units: dict[str, list[str]] = {}
    transposed: list[str] = []
    pending: list[str] = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        node = names[op["outputs"][0]]
        named = [name for name in map(layer_of, node.split(";")) if name in kinds]
        layer = next((name for name in named if name in weighted), named[0] if named else None)
        if layer is None:
            pending.append(node)
            continue
        units.setdefault(layer, []).extend([*pending, node])
        if op["op_name"] == "TRANSPOSE_CONV" and layer not in transposed:
            transposed.append(layer)
        pending = []
    if pending and units:
        units[next(reversed(units))].extend(pending)
    if len(transposed) > 1:  # one unit: see TRANSPOSE_CONVS
        merged = {TRANSPOSE_CONVS: [node for layer in transposed for node in units[layer]]}
        units = {
            (TRANSPOSE_CONVS if name == transposed[0] else name): (merged[TRANSPOSE_CONVS] if name == transposed[0] else nodes)
            for name, nodes in units.items()
            if name not in transposed[1:]
        }
    return units, list(units)


def block_of(unit: str) -> str:
    return "upsampling" if unit == TRANSPOSE_CONVS else unit.split("_", 1)[0]


class Sensitivity:
    """One calibration of the generator at one size; ``quantize`` requantizes it with any set of float nodes."""

    def __init__(self, model, size: int, calibration: list[np.ndarray], work: Path):
        self.model = model
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        saved = self.saved = save_savedmodel(self.model, work / f"saved_{size}", size, size, batch=1)
        self.calibration = calibration
        self.fp32 = tflite.convert(saved, "fp32")
        converter = tflite.make_converter(saved, "int8", calibration, "int8")
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.inference_input_type = converter.inference_output_type = tf.float32
        converter.experimental_mlir_quantizer = True
        converter._experimental_calibrate_only = True  # the quantization debugger's route: calibrate, quantize later
        self.calibrated = converter.convert()
        self.units, self.order = units_of_ops(self.calibrated, self.model)
        self.nodes = [node for unit in self.order for node in self.units[unit]]

    def quantize(self, float_units=(), per_channel: bool = True) -> bytes:
        """The converter's own int8 step (MLIR quantizer) on the stored calibration, ``float_units`` left float."""
        return lite_convert.mlir_quantize(
            self.calibrated,
            disable_per_channel=not per_channel,
            denylisted_nodes=[node for unit in float_units for node in self.units[unit]],
            denylisted_ops=["TRANSPOSE_CONV"] if TRANSPOSE_CONVS in float_units else [],
        )

    def int16_activations(self) -> bytes:
        """16x8: the converter quantizes int16 activations with its older calibrator, so this calibrates anew."""
        converter = tflite.make_converter(self.saved, "int8", self.calibration, "int8")
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.float32
        converter.experimental_new_quantizer = False  # the new one calibrates first and then again for int16
        return converter.convert()

    def only(self, units) -> bytes:
        """Int8 in ``units`` alone, float elsewhere."""
        return self.quantize([unit for unit in self.order if unit not in units])

    def all_but(self, units) -> bytes:
        """Int8 everywhere but ``units``."""
        return self.quantize(units)

    def write(self, model: bytes, name: str) -> Path:
        path = self.work / f"{name}.tflite"
        path.write_bytes(model)
        return path
