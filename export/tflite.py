"""SavedModel -> TFLite variants, calibration data and per-op int8 error.

Variants:

- ``fp32``: float model, the parity reference;
- ``fp16``: float16 weights, float compute (half the file, GPU-delegate native);
- ``dynamic``: int8 weights, float activations (dynamic range quantization);
- ``int8``: full integer, uint8 (default) or int8 photo/style/drawing tensors,
  calibrated on aligned photos; ops named in ``float_ops`` stay float;
- ``int8_float_norm``: int8 with every instance-norm op (``NORM_OPS``) kept in
  float, float32 I/O.

Instance norm is where int8 loses the drawing: one int8 scale per tensor cannot
hold channels whose spreads differ by decades. The exporter therefore converts
the int8 variants from the generator with its norm inputs balanced
(``export.balance``); ``benchmarks.quant_sensitivity`` measures both.

Calibration samples are fed as dicts keyed by signature input name: the
converter orders the inputs differently from Keras (style first), and a
positional mix-up feeds the photo to the style input and fails with a
MIRROR_PAD prepare error.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS
from keras_asym.data.procedural import render_photo, sample_face
from keras_asym.evaluation.metrics import psnr
from keras_asym.utils.imageio import ImageReadError, fit_to_size, list_images, read_rgb

BASE_VARIANTS = ("fp32", "fp16", "dynamic", "int8")  # one converter setting each
VARIANTS = (*BASE_VARIANTS, "int8_float_norm")
# Exported when asked for: fp32 with the wide 3x3 convolutions as Winograd F(2x2, 3x3) (export/winograd.py), larger
# and, for the paper's G on XNNPACK, faster.
OPTIONAL_VARIANTS = ("fp32_winograd",)
NORM_OPS = ("MEAN", "SQUARED_DIFFERENCE", "RSQRT", "SUB", "MUL")  # SQUARED_DIFFERENCE: exports made before the MUL form
IO_TYPES = {"uint8": tf.uint8, "int8": tf.int8}


def calibration_photos(
    directory: str | Path | None, height: int, width: int, count: int = 32, seed: int = 0
) -> tuple[list[np.ndarray], str]:
    """Up to ``count`` uint8 RGB photos from ``directory`` (aligned faces), else procedural portraits.

    Returns the photos and a one-line description of where they came from.
    Unreadable files are skipped; a directory without a single readable image
    is an error naming it.
    """
    if directory is not None:
        files = list_images(directory)
        rng = np.random.default_rng(seed)
        rng.shuffle(files)
        photos = []
        for path in files:
            if len(photos) == count:
                break
            try:
                photos.append(fit_to_size(read_rgb(path), height, width))
            except ImageReadError:
                continue
        if not photos:
            raise ValueError(f"{directory}: no readable images for calibration.")
        return photos, f"{len(photos)} photos from {directory}"

    rng = np.random.default_rng(seed)
    side = max(height, width)
    photos = [fit_to_size(render_photo(sample_face(rng), side)[0], height, width) for _ in range(count)]
    return photos, f"{count} procedural portraits (seed {seed})"


def representative_dataset(photos: list[np.ndarray], label: str = "") -> Callable[[], Iterator[dict]]:
    """Calibration samples keyed by input name; styles cycle through the three one-hots.

    With a ``label``, each pass prints progress with an ETA (calibration runs
    the float model on every photo: minutes at 512 px).
    """
    styles = ONE_HOTS

    def samples():
        progress = Progress(len(photos), label, unit="photos") if label else None
        for i, photo in enumerate(photos):
            yield {
                "photo": to_model(photo)[None],
                "style": styles[i % 3][None],
            }
            if progress:
                progress.update(i + 1)

    return samples


def keras_drawings(generator, photos: list[np.ndarray]) -> list[np.ndarray]:
    """The Keras model's drawings ([-1, 1]) of the photos, styles cycled as in calibration: what a conversion is judged against."""
    return [
        np.asarray(generator({"photo": to_model(p)[None], "style": ONE_HOTS[i % 3][None]}, training=False))[0] for i, p in enumerate(photos)
    ]


def parse_quantile(value: str | float, what: str, above: float = 0.0) -> float | str:
    """``"auto"`` or a quantile in (``above``, 1] for option ``what``; raises ``ValueError`` naming the value otherwise."""
    if value == "auto":
        return "auto"
    try:
        quantile = float(value)
    except (TypeError, ValueError):
        quantile = None
    if quantile is None or not above < quantile <= 1.0:
        raise ValueError(f"{what} must be 'auto' or a number in ({above:g}, 1], got {value!r}.")
    return quantile


def every_tensor_interpreter(model: bytes) -> Interpreter:
    """An allocated interpreter of ``model`` on TFLite's own kernels (no delegate) that keeps every tensor after a run,
    for reading a graph's intermediate values."""
    interpreter = Interpreter(
        model_content=model,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        num_threads=2,
    )
    interpreter.allocate_tensors()
    return interpreter


