"""Full-integer activation ranges at a quantile of the calibration values: the converter's file at the extremes,
narrower ranges that are the pooled quantiles, and the exporter's search."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from tensorflow.lite.tools import flatbuffer_utils

from export import activation_ranges, exporter, tflite
from export.balance import for_integer
from export.savedmodel import save_savedmodel
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.models.networks import StyleGenerator

SIZE = 32


def _photos(count=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=8, n_blocks=1)
    photos = _photos()
    saved = save_savedmodel(for_integer(generator, photos), tmp_path_factory.mktemp("ranges") / "saved", SIZE, SIZE, batch=1)
    return generator, saved, photos, activation_ranges.Calibration(saved, photos, "uint8")


def _graph(model: bytes):
    """Ops, tensor types, scales, zero points and weights of a flatbuffer (its metadata, which holds a hash, aside)."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    metadata = {m.buffer for m in model.metadata}
    graph = model.subgraphs[0]
    tensors = [
        (
            t.name,
            t.type,
            None
            if t.quantization is None or t.quantization.scale is None
            else (list(t.quantization.scale), list(t.quantization.zeroPoint)),
            None if t.buffer in metadata or model.buffers[t.buffer].data is None else bytes(model.buffers[t.buffer].data),
        )
        for t in graph.tensors
    ]
    ops = [(model.operatorCodes[op.opcodeIndex].builtinCode, list(op.inputs), list(op.outputs)) for op in graph.operators]
    return ops, tensors


def _finer_activations(plain: bytes, ranged: bytes) -> int:
    """How many activation tensors (by name) ``ranged`` quantizes with a step under 0.98 of ``plain``'s; the two files
    must hold the same ops (no requantization added for a narrowed range)."""
    plain_ops, plain_tensors = _graph(plain)
    ranged_ops, ranged_tensors = _graph(ranged)
    assert [op[0] for op in ranged_ops] == [op[0] for op in plain_ops]
    steps = {name: q[0][0] for name, _, q, data in plain_tensors if q and len(q[0]) == 1 and data is None}
    return sum(q[0][0] < 0.98 * steps[name] for name, _, q, data in ranged_tensors if name in steps and q and data is None)


def test_a_range_quantile_is_auto_or_a_share_above_one_half():
    assert activation_ranges.parse("auto") == "auto"
    assert activation_ranges.parse("0.9999") == 0.9999 and activation_ranges.parse(1) == 1.0
    for bad in ("abc", "0.5", "1.01", "-1", None):
        with pytest.raises(ValueError, match=repr(bad)):
            activation_ranges.parse(bad)


def test_at_the_extremes_the_file_is_the_converters_own(calibrated):
    _, saved, photos, calibration = calibrated
    assert _graph(calibration.quantize(activation_ranges.EXTREMES)) == _graph(tflite.convert(saved, "int8", photos, "uint8"))


def test_tails_give_the_quantiles_of_every_value_seen_over_all_chunks():
    rng = np.random.default_rng(0)
    chunks = [rng.standard_t(3, size=(1, 16, 16, 4)).astype(np.float32) * (k + 1) for k in range(5)]
    values = np.sort(np.concatenate([c.ravel() for c in chunks]))
    for quantile in (0.999, 0.99):
        tails = activation_ranges._Tails(int(np.ceil((1 - 0.99) * values.size)) + 1)
        for chunk in chunks:
            tails.add(chunk)
        rank = int((1 - quantile) * values.size)
        assert tails.range_at(quantile) == (min(0.0, values[rank]), max(0.0, values[::-1][rank]))
    only_positive = activation_ranges._Tails(10)
    only_positive.add(np.linspace(1, 2, 100, dtype=np.float32))
    assert only_positive.range_at(0.95) == (0.0, pytest.approx(1.95, abs=0.011))  # int8 must hold 0


def test_a_quantile_narrows_every_range_and_its_file_quantizes_on_the_narrower_ranges(calibrated):
    _, _, _, calibration = calibrated
    record = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibration.calibrated))
    extremes = {
        i: (t.quantization.min[0], t.quantization.max[0])
        for i, t in enumerate(record.subgraphs[0].tensors)
        if i in calibration.ranges[0.9999]
    }
    assert len(extremes) > 20
    narrower = 0
    for index, (low, high) in calibration.ranges[0.9999].items():
        assert min(extremes[index][0], 0.0) <= low <= 0.0 <= high <= max(extremes[index][1], 0.0)  # int8 holds 0
        narrower += (high - low) < 0.98 * (extremes[index][1] - extremes[index][0])
    assert narrower >= 10  # the tensors with a tail beyond the quantile (many are clipped at ±1 already)
    finer = _finer_activations(calibration.quantize(activation_ranges.EXTREMES), calibration.quantize(0.9999))
    assert finer >= narrower // 2  # the int8 steps of the narrowed tensors shrink with their ranges
    with pytest.raises(ValueError, match="0.5"):
        calibration.quantize(0.5)


