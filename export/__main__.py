"""Export a style generator to SavedModel and TFLite (fp32, fp16, dynamic, int8, qat; fp32_winograd when asked).

    python -m export --model runs/x/generators/generator.keras --output exported --size 512
    python -m export --model generator.keras --output exported --size 256 --variants fp32,int8 \
        --calibration_dir data/aligned_photos --clip_quantile auto

Writes ``savedmodel/`` (signatures ``serving_default(photo, style)`` and
``style1..3(photo)``; photo float RGB in [-1, 1]), ``drawing_<variant>.tflite``
with TFLite metadata, ``drawing_<variant>.json`` sidecars and ``export.json``.
Each model is run on LiteRT's GPU accelerator when a hardware GPU with a Vulkan
driver exists (``--gpu_check software`` also uses SwiftShader's software Vulkan): the sidecar's ``gpu``
records whether it ran fully accelerated, the ops left on the CPU and its
difference from the CPU. Exit 0 on success, 2 for a bad model or options,
or when the fp32 TFLite model does not reproduce Keras (the numbers are printed).
"""

from __future__ import annotations

from absl import flags

from edge_demo.runtime import cli
from export import exporter
from export.activation_ranges import CANDIDATES as RANGE_CANDIDATES
from export.balance import CLIP_QUANTILE
from export.clip_search import CANDIDATES
from export.tflite import OPTIONAL_VARIANTS, VARIANTS

_MODEL = flags.DEFINE_string("model", None, "Generator .keras file (from train, import_official or distill).", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.", required=True)
_SIZE = flags.DEFINE_string("size", "512", "Fixed input size: N (square) or HxW, multiples of 4.")
_VARIANTS = flags.DEFINE_list(
    "variants",
    list(VARIANTS),
    f"Any of {', '.join(VARIANTS + OPTIONAL_VARIANTS)}, qat (qat fine-tunes: minutes to hours; fp32_winograd: fp32, faster on "
    "XNNPACK for wide 3x3 layers, whose weights grow by 16/9, and with --subpixel).",
)
_CALIBRATION_DIR = flags.DEFINE_string(
    "calibration_dir", None, "Aligned face photos for int8 calibration and QAT (default: procedural portraits)."
)
_CALIBRATION_COUNT = flags.DEFINE_integer("calibration_count", 32, "Calibration photos to use.", lower_bound=1, upper_bound=100000)
_IO_TYPE = flags.DEFINE_enum("io_type", "uint8", ["uint8", "int8"], "Tensor type of the int8/qat models' inputs and output.")
_FLOAT_OPS = flags.DEFINE_list("float_ops", [], "int8: TFLite ops to keep in float (e.g. RSQRT); their I/O then stays float.")
_BALANCE = flags.DEFINE_boolean(
    "balance_norms",
    True,
    "int8: convert from the generator with its norm inputs balanced and their rare peaks clipped (export/balance.py).",
)
_CLIP = flags.DEFINE_string(
    "clip_quantile",
    f"{CLIP_QUANTILE:g}",
    "int8/qat with balanced norms: share of each norm input kept unclipped, or 'auto' (converts full int8 as shipped "
    f"at each of {', '.join(f'{q:g}' for q in CANDIDATES)} and one between the best two, with the activation ranges "
    "and variance-bias correction int8 ships with, and keeps the closest to float on the calibration photos; qat and "
    "int8_float_norm take that clip; minutes per candidate at 512).",
)
_SUBPIXEL = flags.DEFINE_boolean(
    "subpixel",
    True,
    "int8, int8_float_norm, qat and fp32_winograd: compute the 7x7 stem and head and the transposed convolutions on "
    "space-to-depth maps (export/subpixel.py): the same function, fewer empty XNNPACK blocks.",
)
_VARIANCE_BIAS = flags.DEFINE_boolean(
    "correct_variance_bias",
    True,
    "int8: measure each norm's int8 variance bias in the converted file and convert again with it added to the "
    "norm's epsilon (export/variance_bias.py; one more conversion).",
)
_RANGES = flags.DEFINE_string(
    "range_quantile",
    "auto",
    "int8: each activation tensor's range at this quantile of its values on the calibration photos (1: their extremes, "
    f"the converter's own), or 'auto' (quantizes at each of {', '.join(f'{q:g}' for q in RANGE_CANDIDATES)} and keeps the "
    "closest to float on the calibration photos; export/activation_ranges.py). Not with --float_ops, which keeps the "
    "calibrator's ranges.",
)
_PER_OP = flags.DEFINE_boolean("per_op_report", True, "int8: write the per-op quantization error (one more calibration).")
_NAME = flags.DEFINE_string("name", "drawing", "File name prefix.")
_QAT_STEPS = flags.DEFINE_integer("qat_steps", 300, "qat: fine-tuning steps.", lower_bound=1, upper_bound=10000000)
_QAT_BATCH = flags.DEFINE_integer("qat_batch_size", 1, "qat: batch size (photos at --size).", lower_bound=1, upper_bound=1024)
_QAT_LR = flags.DEFINE_float(
    "qat_learning_rate", 3e-5, "qat: LAMB learning rate, a step relative to each weight tensor's norm.", lower_bound=1e-12, upper_bound=1.0
)
_GPU_CHECK = flags.DEFINE_enum(
    "gpu_check",
    "auto",
    ["auto", "software", "off", "require"],
    "Run each model on LiteRT's GPU accelerator and record the result: auto (on a hardware GPU), software (also on "
    "SwiftShader's software Vulkan: slow), require (on any Vulkan device; fail unless fully accelerated), off.",
)


def main(argv):
    del argv
    try:
        size = exporter.parse_size(_SIZE.value)
        summary = exporter.export_generator(
            _MODEL.value,
            _OUTPUT.value,
            size=size,
            variants=tuple(_VARIANTS.value),
            calibration_dir=_CALIBRATION_DIR.value,
            calibration_count=_CALIBRATION_COUNT.value,
            io_type=_IO_TYPE.value,
            float_ops=tuple(_FLOAT_OPS.value),
            per_op_report=_PER_OP.value,
            name=_NAME.value,
            qat_options={
                "steps": _QAT_STEPS.value,
                "batch_size": _QAT_BATCH.value,
                "learning_rate": _QAT_LR.value,
            },
            gpu_check=_GPU_CHECK.value,
            balance_norms=_BALANCE.value,
            clip_quantile=_CLIP.value,
            correct_variance_bias=_VARIANCE_BIAS.value,
            subpixel_convs=_SUBPIXEL.value,
            range_quantile=_RANGES.value,
        )
    except (ValueError, FileNotFoundError) as err:
        cli.error("export", err)
        return 2
    except RuntimeError as err:  # ParityError, or a failed calibration
        cli.error("export", err)
        return cli.BAD_INPUT
    print(f"export: {len(summary['variants'])} TFLite variants and a SavedModel in {_OUTPUT.value} (summary: export.json)")
    return 0


if __name__ == "__main__":
    cli.run(main)
