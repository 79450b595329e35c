"""Full-integer activation ranges set at a quantile of the calibration photos' values instead of their extremes.

TFLite's calibrator gives each activation tensor the range from its smallest to its largest value on the
calibration photos, and int8 spreads its 256 levels evenly over it. The generator's activations are heavy-tailed,
and more so the larger the image (more pixels, rarer peaks): at 512² a few values in a million set a range in
which every typical value rounds coarsely. Setting each range at a quantile of that tensor's values pooled over the
calibration photos clips those rare peaks (to the range's end) and narrows the step of everything else; which
quantile wins depends on the generator and the size, so ``choose`` quantizes at each candidate and keeps the one
whose drawings of the calibration photos come closest to the float model's.

The route is the converter's own: calibrate (``_experimental_calibrate_only``, as TensorFlow's quantization
debugger does), run the calibrated float model on the same photos with every tensor kept, write the narrower ranges
into the calibration record, then quantize it with the MLIR quantizer exactly as ``TFLiteConverter.convert`` would.
At ``EXTREMES`` nothing else is edited: the same graph, weights and scales as the converter's (its metadata aside),
but for the ranges ``delegable`` widens so that XNNPACK runs every addition.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tensorflow.lite.python import convert as lite_convert
from tensorflow.lite.tools import flatbuffer_utils

from edge_demo.runtime.progress import Progress
from export import tflite

AUTO = "auto"
EXTREMES = 1.0  # the calibrator's own ranges, smallest to largest value
# From no clip to one that cuts a hundredth of a percent of each tensor's values.
CANDIDATES = (EXTREMES, 0.99999, 0.99995, 0.9999)
# XNNPACK takes an int8 ADD or SUB whose input scales lie within 2^-10 of its output's (a measured norm mean at
# 0.00092 of it ran on the reference kernel); a margin of 2 below that.
MAX_ADD_SCALE_RATIO = 512
# Ops whose int8 output shares its input's scale: the quantizer takes the input's range for both, so a range given to
# the output alone is not the one the file gets.
SAME_SCALE_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
# XNNPACK refuses an int8 convolution whose requantization scale (input step x weight step / output step) reaches
# 256; an output the calibration photos barely moved (a context's ReLU that died in training: [0, 2e-6]) is widened
# to keep it under half that.
MAX_CONV_REQUANTIZATION = 128.0
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def parse(value: str | float) -> float | str:
    """``"auto"`` or a quantile in (0.5, 1]; raises ``ValueError`` naming the value otherwise."""
    return tflite.parse_quantile(value, "activation range quantile", above=0.5)


def _ranged_tensors(model) -> list[int]:
    """Indices of the activation tensors the calibrator gave one range each (not the graph's inputs and outputs,
    whose scales are the I/O contract, nor constants)."""
    graph = model.subgraphs[0]
    ends = set(graph.inputs) | set(graph.outputs)
    found = []
    for i, tensor in enumerate(graph.tensors):
        q = tensor.quantization
        has_data = tensor.buffer and model.buffers[tensor.buffer].data is not None
        if q is not None and q.min is not None and len(q.min) == 1 and q.max is not None and i not in ends and not has_data:
            found.append(i)
    return found


class _Tails:
    """The ``k`` largest and ``k`` smallest values seen so far of one tensor, and how many values were seen."""

    def __init__(self, k: int):
        self.k, self.count = k, 0
        self.high = self.low = np.empty(0, np.float32)

    def add(self, values: np.ndarray) -> None:
        values = values.ravel()
        self.count += values.size
        keep = min(self.k, values.size)
        self.high = np.concatenate([self.high, np.partition(values, values.size - keep)[values.size - keep :]])
        self.low = np.concatenate([self.low, np.partition(values, keep - 1)[:keep]])
        if self.high.size > self.k:
            self.high = np.partition(self.high, self.high.size - self.k)[self.high.size - self.k :]
            self.low = np.partition(self.low, self.k - 1)[: self.k]

    def range_at(self, quantile: float) -> tuple[float, float]:
        """(low, high) quantiles of every value seen, widened to hold 0 (int8 represents 0 exactly)."""
        rank = min(int((1.0 - quantile) * self.count), self.high.size - 1)
        high = np.sort(self.high)[::-1][rank]
        low = np.sort(self.low)[rank]
        return min(0.0, float(low)), max(0.0, float(high))


def tail_ranges(calibrated: bytes, photos: list[np.ndarray], quantiles: tuple[float, ...]) -> dict[float, dict[int, tuple]]:
    """{quantile: {tensor index: (low, high)}} for every ranged tensor of the calibrated float model, from its
    values on ``photos`` (styles cycled as in calibration), quantiles below 1 only, never wider than the calibrator's
    range (nor without 0). TFLite's own float kernels."""
    quantiles = tuple(q for q in quantiles if q < EXTREMES)
    if not quantiles:
        return {}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    tensors = _ranged_tensors(model)
    interpreter = tflite.every_tensor_interpreter(calibrated)
    tails: dict[int, _Tails] = {}
    progress = Progress(len(photos), "activation ranges: float pass", unit="photos")
    for i, sample in enumerate(tflite.representative_dataset(photos)()):  # the very inputs calibration saw
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], sample["photo" if len(detail["shape"]) == 4 else "style"].astype(np.float32))
        interpreter.invoke()
        for index in tensors:
            values = interpreter.get_tensor(index)
            if index not in tails:  # enough of each end for the lowest quantile over every photo
                tails[index] = _Tails(math.ceil((1.0 - min(quantiles)) * values.size * len(photos)) + 1)
            tails[index].add(values)
        progress.update(i + 1)
    graph = model.subgraphs[0]

    def within_extremes(index, low, high):  # the float pass may round a last bit differently from the calibrator's
        q = graph.tensors[index].quantization
        return max(low, min(float(q.min[0]), 0.0)), min(high, max(float(q.max[0]), 0.0))

    return {q: {index: within_extremes(index, *tail.range_at(q)) for index, tail in tails.items()} for q in quantiles}