def test_the_search_keeps_the_candidate_closest_to_float_ties_going_to_the_wider_range(calibrated, tmp_path, monkeypatch):
    generator, _, photos, calibration = calibrated
    reference = tflite.keras_drawings(generator, photos)
    chosen, scores = activation_ranges.choose(calibration, photos, reference, tmp_path, log=lambda *a: None)
    assert set(scores) == {f"{q:g}" for q in activation_ranges.CANDIDATES}
    assert scores[f"{chosen:g}"] == max(scores.values())
    monkeypatch.setattr(tflite, "drawing_psnr", lambda *a: 30.0)
    assert activation_ranges.choose(calibration, photos, reference, tmp_path, log=lambda *a: None)[0] == activation_ranges.EXTREMES


def test_an_export_records_the_ranges_it_shipped_and_a_given_quantile_is_used_as_given(tmp_path):
    keras.utils.set_random_seed(1)
    path = tmp_path / "g.keras"
    StyleGenerator(ngf=4, n_blocks=1).save(path)
    options = {"size": (SIZE, SIZE), "variants": ("int8",), "calibration_count": 4, "per_op_report": False, "gpu_check": "off"}
    exporter.export_generator(path, tmp_path / "auto", **options, log=lambda *a: None)
    searched = json.loads((tmp_path / "auto" / "drawing_int8.json").read_text())["activation_ranges"]
    scores = searched["int8_psnr_db_on_calibration"]
    assert set(scores) == {f"{q:g}" for q in activation_ranges.CANDIDATES} and scores[f"{searched['quantile']:g}"] == max(scores.values())
    exporter.export_generator(path, tmp_path / "given", **options, range_quantile=0.9999, log=lambda *a: None)
    given = json.loads((tmp_path / "given" / "drawing_int8.json").read_text())
    assert given["activation_ranges"] == {"quantile": 0.9999} and given["variance_bias"]["norms_corrected"] > 0
    exporter.export_generator(path, tmp_path / "extremes", **options, range_quantile=1, log=lambda *a: None)
    # the shipped file, converted again after the variance-bias correction, still has the narrower ranges
    shipped = [(tmp_path / folder / "drawing_int8.tflite").read_bytes() for folder in ("extremes", "given")]
    assert _finer_activations(*shipped) >= 5
    with pytest.raises(ValueError, match="float_ops"):
        exporter.export_generator(path, tmp_path / "mixed", **options, float_ops=("RSQRT",), range_quantile=0.9999, log=lambda *a: None)
    assert not (tmp_path / "mixed").exists()


def test_the_exporter_refuses_a_bad_range_quantile_in_one_line_before_loading_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "export", "--model", str(tmp_path / "missing.keras"), "--output", str(tmp_path / "o"),
         "--size", "32", "--range_quantile", "0.2"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "'0.2'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_an_addition_input_on_a_step_too_fine_for_xnnpack_gets_a_wider_range_and_xnnpack_then_runs_it(calibrated):
    from tensorflow.lite.python import convert as lite_convert

    *_, calibration = calibrated
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibration.calibrated))
    graph = model.subgraphs[0]
    sub = next(op for op in graph.operators if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) == "SUB")
    mean, output = sub.inputs[1], sub.outputs[0]  # a norm's input minus its mean
    assert b"Mean" in graph.tensors[mean].name
    assert mean not in activation_ranges.delegable(calibration.calibrated, {})  # as calibrated, XNNPACK takes it
    tiny = {mean: (-1e-9, 1e-9)}  # what a balanced input's mean can come to
    widened = activation_ranges.delegable(calibration.calibrated, tiny)
    low, high = widened[mean]
    span = float(graph.tensors[output].quantization.max[0]) - float(graph.tensors[output].quantization.min[0])
    assert low <= 0 <= high and high - low == pytest.approx(span / activation_ranges.MAX_ADD_SCALE_RATIO)

    def left_to_reference_kernels(ranges):
        quantized = lite_convert.mlir_quantize(activation_ranges.with_ranges(calibration.calibrated, ranges), False)
        return [row["op"] for row in tflite.reference_kernel_ops(bytes(quantized)) if row["op"] == "SUB"]

    assert left_to_reference_kernels(tiny) == ["SUB"] and left_to_reference_kernels(widened) == []


