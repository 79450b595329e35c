"""Training throughput of the paper's configuration through ``fit``: steps/s and images/s.

Full-size networks (ngf = ndf = 64, 9 blocks), the weights-free ``edges``
relaxed cycle by default (``--cycle_distance hed_lpips`` for the paper's),
for each size x global batch x replica count; "2 replicas" splits this CPU
into two logical devices under ``MirroredStrategy`` (on a GPU machine it uses
the GPUs). Each configuration runs in its own process.

    python -m benchmarks.train_throughput --sizes 256,512 --batches 1,2,4 --replicas 1,2   # docs/results/train_throughput.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

from benchmarks.common import results
from edge_demo.runtime.progress import Progress

_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Image sizes.")
_BATCHES = flags.DEFINE_list("batches", ["1", "2", "4"], "Global batch sizes.")
_REPLICAS = flags.DEFINE_list("replicas", ["1", "2"], "Replica counts.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps after one warm-up step.")
_DISTANCE = flags.DEFINE_enum("cycle_distance", "edges", ["edges", "hed_lpips"], "Relaxed-cycle distance.")
_JIT = flags.DEFINE_boolean("jit_compile", True, "XLA (fit's default).")
_OUTPUT = flags.DEFINE_string("output", None, "JSON results path (default: docs/results/train_throughput.json).")
_CHILD = flags.DEFINE_string("child", None, "Internal: 'size,batch,replicas'.")


def measure(size: int, batch: int, replicas: int) -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if replicas > 1 and len(gpus) < replicas:
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * replicas
        )
    import keras

    from keras_asym.data.synthetic import random_batch
    from keras_asym.models.cycle_gan import build_model

    devices = [d.name for d in tf.config.list_logical_devices("GPU" if gpus else "CPU")][:replicas]
    strategy = tf.distribute.OneDeviceStrategy(devices[0]) if replicas == 1 else tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        # Random HED/LPIPS weights cost the same time as the pretrained ones.
        model = build_model(image_size=size, cycle_distance=_DISTANCE.value)
        model.compile(
            g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            jit_compile=_JIT.value and (replicas == 1 or bool(gpus)),  # XLA cannot span logical CPUs
        )
    data = random_batch(batch, size)
    dataset = tf.data.Dataset.from_tensors(data).repeat()
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=_STEPS.value, verbose=0)
    seconds = (time.perf_counter() - start) / _STEPS.value
    return {
        "size": size,
        "batch": batch,
        "replicas": replicas,
        "device": "GPU" if gpus else "CPU",
        "first_step_s": first,
        "s_per_step": seconds,
        "steps_per_s": 1 / seconds,
        "images_per_s": batch / seconds,
    }


def main(argv):
    del argv
    if _CHILD.value:
        size, batch, replicas = map(int, _CHILD.value.split(","))
        print("RESULT " + json.dumps(measure(size, batch, replicas)))
        return 0
    rows = []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    runs = [
        (size, batch, replicas)
        for size in map(int, _SIZES.value)
        for batch in map(int, _BATCHES.value)
        for replicas in map(int, _REPLICAS.value)
        if batch % replicas == 0
    ]
    progress = Progress(len(runs), "train_throughput", unit="runs", interval=0.0)
    for size, batch, replicas in runs:
        args = [
            sys.executable,
            "-m",
            "benchmarks.train_throughput",
            f"--child={size},{batch},{replicas}",
            f"--steps={_STEPS.value}",
            f"--cycle_distance={_DISTANCE.value}",
            f"--jit_compile={_JIT.value}",
        ]
        result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=7200, cwd=Path(__file__).resolve().parents[1])
        progress.update(note=f"size {size} batch {batch} replicas {replicas}")
        line = next((out for out in result.stdout.splitlines() if out.startswith("RESULT ")), None)
        if line is None:
            print(f"size {size} batch {batch} replicas {replicas}: failed\n{result.stderr[-1500:]}", file=sys.stderr)
            continue
        rows.append(json.loads(line[len("RESULT ") :]))
        row = rows[-1]
        print(f"size {size} batch {batch} replicas {replicas}: {row['s_per_step']:.2f} s/step", flush=True)
    print("\n| size | batch | replicas | device | s/step | steps/s | images/s | first step s |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']} | {r['batch']} | {r['replicas']} | {r['device']} | {r['s_per_step']:.2f} | {r['steps_per_s']:.3f} | {r['images_per_s']:.3f} | {r['first_step_s']:.0f} |"
        )
    record = {
        **results.header("train_throughput", os.cpu_count()),
        "cycle_distance": _DISTANCE.value,
        "jit_compile": _JIT.value,
        "runs": rows,
    }
    results.write(record, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    app.run(main)