def delegable(calibrated: bytes, ranges: dict[int, tuple]) -> dict[int, tuple]:
    """``ranges`` with every ADD and SUB input whose int8 step would be under ``1 / MAX_ADD_SCALE_RATIO`` of its
    output's widened to it (holding 0, scaled about it): XNNPACK refuses an int8 addition whose input and output
    scales lie too far apart, and the reference kernel then runs it on the whole map. A norm's mean, subtracted from
    its input, is one: its values are tiny where the input was balanced to zero offset (``export.balance``); a
    student's context shift, reshaped onto its map, another. An input made by a ``SAME_SCALE_OPS`` op is widened
    with that op's input, whose scale the file gives it. Last, every convolution output on a step too fine for its
    input and weights is widened to ``MAX_CONV_REQUANTIZATION`` (on a trained student with dead context ReLUs, XNNPACK
    otherwise failed to prepare the whole file). Each widening keeps the calibration values as exact as before: the
    zero point keeps 0 exact."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    graph = model.subgraphs[0]
    ranged = set(_ranged_tensors(model))
    codes = {i: flatbuffer_utils.opcode_to_name(model, i) for i in range(len(model.operatorCodes))}
    widened = dict(ranges)
    producers = {out: op for op in graph.operators for out in op.outputs}

    def same_scale_chain(index):  # the tensor and, through reshapes, every tensor the quantizer gives its scale
        chain = [index]
        while index in producers and codes[producers[index].opcodeIndex] in SAME_SCALE_OPS and producers[index].inputs[0] in ranged:
            index = producers[index].inputs[0]
            chain.append(index)
        return chain

    def span(index):
        low, high = widened.get(index, (float(graph.tensors[index].quantization.min[0]), float(graph.tensors[index].quantization.max[0])))
        return low, high, high - low

    for op in reversed(graph.operators):  # consumers first: an output is final before its own inputs are set
        if codes[op.opcodeIndex] not in ("ADD", "SUB") or op.outputs[0] not in ranged:
            continue
        need = span(op.outputs[0])[2] / MAX_ADD_SCALE_RATIO
        for index in op.inputs:
            if index not in ranged:
                continue
            wider = _spanning(*span(index)[:2], need, empty=(-need / 2, need / 2))
            if wider is not None:
                widened.update(dict.fromkeys(same_scale_chain(index), wider))
    for op in graph.operators:  # producers first: a widened output is the next convolution's input
        if codes[op.opcodeIndex] not in CONV_OPS:
            continue
        source = op.inputs[2 if codes[op.opcodeIndex] == "TRANSPOSE_CONV" else 0]  # the others' inputs: data, weights, bias
        weights = _constant(model, op.inputs[1])
        if weights is None or source not in ranged or op.outputs[0] not in ranged:
            continue
        need = span(source)[2] * float(np.abs(weights).max()) / 127.0 / MAX_CONV_REQUANTIZATION  # the output span it takes
        wider = _spanning(*span(op.outputs[0])[:2], need, empty=(0.0, need))
        if wider is not None:
            widened[op.outputs[0]] = wider
    return widened


def _spanning(low: float, high: float, need: float, empty: tuple) -> tuple | None:
    """The range ``[low, high]`` (with 0, as the quantizer always holds it) scaled about 0 until it spans ``need``,
    ``empty`` where it is a single point; None where it already spans ``need``."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low >= need:
        return None
    return (low * need / (high - low), high * need / (high - low)) if high > low else empty