def _prepares(calibrated: bytes, ranges: dict, path) -> bool:
    """Whether XNNPACK prepares the full int8 file quantized from ``calibrated`` with ``ranges``."""
    from tensorflow.lite.python import convert as lite_convert

    from edge_demo.runtime.generator import TFLiteGenerator

    path.write_bytes(bytes(lite_convert.mlir_quantize(activation_ranges.with_ranges(calibrated, ranges), False)))
    try:
        TFLiteGenerator(path, threads=1, probe=False)
    except ValueError as err:
        assert "cannot prepare" in str(err)
        return False
    return True


def test_a_convolution_output_the_calibration_barely_moved_is_widened_until_xnnpack_can_requantize_it(calibrated, tmp_path):
    *_, calibration = calibrated
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibration.calibrated))
    graph = model.subgraphs[0]
    ranged = set(activation_ranges._ranged_tensors(model))
    names = {i: flatbuffer_utils.opcode_to_name(model, i) for i in range(len(model.operatorCodes))}
    added = {i for op in graph.operators if names[op.opcodeIndex] in ("ADD", "SUB") for i in op.inputs}  # widened by their own rule
    conv = next(
        op
        for op in graph.operators
        if names[op.opcodeIndex] == "CONV_2D" and {op.inputs[0], op.outputs[0]} <= ranged and op.outputs[0] not in added
    )
    assert conv.outputs[0] not in activation_ranges.delegable(calibration.calibrated, {})  # as calibrated, nothing to do
    dead = {conv.outputs[0]: (0.0, 2e-6)}  # what a ReLU that died in training comes to on the calibration photos
    assert not _prepares(calibration.calibrated, dead, tmp_path / "dead.tflite")
    low, high = activation_ranges.delegable(calibration.calibrated, dead)[conv.outputs[0]]
    q = graph.tensors[conv.inputs[0]].quantization
    weights = activation_ranges._constant(model, conv.inputs[1])
    requantization = (float(q.max[0]) - float(q.min[0])) * np.abs(weights).max() / 127 / (high - low)
    assert low == 0.0 and requantization == pytest.approx(activation_ranges.MAX_CONV_REQUANTIZATION)
    assert _prepares(calibration.calibrated, activation_ranges.delegable(calibration.calibrated, dead), tmp_path / "widened.tflite")


def test_an_addition_input_behind_a_reshape_is_widened_with_the_reshapes_input_whose_scale_it_shares(tmp_path):
    from tensorflow.lite.python import convert as lite_convert

    keras.utils.set_random_seed(0)
    student = MobileStyleGenerator(alpha=0.25, n_blocks=1, global_context=True)
    shift = student.get_layer("block1_context_shift")  # a trained context's shift: small beside the map it moves
    shift.set_weights([np.random.default_rng(0).normal(0, 1e-6, w.shape).astype(np.float32) for w in shift.get_weights()])
    photos = _photos()
    calibration = activation_ranges.Calibration(save_savedmodel(student, tmp_path / "saved", SIZE, SIZE, batch=1), photos, "uint8")
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibration.calibrated))
    graph = model.subgraphs[0]
    codes = {i: flatbuffer_utils.opcode_to_name(model, i) for i in range(len(model.operatorCodes))}
    reshape = next(op for op in graph.operators if codes[op.opcodeIndex] == "RESHAPE" and b"shifted" in graph.tensors[op.outputs[0]].name)
    add = next(op for op in graph.operators if codes[op.opcodeIndex] == "ADD" and reshape.outputs[0] in op.inputs)
    widened = activation_ranges.delegable(calibration.calibrated, {})
    assert widened[reshape.outputs[0]] == widened[reshape.inputs[0]]  # the shift and its reshape on one scale
    q = graph.tensors[add.outputs[0]].quantization
    low, high = widened[reshape.inputs[0]]
    assert high - low == pytest.approx((float(q.max[0]) - float(q.min[0])) / activation_ranges.MAX_ADD_SCALE_RATIO)

    def left_to_reference_kernels(ranges):
        quantized = lite_convert.mlir_quantize(activation_ranges.with_ranges(calibration.calibrated, ranges), False)
        return [row["op"] for row in tflite.reference_kernel_ops(bytes(quantized)) if row["op"] == "ADD"]

    only_reshape = {reshape.outputs[0]: widened[reshape.outputs[0]]}  # what the file got before: the reshape's range alone
    assert left_to_reference_kernels(only_reshape) == ["ADD"] and left_to_reference_kernels(widened) == []
