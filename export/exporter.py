"""The whole export of one generator: SavedModel, every TFLite variant, metadata, checks.

Each ``.tflite`` gets its JSON sidecar (also packed inside), a GPU-delegate
report, and a quality line against the Keras model on the calibration
photos; ``export.json`` in the output folder records everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from edge_demo.runtime import gpu
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.pixels import SCALE, to_model
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS
from export import activation_ranges, analyzer, clip_search, metadata, qat, savedmodel, subpixel, tflite, variance_bias, winograd
from export.balance import CLIP_QUANTILE, for_integer
from keras_asym.evaluation.metrics import psnr
from keras_asym.inference.keras_generator import load_generator
from keras_asym.utils.imageio import write_bytes_atomic

VERSION = "0.1.0"
# fp32 TFLite against Keras, judged as float conversions are: by signal-to-noise over the drawing's [-1, 1]
# range, and pixels off by more than one 8-bit level rare and never by more than four. A correct conversion of the
# paper's G (ngf 64, 9 blocks, official init) reaches ~99 dB with a 1.8e-3 worst pixel; a wrong op (padding, norm
# axis, transposed kernel) falls below 40 dB and moves whole regions. Rare, not none: float32 norm statistics over
# a 512² map lie ~1e-4 of a channel's spread from float64 in TensorFlow and ~4x that in TFLite, and a generator
# that amplifies its norms' errors puts single pixels past one level: the unpaired G at 512², 5e-6 of the pixels,
# the worst at 1.27 levels, where Keras itself lay 0.22 levels and TFLite 1.05 from a float64 run of the same
# weights (benchmarks.float_parity). The share allowed is 20 times that.
PARITY_MIN_PSNR_DB = 80.0
PARITY_LEVEL = 2.0 / 255.0
PARITY_MAX_SHARE_OVER_LEVEL = 1e-4
PARITY_MAX_ABS = 4 * PARITY_LEVEL


class ParityError(RuntimeError):
    """The fp32 TFLite model does not reproduce the Keras model."""


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` -> (512, 512); ``"512x384"`` -> (height 512, width 384); sides multiples of 4."""
    parts = text.lower().split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError as err:
        raise ValueError(f"size {text!r}: expected N or HxW.") from err
    if len(sides) == 1:
        sides *= 2
    if len(sides) != 2 or min(sides) < 16 or any(s % 4 for s in sides):
        raise ValueError(f"size {text!r}: sides must be multiples of 4 and at least 16.")
    return sides[0], sides[1]


