"""Where the float generator's time goes: each of G's layer shapes alone, TFLite (XNNPACK) beside PyTorch.

    python -m benchmarks.layer_profile               # 256x256, 2 threads

Every layer shape of the paper's G at ``--size`` runs as its own one-layer
model in both frameworks, alternating, median of ``--runs``; ``count`` is how
often G uses it, so ``count x seconds`` sums to the network's cost without the
glue (padding copies, residual adds). The convolutions' ratio says how far
XNNPACK's float kernels are from PyTorch's (oneDNN) on this CPU, which no
graph rewrite can close. Writes ``--output`` (JSON).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from absl import flags

from benchmarks import machine
from edge_demo.runtime import cli

_SIZE = flags.DEFINE_integer("size", 256, "Input side of G.")
_THREADS = flags.DEFINE_integer("threads", 2, "Threads per framework.")
_RUNS = flags.DEFINE_integer("runs", 10, "Alternating rounds (median reported).")
_OUTPUT = flags.DEFINE_string("output", "docs/results/layer_profile.json", "JSON results path.")


def shapes(size: int, ngf: int = 64, n_blocks: int = 9) -> list[dict]:
    """G's distinct layers: name, NHWC input shape, how many G uses, and both frameworks' builders (by name)."""
    s4, s2 = size // 4, size // 2
    return [
        {"name": f"stem conv 7x7, 3->{ngf}", "input": (size + 6, size + 6, 3), "count": 1, "conv": (ngf, 7, 1)},
        {"name": f"down conv 3x3/2, {ngf}->{2 * ngf}", "input": (size, size, ngf), "count": 1, "conv": (2 * ngf, 3, 2)},
        {"name": f"down conv 3x3/2, {2 * ngf}->{4 * ngf}", "input": (s2, s2, 2 * ngf), "count": 1, "conv": (4 * ngf, 3, 2)},
        {"name": f"block conv 3x3, {4 * ngf}", "input": (s4 + 2, s4 + 2, 4 * ngf), "count": 2 * n_blocks + 1, "conv": (4 * ngf, 3, 1)},
        {"name": f"up transpose conv 3x3/2, {4 * ngf}->{2 * ngf}", "input": (s4, s4, 4 * ngf), "count": 1, "tconv": 2 * ngf},
        {"name": f"up transpose conv 3x3/2, {2 * ngf}->{ngf}", "input": (s2, s2, 2 * ngf), "count": 1, "tconv": ngf},
        {"name": f"head conv 7x7, {ngf}->1", "input": (size + 6, size + 6, ngf), "count": 1, "conv": (1, 7, 1)},
        {"name": f"instance norm, {ngf} channels", "input": (size, size, ngf), "count": 3, "norm": True},
        {"name": f"instance norm, {2 * ngf} channels", "input": (s2, s2, 2 * ngf), "count": 2, "norm": True},
        {"name": f"instance norm, {4 * ngf} channels", "input": (s4, s4, 4 * ngf), "count": 2 * n_blocks + 3, "norm": True},
    ]


def keras_layer(spec: dict):
    import keras

    from keras_asym.layers.basic import InstanceNormalization

    if "conv" in spec:
        filters, kernel, stride = spec["conv"]
        return keras.layers.Conv2D(filters, kernel, stride, padding="same" if stride == 2 else "valid")
    if "tconv" in spec:
        return keras.layers.Conv2DTranspose(spec["tconv"], 3, 2)
    return InstanceNormalization()


def torch_layer(spec: dict):
    from torch import nn

    channels = spec["input"][2]
    if "conv" in spec:
        filters, kernel, stride = spec["conv"]
        return nn.Conv2d(channels, filters, kernel, stride, padding=1 if stride == 2 else 0)
    if "tconv" in spec:
        return nn.ConvTranspose2d(channels, spec["tconv"], 3, 2, 1, 1)
    return nn.InstanceNorm2d(channels)


def runners(spec: dict, threads: int):
    import keras
    import tensorflow as tf
    import torch
    from ai_edge_litert.interpreter import Interpreter

    inputs = keras.Input(spec["input"], batch_size=1)
    model = keras.Model(inputs, keras_layer(spec)(inputs))
    interpreter = Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert(), num_threads=threads)
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).uniform(-1, 1, (1, *spec["input"])).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    layer = torch_layer(spec).eval()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    def run_torch():
        with torch.inference_mode():
            layer(xt)

    return {"tflite": interpreter.invoke, "pytorch": run_torch}


def main(argv):
    del argv
    import tensorflow as tf
    import torch

    torch.set_num_threads(_THREADS.value)
    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    record = {
        "benchmark": "layer_profile",
        "command": " ".join(["python", "-m", "benchmarks.layer_profile", *sys.argv[1:]]),
        "machine": machine.describe(_THREADS.value),
        "size": _SIZE.value,
        "rows": [],
    }
    from edge_demo.runtime.progress import Progress

    specs = shapes(_SIZE.value)
    progress = Progress(len(specs), "layer_profile", unit="layer shapes", interval=0.0)
    for spec in specs:
        run = runners(spec, _THREADS.value)
        for f in run.values():
            f()
        times = {name: [] for name in run}
        for _ in range(_RUNS.value):
            for name, f in run.items():
                started = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - started)
        row = {"layer": spec["name"], "count": spec["count"], **{f"{k}_s": float(np.median(v)) for k, v in times.items()}}
        row["tflite_over_pytorch"] = row["tflite_s"] / row["pytorch_s"]
        record["rows"].append(row)
        print(
            f"{row['layer']:40s} x{row['count']:2d}  tflite {row['tflite_s'] * 1e3:7.2f} ms  pytorch {row['pytorch_s'] * 1e3:7.2f} ms  "
            f"({row['tflite_over_pytorch']:.2f}x the time)",
            flush=True,
        )
        progress.update()
    record["total_tflite_s"] = sum(r["count"] * r["tflite_s"] for r in record["rows"])
    record["total_pytorch_s"] = sum(r["count"] * r["pytorch_s"] for r in record["rows"])
    from keras_asym.utils.imageio import write_bytes_atomic

    write_bytes_atomic(_OUTPUT.value, json.dumps(record, indent=1).encode())
    print(f"sum of layers: tflite {record['total_tflite_s']:.3f} s, pytorch {record['total_pytorch_s']:.3f} s; wrote {_OUTPUT.value}")
    return cli.OK


if __name__ == "__main__":
    cli.run(main)