def _constant(model, index: int) -> np.ndarray | None:
    """The float values of a constant tensor of ``model`` (an object tree), or None."""
    tensor = model.subgraphs[0].tensors[index]
    data = model.buffers[tensor.buffer].data if tensor.buffer else None
    return None if data is None or tensor.type != 0 else np.frombuffer(bytes(data), np.float32)  # 0: FLOAT32


def with_ranges(calibrated: bytes, ranges: dict[int, tuple]) -> bytes:
    """The calibration record with each listed tensor's range replaced."""
    if not ranges:
        return calibrated
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    for index, (low, high) in ranges.items():
        tensors[index].quantization.min = [float(low)]
        tensors[index].quantization.max = [float(high)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


class Calibration:
    """One full-int8 calibration of a SavedModel on ``photos``, quantized at any of ``quantiles``."""

    def __init__(self, saved_model_dir: str | Path, photos: list[np.ndarray], io_type: str = "uint8", quantiles=CANDIDATES):
        converter = tflite.make_converter(saved_model_dir, "int8", photos, io_type)
        converter._experimental_calibrate_only = True  # noqa: SLF001  (the quantization debugger's route; no public one)
        self.io_type = io_type
        self.quantiles = tuple(quantiles)
        self.calibrated = converter.convert()
        self.ranges = tail_ranges(self.calibrated, photos, tuple(quantiles))
        self._quantized: dict[float, bytes] = {}  # the search's winner is shipped, not quantized again

    def quantize(self, quantile: float = EXTREMES) -> bytes:
        """Full int8 with ranges at ``quantile`` (one computed at construction): what ``TFLiteConverter.convert``
        makes of the edited record, I/O in ``io_type``."""
        if quantile != EXTREMES and quantile not in self.ranges:
            raise ValueError(f"quantile {quantile:g} was not computed; have {sorted(self.ranges)}.")
        if quantile not in self._quantized:
            io = tflite.IO_TYPES[self.io_type]
            ranges = delegable(self.calibrated, self.ranges.get(quantile, {}))
            quantized = lite_convert.mlir_quantize(with_ranges(self.calibrated, ranges), False, input_data_type=io, output_data_type=io)
            self._quantized[quantile] = bytes(lite_convert.deduplicate_readonly_buffers(quantized))  # as convert() finishes
        return self._quantized[quantile]


def choose(calibration: Calibration, photos, reference, work: Path, candidates=None, log=print) -> tuple[float, dict[str, float]]:
    """The candidate (by default each quantile ``calibration`` computed) whose int8 drawings of ``photos`` come
    closest to ``reference`` (ties to the earlier, wider one) and every candidate's PSNR in dB."""
    candidates = calibration.quantiles if candidates is None else candidates
    scores = {}
    for quantile in candidates:
        scores[f"{quantile:g}"] = tflite.drawing_psnr(calibration.quantize(quantile), photos, reference, work / "scored.tflite")
        log(f"activation ranges: quantile {quantile:g}: int8 {scores[f'{quantile:g}']:.2f} dB on {len(photos)} calibration photos")
    return tflite.best_candidate(candidates, scores), scores