def sidecar(variant: str, height: int, width: int, source: str, io: dict, extra: dict | None = None) -> dict:
    """The export record of one variant (packed into the model and written beside it)."""
    record = {
        "format": "keras-asym-generator",
        "name": f"keras-asym portrait drawing generator ({variant})",
        "version": VERSION,
        "description": (
            "Photo to line drawing in three styles (Yi et al., CVPR 2020, asymmetric cycle mapping). "
            "Input: a face aligned to the official 5-point template."
        ),
        "variant": variant,
        "size": [height, width],
        "styles": ["style1", "style2", "style3"],
        "inputs": {
            "photo": {
                "shape": [1, height, width, 3],
                "color": "RGB",
                "range": [-1.0, 1.0],
                "from_pixels": f"pixel / {SCALE} - 1",
                **io.get("photo", {}),
            },
            "style": {"shape": [1, 3], "meaning": "weights of style1..style3, summing to 1", **io.get("style", {})},
        },
        "outputs": {
            "drawing": {
                "shape": [1, height, width, 1],
                "range": [-1.0, 1.0],
                "to_pixels": f"(value + 1) * {SCALE}",
                **io.get("drawing", {}),
            }
        },
        "alignment": "official 5-point similarity template (edge_demo.runtime.alignment.template), scaled to the input size",
        "source_model": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    record.update(extra or {})
    return record


def io_record(model: bytes) -> dict:
    """dtype and quantization of the photo/style/drawing tensors of a flatbuffer."""
    interpreter = Interpreter(model_content=model)
    record = {}
    details = [("photo" if len(d["shape"]) == 4 else "style", d) for d in interpreter.get_input_details()]
    details.append(("drawing", interpreter.get_output_details()[0]))
    for name, detail in details:
        entry = {"dtype": np.dtype(detail["dtype"]).name}
        if detail["dtype"] != np.float32:
            scale, zero = detail["quantization"]
            entry["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
        record[name] = entry
    return record


def check_parity(quality_vs_keras: dict, report: Path | None, variant: str = "fp32") -> None:
    """Raises ``ParityError`` (one line, with the numbers) when a float TFLite ``variant`` is not a faithful conversion.

    ``report``: where the details are, or ``None`` when the check ran before anything was written.
    """
    psnr_db, worst = quality_vs_keras["psnr_db"], quality_vs_keras["max_abs_diff"]
    share = quality_vs_keras["share_over_one_level"]
    if psnr_db < PARITY_MIN_PSNR_DB or worst > PARITY_MAX_ABS or share > PARITY_MAX_SHARE_OVER_LEVEL:
        where = f"details in {report}" if report else "nothing was written"
        raise ParityError(
            f"{variant} TFLite does not reproduce Keras: PSNR {psnr_db:.1f} dB (bar {PARITY_MIN_PSNR_DB:.0f} dB), "
            f"worst pixel {worst:.2e} (bar {PARITY_MAX_ABS:.2e}), share of pixels off by more than one 8-bit level "
            f"{share:.1e} (bar {PARITY_MAX_SHARE_OVER_LEVEL:.0e}); {where}."
        )


def share_over_one_level(differences: list[np.ndarray]) -> float:
    """The share of all pixels of ``differences`` (absolute, on [-1, 1] drawings) larger than one 8-bit level."""
    return float(sum(int((d > PARITY_LEVEL).sum()) for d in differences) / sum(d.size for d in differences))


def quality(model_path: Path, reference: list[np.ndarray], photos: list[np.ndarray]) -> dict:
    """PSNR and max abs difference of a TFLite model's drawings against the Keras drawings."""
    generator = TFLiteGenerator(model_path, threads=2)
    styles = ONE_HOTS
    outputs = [generator.run(to_model(p), styles[i % 3]) for i, p in enumerate(photos)]
    diffs = [np.abs(o - r) for o, r in zip(outputs, reference)]
    return {
        "psnr_db": float(np.mean([psnr(o, r, peak=2.0) for o, r in zip(outputs, reference)])),
        "max_abs_diff": float(max(d.max() for d in diffs)),
        "share_over_one_level": share_over_one_level(diffs),
        "mean_abs_diff": float(np.mean([d.mean() for d in diffs])),
        "images": len(photos),
    }


GPU_CHECKS = ("auto", "software", "off", "require")


def measure_gpu(model: bytes, output: Path, gpu_check: str = "auto") -> dict:
    """Runs the flatbuffer on LiteRT's GPU accelerator in a child process (``edge_demo.runtime.gpu_check``) and returns its verdict.

    ``{"measured": True, "fully_accelerated", "ops_on_gpu", "ops_total", "unsupported_ops", "psnr_db_vs_cpu", ...}``,
    or ``{"measured": False, "reason"}`` when there is no device to check on or the check is ``off``.
    ``auto`` checks on a hardware GPU only: SwiftShader's software Vulkan runs the same kernels minutes per
    model at 256² and its speed says nothing, so it is used when asked (``software``, ``require``).
    A child process, because a GPU driver that crashes must not take the export down with it.
    """
    if gpu_check == "off":
        return {"measured": False, "reason": "--gpu_check off"}
    if gpu_check == "auto" and gpu.device_kind() != "hardware":
        return {
            "measured": False,
            "reason": "no hardware GPU with a Vulkan driver (--gpu_check software uses SwiftShader's software Vulkan)",
        }
    probe = output / f".gpu-probe-{os.getpid()}.tflite"
    probe.write_bytes(model)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "edge_demo.runtime.gpu_check", str(probe)], capture_output=True, text=True, timeout=900
        )
    finally:
        probe.unlink(missing_ok=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        verdict = {"measured": False, "reason": f"GPU probe failed (exit {result.returncode}): {last}"}
    else:
        found = json.loads(lines[-1])
        found.pop("model", None)
        if found.get("device") is None:
            verdict = {"measured": False, "reason": found.get("error", "no GPU device")}
        else:
            verdict = {"measured": True, **found}
    if gpu_check == "require" and not (verdict.get("fully_accelerated") and verdict.get("ran")):
        raise ValueError(
            f"--gpu_check require: the model does not run fully on the GPU accelerator: {verdict.get('error') or verdict.get('reason')}"
        )
    return verdict


def gpu_summary(verdict: dict) -> str:
    """One phrase for logs and reports: what the GPU run showed, or why there was none."""
    if not verdict.get("measured"):
        return f"GPU not measured ({verdict.get('reason')})"
    if verdict.get("fully_accelerated") and not verdict.get("ran"):
        return f"GPU: all {verdict['ops_total']} ops compile for the GPU, but the run failed ({verdict.get('error')})"
    if verdict.get("fully_accelerated"):
        return f"GPU: all {verdict['ops_total']} ops on {str(verdict.get('adapter') or verdict['device']).split(',')[0]}, {verdict['psnr_db_vs_cpu']:.1f} dB vs CPU"
    return f"GPU: {verdict.get('ops_on_gpu')} ops on GPU, {verdict.get('ops_on_cpu')} on CPU (lacks {', '.join(verdict.get('unsupported_ops') or []) or '?'})"


def reference_ops_record(model: bytes) -> dict:
    """How many ops of each kind XNNPACK leaves to TFLite's reference kernels, and the largest few
    (``export.tflite.reference_kernel_ops``)."""
    found = tflite.reference_kernel_ops(model)
    counts: dict[str, int] = {}
    for row in found:
        counts[row["op"]] = counts.get(row["op"], 0) + 1
    return {"counts": counts, "largest": found[:3]}


def write_variant(
    output: Path,
    name: str,
    variant: str,
    model: bytes,
    height: int,
    width: int,
    source: str,
    extra: dict | None = None,
    gpu_check: str = "auto",
) -> tuple[Path, dict, dict]:
    """Writes ``<name>_<variant>.tflite`` (with metadata), its JSON sidecar and GPU reports; returns (path, sidecar, I/O record).

    ``gpu`` in the sidecar is the measured verdict (``measure_gpu``); ``gpu_static_precheck`` is
    ``tf.lite.experimental.Analyzer``'s opinion, which said "compatible" for models that did not run.
    """
    io = io_record(model)
    record = sidecar(variant, height, width, source, io, extra)
    report = analyzer.gpu_report(model)
    record["gpu"] = measure_gpu(model, output, gpu_check)
    record["gpu_static_precheck"] = {"analyzer_compatible": report["compatible"], "incompatible_ops": report["incompatible_ops"]}
    path = output / f"{name}_{variant}.tflite"
    write_bytes_atomic(path, metadata.add_metadata(model, record))
    write_bytes_atomic(path.with_suffix(".json"), json.dumps(record, indent=2).encode())
    write_bytes_atomic(output / f"{name}_{variant}.gpu_report.txt", report["report"].encode())
    return path, record, io


def _int8_ranged(saved: Path, photos, io_type: str, quantile, work: Path, generator, log, searched=None) -> tuple[bytes, dict, float]:
    """Full int8 of ``saved`` with activation ranges at ``quantile`` (``"auto"``: searched on the calibration
    photos against ``generator``'s float drawings); returns the file, its record and the quantile used.
    ``searched``: the clip search's ``Choice``, whose calibration of this same model and ranges are used as found."""
    if searched is not None and searched.calibration is not None:
        record = searched.ranges[f"{searched.clip:g}"]
        return searched.calibration.quantize(record["quantile"]), record, record["quantile"]
    candidates = activation_ranges.CANDIDATES if quantile == activation_ranges.AUTO else (quantile,)
    calibration = activation_ranges.Calibration(saved, photos, io_type, candidates)
    record = {"quantile": quantile}
    if quantile == activation_ranges.AUTO:
        reference = tflite.keras_drawings(generator, photos)
        quantile, scores = activation_ranges.choose(calibration, photos, reference, work, log=log)
        record = {"quantile": quantile, "int8_psnr_db_on_calibration": scores}
        log(f"int8: activation ranges at quantile {quantile:g} of the calibration photos' values")
    return calibration.quantize(quantile), record, quantile


def export_generator(
    model: str | Path,
    output: str | Path,
    size: tuple[int, int] = (512, 512),
    variants: tuple[str, ...] = tflite.VARIANTS,
    calibration_dir: str | Path | None = None,
    calibration_count: int = 32,
    io_type: str = "uint8",
    float_ops: tuple[str, ...] = (),
    per_op_report: bool = True,
    name: str = "drawing",
    qat_options: dict | None = None,
    gpu_check: str = "auto",
    balance_norms: bool = True,
    clip_quantile: float | str = CLIP_QUANTILE,
    correct_variance_bias: bool = True,
    range_quantile: float | str = activation_ranges.AUTO,
    subpixel_convs: bool = True,
    log=print,
) -> dict:
    """Exports ``model`` into ``output``; returns (and writes) the ``export.json`` summary.

    ``balance_norms``: the int8 variants are converted from the generator with its norm inputs balanced on the
    calibration photos (``export.balance``: every channel on one int8 scale) and clipped at their ``clip_quantile``
    (by default ``CLIP_QUANTILE``: the float drawing changes by about 50 dB PSNR); ``"auto"`` converts full int8 as
    shipped (activation ranges as ``range_quantile`` says and, where ``int8`` is exported, its variance correction;
    with ``float_ops`` the converter's own full int8) at each of ``export.clip_search.CANDIDATES`` and one more
    between the best two, and keeps the one closest to float on the calibration photos; ``qat`` and
    ``int8_float_norm`` take the clip chosen.

    ``correct_variance_bias``: ``int8`` is converted twice, the second time with each norm's int8 variance bias,
    measured in the first file on the calibration photos, added to its epsilon (``export.variance_bias``).
    ``int8_float_norm`` has no int8 variance, and ``qat`` has learnt its own (``benchmarks.qat`` measured the
    correction after QAT lowering the drawing).

    ``range_quantile``: ``int8``'s activation ranges are set at this quantile of each tensor's values on the
    calibration photos (``export.activation_ranges``; 1: the calibrator's extremes); ``"auto"`` quantizes at each
    of ``export.activation_ranges.CANDIDATES`` and keeps the one closest to float on the calibration photos. Not
    with ``float_ops`` (converted by the quantization debugger, which calibrates on its own).

    ``subpixel_convs``: the int8 variants, ``qat`` and ``fp32_winograd`` compute the full-resolution convolutions over
    few channels (G's 7x7 stem and head) and the transposed convolutions on space-to-depth maps
    (``export.subpixel``): the same function, which XNNPACK runs in a fraction of the time.

    ``gpu_check``: ``auto`` runs every variant on LiteRT's GPU accelerator when a Vulkan device
    (or SwiftShader) is present and records the result; ``require`` fails an export that does
    not run fully on it; ``off`` skips the run.

    Raises ``ValueError`` for a bad model or options and ``RuntimeError`` when
    the fp32 model does not reproduce Keras (``check_parity``).
    """
    height, width = size
    output = Path(output)
    if gpu_check not in GPU_CHECKS:
        raise ValueError(f"gpu_check must be one of {GPU_CHECKS}, got {gpu_check!r}.")
    clip = clip_search.parse(clip_quantile)
    ranges = activation_ranges.parse(range_quantile)
    if float_ops and ranges not in (activation_ranges.AUTO, activation_ranges.EXTREMES) and "int8" in variants:
        raise ValueError(f"range quantile {ranges:g} applies to full int8; --float_ops keeps ops float through another converter.")
    known = (*tflite.VARIANTS, *tflite.OPTIONAL_VARIANTS, "qat")
    unknown = set(variants) - set(known)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; expected {known}.")
    generator = load_generator(model)
    if "fp32_winograd" in variants:
        fast, rewritten = winograd.for_speed(generator)
        spaced = []
        if subpixel_convs:
            fast, spaced = subpixel.for_speed(fast, "float")
        if not rewritten and not spaced:  # the file would be plain fp32 under another name
            raise ValueError(
                f"fp32_winograd: {model} has no 3x3 stride-1 convolution with {winograd.MIN_CHANNELS}+ channels in and out "
                "to rewrite" + ("." if subpixel_convs else ", and --nosubpixel leaves its other convolutions as they are.")
            )
    summary = {"model": str(model), "size": [height, width], "variants": {}, "version": VERSION}
    photos, source = tflite.calibration_photos(calibration_dir, height, width, calibration_count)
    summary["calibration"] = source
    check_photos = photos[: min(6, len(photos))]
    reference = tflite.keras_drawings(generator, check_photos)
    with tempfile.TemporaryDirectory() as tmp:
        static = Path(tmp) / "static"
        savedmodel.save_savedmodel(generator, static, height, width, batch=1)
        # The fp32 conversion is checked first, whatever the variants: a refused export writes nothing.
        fp32_bytes = tflite.convert(static, "fp32", photos, io_type, ())
        probe = Path(tmp) / "fp32_check.tflite"
        probe.write_bytes(fp32_bytes)
        check_parity(quality(probe, reference, check_photos), None)
        if "fp32_winograd" in variants:  # the same function by other arithmetic: held to fp32's parity bar
            winograd_bytes = tflite.convert(savedmodel.save_savedmodel(fast, Path(tmp) / "winograd", height, width, batch=1), "fp32")
            probe.write_bytes(winograd_bytes)
            check_parity(quality(probe, reference, check_photos), None, "fp32_winograd")

        integer = static
        searched = None  # the clip search's choice: its integer model and activation ranges are the ones shipped
        if balance_norms and clip == clip_search.AUTO and any(v.startswith("int8") or v == "qat" for v in variants):
            searched = clip_search.choose(
                generator,
                photos,
                height,
                width,
                io_type,
                range_quantile=None if float_ops else ranges,
                subpixel_convs=subpixel_convs,
                correct_variance_bias=correct_variance_bias and "int8" in variants,  # scored as int8 ships
                work=Path(tmp) / "clip_search",
                log=log,
            )
            clip = searched.clip
            summary["clip_search"] = {
                "chosen": clip,
                "int8_psnr_db_on_calibration": searched.scores,
                "activation_range_quantiles": {label: record["quantile"] for label, record in searched.ranges.items()},
                "int8_psnr_db_before_variance_correction": {
                    label: record["int8_psnr_db_before_variance_correction"]
                    for label, record in searched.ranges.items()
                    if "int8_psnr_db_before_variance_correction" in record
                },
            }
        if any(v.startswith("int8") for v in variants):  # norms square by a product; balanced unless turned off
            integer = shipped = Path(tmp) / "integer"  # shipped: what int8 is converted from in the end
            if searched is not None:  # its SavedModel before any variance correction, which is int8's alone
                integer_model, integer_spaced, integer = searched.model, searched.subpixel_layers, searched.saved
                shipped = searched.shipped
            else:
                integer_model = for_integer(generator, photos if balance_norms else None, clip)
                integer_spaced = []
                if subpixel_convs:  # after balancing, which rescales the original convolutions
                    integer_model, integer_spaced = subpixel.for_speed(integer_model)
                savedmodel.save_savedmodel(integer_model, integer, height, width, batch=1)

        output.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        savedmodel.save_savedmodel(generator, output / "savedmodel", height, width)
        summary["savedmodel"] = {
            "path": "savedmodel",
            "signatures": ["serving_default", "style1", "style2", "style3"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        log(f"SavedModel: {output / 'savedmodel'} ({summary['savedmodel']['seconds']} s)")
        progress = Progress(len(variants), "export", unit="variants", interval=0.0)
        for variant in variants:
            started = time.perf_counter()
            if variant == "qat":
                models, extra = qat.run_qat(
                    model,
                    height,
                    width,
                    photos,
                    io_type,
                    **(qat_options or {}),
                    balance_norms=balance_norms,
                    clip_quantile=clip,
                    subpixel_convs=subpixel_convs,
                    log=log,
                )
            else:
                ops = tflite.NORM_OPS if variant == "int8_float_norm" else float_ops if variant == "int8" else ()
                integer_variant = variant.startswith("int8")
                full_integer = variant == "int8" and not ops  # activation ranges at a quantile (export.activation_ranges)
                ranges_record = None
                if full_integer:
                    converted, ranges_record, ranged = _int8_ranged(integer, photos, io_type, ranges, Path(tmp), generator, log, searched)
                else:
                    converted = (
                        fp32_bytes
                        if variant == "fp32"
                        else winograd_bytes
                        if variant == "fp32_winograd"
                        else tflite.convert(integer if integer_variant else static, variant, photos, io_type, ops)
                    )
                extra = (
                    {
                        "calibration": source,
                        "float_ops": list(ops),
                        "norm_inputs_balanced": balance_norms,
                        "norm_inputs_clipped_at": clip if balance_norms else None,
                        "subpixel_layers": integer_spaced,
                    }
                    if integer_variant
                    else {"winograd_layers": rewritten, "subpixel_layers": spaced}
                    if variant == "fp32_winograd"
                    else {}
                )
                if ranges_record is not None:
                    extra["activation_ranges"] = ranges_record
                if variant == "int8" and correct_variance_bias and searched is not None and searched.variance_bias is not None:
                    extra["variance_bias"] = searched.variance_bias  # measured, corrected and calibrated in the search
                    log(f"int8: the variance bias of {searched.variance_bias['norms_corrected']} norms added to their epsilons")
                elif variant == "int8" and correct_variance_bias:  # the int8 file measured, the model corrected, converted again
                    extra["variance_bias"] = variance_bias.corrected(integer_model, converted, photos)
                    if extra["variance_bias"]["norms_corrected"]:  # none where --float_ops keeps the norms' ops float
                        shipped = savedmodel.save_savedmodel(integer_model, Path(tmp) / "integer_corrected", height, width, batch=1)
                        converted = (
                            activation_ranges.Calibration(shipped, photos, io_type, (ranged,)).quantize(ranged)
                            if full_integer
                            else tflite.convert(shipped, variant, photos, io_type, ops)
                        )
                    log(f"int8: the variance bias of {extra['variance_bias']['norms_corrected']} norms added to their epsilons")
                models = {variant: converted}
            for label, model_bytes in models.items():
                if label.startswith("int8") or label == "qat":  # whether XNNPACK takes an int8 op depends on its scales
                    extra = {**extra, "xnnpack_reference_kernel_ops": reference_ops_record(model_bytes)}
                path, record, io = write_variant(output, name, label, model_bytes, height, width, str(model), extra, gpu_check)
                entry = {
                    "file": path.name,
                    "bytes": path.stat().st_size,
                    "seconds": round(time.perf_counter() - started, 1),
                    "gpu": record["gpu"],
                    "gpu_static_precheck": record["gpu_static_precheck"],
                    "io": {k: v["dtype"] for k, v in io.items()},
                    "quality_vs_keras": quality(path, reference, check_photos),
                }
                summary["variants"][label] = entry
                log(
                    f"{label}: {path} ({entry['bytes'] / 1e6:.2f} MB, {entry['seconds']} s, PSNR vs Keras {entry['quality_vs_keras']['psnr_db']:.1f} dB; {gpu_summary(record['gpu'])})"
                )
            progress.update(note=f"{variant} done")
        if "int8" in variants and per_op_report:
            rows = tflite.per_op_error(shipped, photos[: min(8, len(photos))])
            write_bytes_atomic(output / f"{name}_int8.per_op.json", json.dumps(rows, indent=1).encode())
            summary["int8_worst_ops"] = rows[:5]
    write_bytes_atomic(output / "export.json", json.dumps(summary, indent=2).encode())
    return summary
