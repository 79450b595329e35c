"""The sensitivity benchmark's requantization: every op belongs to one unit, and the float set means what it says."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from benchmarks.common.sensitivity import TRANSPOSE_CONVS, Sensitivity, block_of, layer_of
from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.styles import ONE_HOTS
from export.balance import for_integer
from keras_asym.models.networks import StyleGenerator


def test_layer_of_reads_the_keras_layer_from_a_tflite_op_name():
    assert layer_of("style_generator_1/block6_norm1_1/Mean") == "block6_norm1"
    assert layer_of("style_generator/up1_deconv/BiasAdd") == "up1_deconv"
    assert layer_of("StatefulPartitionedCall:0") is None
    assert block_of("block6_norm1") == "block6" and block_of("head_conv") == "head"


@pytest.fixture(scope="module")
def sensitivity(tmp_path_factory):
    work = tmp_path_factory.mktemp("sensitivity")
    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=4, n_blocks=2, model0_res=1)
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(4)]
    return Sensitivity(for_integer(generator, photos), 32, photos, work), photos


def _draw(model: bytes, photo: np.ndarray) -> np.ndarray:
    runner = Interpreter(model_content=model).get_signature_runner()
    return runner(photo=to_model(photo)[None], style=ONE_HOTS[0][None])["drawing"]


def test_every_op_belongs_to_exactly_one_unit_in_execution_order(sensitivity):
    s, _ = sensitivity
    units = [layer.name for layer in s.model.layers if layer.weights or "norm" in layer.name or layer.name.endswith("_add")]
    units = [TRANSPOSE_CONVS if u == "up1_deconv" else u for u in units if u != "up2_deconv"]
    assert s.order == units
    assert {"stem_conv", "stem_norm", "block2_add", "up2_norm", "head_conv", TRANSPOSE_CONVS} <= set(s.order)
    ops = [op for op in Interpreter(model_content=s.calibrated)._get_ops_details() if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")]
    assert len(s.nodes) == len(set(s.nodes)) == len(ops)


def _int8_tensors(model: bytes) -> int:
    """Int8 activations: op outputs (a float transpose convolution keeps int8 weights, see TRANSPOSE_CONVS)."""
    interpreter = Interpreter(model_content=model)
    dtypes = {d["index"]: d["dtype"] for d in interpreter.get_tensor_details()}
    return sum(dtypes[i] == np.int8 for op in interpreter._get_ops_details() for i in op["outputs"])


def test_no_unit_in_int8_is_the_float_model_and_every_unit_is_the_converters_int8(sensitivity):
    s, photos = sensitivity
    float_model, one, everything = s.only([]), s.only(["block1_conv1"]), s.all_but([])
    assert _int8_tensors(float_model) == 0 < _int8_tensors(one) < _int8_tensors(everything)
    assert bytes(everything) == bytes(s.only(s.order))
    error = {
        name: np.abs(_draw(m, photos[0]) - _draw(s.fp32, photos[0])).max() for name, m in (("float", float_model), ("all", everything))
    }
    assert error["float"] < 0.25 * error["all"], error  # only the transpose convolutions' int8 weights against every op in int8