def reference_kernel_ops(model: bytes) -> list[dict]:
    """The ops of ``model`` that XNNPACK leaves to TFLite's reference kernels (``op``, output ``tensor``, its
    ``elements``), largest output first: the ones that cost, since the reference kernels run single-threaded and
    split XNNPACK's graph.

    Found by running the model twice on different random inputs with every tensor kept: XNNPACK writes only the
    tensors that leave its partitions, so a tensor that changed between the runs and that no partition outputs
    was written by a reference kernel."""
    interpreter = Interpreter(model_content=model, experimental_preserve_all_tensors=True, num_threads=2)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()  # noqa: SLF001  (no public API lists a graph's nodes)
    partition_outputs = {i for op in ops if op["op_name"] == "DELEGATE" for i in op["outputs"]}
    candidates = [op for op in ops if op["op_name"] != "DELEGATE" and not set(op["outputs"]) & partition_outputs]
    rng, runs = np.random.default_rng(0), []
    for _ in range(2):
        for detail in interpreter.get_input_details():
            info = np.iinfo(detail["dtype"]) if np.issubdtype(detail["dtype"], np.integer) else None
            values = rng.integers(info.min, info.max, detail["shape"], endpoint=True) if info else rng.uniform(-1, 1, detail["shape"])
            interpreter.set_tensor(detail["index"], values.astype(detail["dtype"]))
        interpreter.invoke()
        runs.append({op["index"]: [hashlib.sha1(interpreter.tensor(i)().tobytes()).digest() for i in op["outputs"]] for op in candidates})
    tensors = interpreter.get_tensor_details()
    found = [
        {"op": op["op_name"], "tensor": tensors[op["outputs"][0]]["name"], "elements": int(np.prod(tensors[op["outputs"][0]]["shape"]))}
        for op in candidates
        if runs[0][op["index"]] != runs[1][op["index"]]
    ]
    return sorted(found, key=lambda row: -row["elements"])


def drawing_psnr(model: bytes, photos: list[np.ndarray], reference: list[np.ndarray], path: Path) -> float:
    """Mean PSNR (dB) of ``model``'s drawings of ``photos`` (styles cycled) against ``reference`` ([-1, 1]), run by
    XNNPACK from ``path``: how a search scores its candidates on the calibration photos."""
    path.write_bytes(model)
    runner = TFLiteGenerator(path, threads=2, probe=False)
    outputs = [runner.run(to_model(p), ONE_HOTS[i % len(ONE_HOTS)]) for i, p in enumerate(photos)]
    return float(np.mean([psnr(o, r, peak=2.0) for o, r in zip(outputs, reference)]))


def best_candidate(candidates: tuple[float, ...], scores: dict[str, float]) -> float:
    """The candidate with the highest score (keyed ``f"{q:g}"``); ties go to the earlier one."""
    return max(candidates, key=lambda q: (scores[f"{q:g}"], -candidates.index(q)))


def make_converter(
    saved_model_dir: str | Path, variant: str, photos: list[np.ndarray] | None = None, io_type: str = "uint8"
) -> tf.lite.TFLiteConverter:
    """A converter configured for ``variant`` (``photos`` are needed for int8)."""
    if variant not in BASE_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {BASE_VARIANTS}.")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["serving_default"])
    converter.experimental_enable_resource_variables = False
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        if not photos:
            raise ValueError("int8 conversion needs calibration photos.")
        if io_type not in IO_TYPES:
            raise ValueError(f"io_type must be one of {sorted(IO_TYPES)}, got {io_type!r}.")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset(photos, label="int8 calibration")
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = IO_TYPES[io_type]
        converter.inference_output_type = IO_TYPES[io_type]
    return converter


def convert(
    saved_model_dir: str | Path,
    variant: str,
    photos: list[np.ndarray] | None = None,
    io_type: str = "uint8",
    float_ops: tuple[str, ...] = (),
) -> bytes:
    """The TFLite flatbuffer of one variant.

    ``float_ops`` (int8 only): TFLite op names (e.g. ``("RSQRT",)``) kept in
    float through the quantization debugger's selective quantization; the
    photo/style/drawing tensors then stay float32.
    """
    if variant == "int8_float_norm":
        variant, float_ops = "int8", tuple(sorted(set(float_ops) | set(NORM_OPS)))
    converter = make_converter(saved_model_dir, variant, photos, io_type)
    if variant != "int8" or not float_ops:
        return converter.convert()
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=representative_dataset(photos),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops)),
    )
    return debugger.get_nondebug_quantized_model()


def _positional(photos: list[np.ndarray], calibrated_model: bytes) -> Callable[[], Iterator[list]]:
    """The debugger feeds inputs by position: order the samples like the calibrated model's inputs."""
    names = ["photo" if len(d["shape"]) == 4 else "style" for d in Interpreter(model_content=calibrated_model).get_input_details()]
    samples = representative_dataset(photos)
    return lambda: ([sample[name] for name in names] for sample in samples())


def per_op_error(saved_model_dir: str | Path, photos: list[np.ndarray]) -> list[dict]:
    """Per-op int8 error from the quantization debugger, worst first.

    ``rmse_over_scale`` is the float-vs-quantized RMSE of each op's output in
    units of its quantization step: ~0.3 is plain rounding noise, values well
    above 1 mark ops that int8 represents badly.
    """
    converter = make_converter(saved_model_dir, "int8", photos, "int8")
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    order: list = []
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=lambda: order[0]())
    order.append(_positional(photos, debugger.calibrated_model))
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale = float(row["scale"])
        rmse = float(np.sqrt(float(row["mean_squared_error"])))
        rows.append(
            {
                "op": row["op_name"],
                "tensor": row["tensor_name"],
                "scale": scale,
                "rmse": rmse,
                "rmse_over_scale": rmse / scale if scale else float("nan"),
                "max_abs_error": float(row["max_abs_error"]),
            }
        )
    return sorted(rows, key=lambda r: -np.nan_to_num(r["rmse_over_scale"], nan=-1.0))
