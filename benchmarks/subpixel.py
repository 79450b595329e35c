"""G's stem, head and transposed convolutions, direct against their space-to-depth forms (export/subpixel.py).

    python -m benchmarks.subpixel              # docs/results/subpixel.json

Each layer (kind:input side:channels in:channels out; ``stem`` and ``head`` are 7x7 stride-1 convolutions on the
reflection-padded map, ``up`` the 3x3 stride-2 transposed convolution) is built with the same random weights both
ways, converted to fp32 and to full int8 (calibrated on random maps), and timed in one process on XNNPACK, the
forms alternating (median of --runs, 2 threads). The defaults are the layers of the unpaired G (ngf 24) and of the
paper's G (ngf 64) at 256², and stems of other widths, which set ``export.subpixel.FLOAT_MAX_SPACED_OUTPUTS``. The
whole generator beside PyTorch is ``benchmarks.inference``.
"""

from __future__ import annotations

import numpy as np
from absl import app, flags

_LAYERS = flags.DEFINE_list(
    "layers",
    [
        *("stem:256:3:24", "head:256:24:1", "up:64:96:48", "up:128:48:24"),  # the unpaired G
        *("stem:256:3:64", "head:256:64:1", "up:64:256:128", "up:128:128:64"),  # the paper's G
        *("stem:256:3:16", "stem:256:3:32", "stem:256:3:48"),  # where the float form stops paying
    ],
    "kind:input side:channels in:channels out, kind one of stem, head (7x7 convolutions) or up (3x3 stride-2 transposed).",
)
_RUNS = flags.DEFINE_integer("runs", 21, "Alternating timing rounds (median reported).", lower_bound=1)
_THREADS = flags.DEFINE_integer("threads", 2, "XNNPACK threads.", lower_bound=1)
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/subpixel.json).")
_KINDS = ("stem", "head", "up")


def _parse(text: str) -> tuple[str, int, int, int]:
    kind, *numbers = text.split(":")
    if kind not in _KINDS or len(numbers) != 3 or not all(n.isdigit() and int(n) > 0 for n in numbers):
        raise app.UsageError(f"--layers: {text!r} is not kind:side:in:out with kind one of {', '.join(_KINDS)}.")
    return kind, *map(int, numbers)


def _flatbuffers(kind: str, side: int, channels: int, filters: int) -> tuple[dict[str, bytes], tuple[int, ...]]:
    """{form/precision: flatbuffer}, and the input shape."""
    import keras
    import tensorflow as tf

    from export import subpixel

    rng = np.random.default_rng(side * 1000 + channels * 10 + filters)
    if kind == "up":
        shape = (1, side, side, channels)
        direct = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="valid")
        kernel = rng.standard_normal((3, 3, filters, channels)) / np.sqrt(9 * channels)
    else:
        shape = (1, side + 6, side + 6, channels)
        direct = keras.layers.Conv2D(filters, 7, padding="valid")
        kernel = rng.standard_normal((7, 7, channels, filters)) / np.sqrt(49 * channels)
    direct.build(shape)
    direct.set_weights([kernel.astype(np.float32), (rng.standard_normal(filters) * 0.1).astype(np.float32)])
    source = keras.Input(shape[1:], batch_size=1)
    fast, names = subpixel.for_speed(keras.Model(source, direct(source)))
    assert names == [direct.name], names
    samples = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    models = {}
    for form, layer in (("direct", direct), ("subpixel", fast)):
        fn = tf.function(lambda x, layer=layer: layer(x), input_signature=[tf.TensorSpec(shape, tf.float32)])
        for precision in ("fp32", "int8"):
            converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
            if precision == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda: ([s] for s in samples)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = converter.inference_output_type = tf.int8
            models[f"{form}_{precision}"] = converter.convert()
    return models, shape


def main(argv):
    del argv
    from ai_edge_litert.interpreter import Interpreter

    from benchmarks import report
    from benchmarks.common import results
    from benchmarks.common.timing import alternating_medians
    from edge_demo.runtime.progress import Progress

    layers = [_parse(text) for text in _LAYERS.value]
    rows = {}
    progress = Progress(len(layers), "subpixel", unit="layers", interval=0.0)
    for text, (kind, side, channels, filters) in zip(_LAYERS.value, layers):
        models, shape = _flatbuffers(kind, side, channels, filters)
        runners, outputs = {}, {}
        for name, model in models.items():
            interpreter = Interpreter(model_content=model, num_threads=_THREADS.value)
            interpreter.allocate_tensors()
            source = interpreter.get_input_details()[0]
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            if source["dtype"] == np.int8:
                scale, zero = source["quantization"]
                x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
            interpreter.set_tensor(source["index"], x)
            interpreter.invoke()
            outputs[name] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).astype(np.float64)
            runners[name] = interpreter
        ms = {name: 1e3 * seconds for name, seconds in alternating_medians(runners, _RUNS.value).items()}
        rows[text] = {
            "kind": kind,
            "side": side,
            "channels": channels,
            "filters": filters,
            **{f"{name}_ms": value for name, value in ms.items()},
            "fp32_time_ratio": ms["subpixel_fp32"] / ms["direct_fp32"],
            "int8_time_ratio": ms["subpixel_int8"] / ms["direct_int8"],
            "fp32_max_abs_diff_over_max": float(
                np.abs(outputs["subpixel_fp32"] - outputs["direct_fp32"]).max() / np.abs(outputs["direct_fp32"]).max()
            ),
            "int8_max_levels_apart": float(np.abs(outputs["subpixel_int8"] - outputs["direct_int8"]).max()),
            "int8_share_apart": float(np.mean(outputs["subpixel_int8"] != outputs["direct_int8"])),
        }
        progress.update(
            note=f"{text}: int8 {rows[text]['int8_time_ratio']:.2f}x, fp32 {rows[text]['fp32_time_ratio']:.2f}x the direct time"
        )
    record = {**results.header("subpixel", _THREADS.value), "runs": _RUNS.value, "rows": rows}
    print(report.render_subpixel(record))
    results.write(record, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    app.run(main)
