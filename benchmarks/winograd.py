"""One 3x3 convolution, direct against Winograd F(2x2, 3x3) (export/winograd.py), in fp32 TFLite on XNNPACK.

    python -m benchmarks.winograd              # docs/results/winograd.json

Each shape (map side x channels in and out) is converted both ways from the same random weights and timed in one
process, the two alternating (median of --runs, 2 threads). This is what ``export.winograd.MIN_CHANNELS`` is chosen
from; the whole generator beside PyTorch is ``benchmarks.inference --variants fp32,fp32_winograd``.
"""

from __future__ import annotations

import numpy as np
from absl import app, flags

_SHAPES = flags.DEFINE_list(
    "shapes", ["64x256", "128x256", "128x128", "256x64"], "side x channels: a side x side map, as many channels in as out."
)
_RUNS = flags.DEFINE_integer("runs", 21, "Alternating timing rounds (median reported).")
_THREADS = flags.DEFINE_integer("threads", 2, "XNNPACK threads.")
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/winograd.json).")


def _flatbuffers(side: int, channels: int) -> dict[str, bytes]:
    import keras
    import tensorflow as tf

    from export import winograd

    rng = np.random.default_rng(side * 1000 + channels)
    kernel = (rng.standard_normal((3, 3, channels, channels)) / np.sqrt(9 * channels)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32) * 0.1
    direct = keras.layers.Conv2D(channels, 3)
    fast = winograd.WinogradConv2D(channels)
    for layer, weights in ((direct, [kernel, bias]), (fast, [winograd.transform_kernel(kernel), bias])):
        layer.build((1, side + 2, side + 2, channels))
        layer.set_weights(weights)
    spec = tf.TensorSpec((1, side + 2, side + 2, channels), tf.float32)
    return {
        name: tf.lite.TFLiteConverter.from_concrete_functions([tf.function(layer).get_concrete_function(spec)]).convert()
        for name, layer in (("direct", direct), ("winograd", fast))
    }


def main(argv):
    del argv
    from ai_edge_litert.interpreter import Interpreter

    from benchmarks import report
    from benchmarks.common import results
    from benchmarks.common.timing import alternating_medians
    from edge_demo.runtime.progress import Progress

    rows = {}
    progress = Progress(len(_SHAPES.value), "winograd", unit="shapes", interval=0.0)
    for shape in _SHAPES.value:
        side, channels = map(int, shape.split("x"))
        models = _flatbuffers(side, channels)
        x = np.random.default_rng(0).standard_normal((1, side + 2, side + 2, channels)).astype(np.float32)
        runners, outputs = {}, {}
        for name, model in models.items():
            interpreter = Interpreter(model_content=model, num_threads=_THREADS.value)
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            outputs[name] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
            runners[name] = interpreter
        medians = alternating_medians(runners, _RUNS.value)
        direct, fast = medians["direct"], medians["winograd"]
        rows[shape] = {
            "side": side,
            "channels": channels,
            "direct_ms": 1e3 * direct,
            "winograd_ms": 1e3 * fast,
            "time_ratio": fast / direct,
            "direct_mb": len(models["direct"]) / 1e6,
            "winograd_mb": len(models["winograd"]) / 1e6,
            "max_abs_diff_over_max": float(np.abs(outputs["winograd"] - outputs["direct"]).max() / np.abs(outputs["direct"]).max()),
        }
        progress.update(note=f"{shape}: {rows[shape]['time_ratio']:.2f}x the direct time")
    from export.winograd import MIN_CHANNELS

    record = {**results.header("winograd", _THREADS.value), "runs": _RUNS.value, "min_channels": MIN_CHANNELS, "rows": rows}
    print(report.render_winograd(record))
    results.write(record, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    app.run(main)
