"""Seconds per full training step of the paper's configuration on this machine.

All networks at full size (ngf = ndf = 64, 9 blocks), HED + LPIPS relaxed
cycle, truncation on, three local discriminators, batch 1, 512x512, pool 50.
Prints a table beside the official PyTorch implementation measured on the
same kind of machine (44-46 s/step, 2 threads, torch 2.13) and writes JSON.

    python benchmarks/train_step.py --threads 2 --steps 3 --output benchmarks/results/train_step.json
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from absl import app, flags

_SIZE = flags.DEFINE_integer("size", 512, "Image side.")
_BATCH = flags.DEFINE_integer("batch", 1, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps after the warm-up step.")
_THREADS = flags.DEFINE_integer("threads", 2, "TensorFlow intra-op threads (inter-op is 1).")
_JIT = flags.DEFINE_multi_enum("jit_compile", ["on", "off"], ["off", "on"], "Run once per value; \"on\" is what fit uses by default (Keras jit_compile=\"auto\").")
_DISTANCE = flags.DEFINE_enum("cycle_distance", "hed_lpips", ["hed_lpips", "edges"], "Relaxed-cycle distance.")
_OUTPUT = flags.DEFINE_string("output", "benchmarks/results/train_step.json", "JSON results path.")

OFFICIAL_SECONDS = (44.0, 46.0)


def measure(jit: bool) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_asym.data.synthetic import random_batch
    from keras_asym.model import build_model

    size, batch = _SIZE.value, _BATCH.value
    keras.utils.set_random_seed(0)
    model = build_model(image_size=size, cycle_distance=_DISTANCE.value)
    model.compile(
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        jit_compile=jit,
    )
    model.progress.assign(0.3)
    data = random_batch(batch, size)
    data = keras.tree.map_structure(tf.constant, data)
    step = tf.function(model.train_step, jit_compile=jit)
    start = time.perf_counter()
    step(data)["generator"].numpy()
    first = time.perf_counter() - start
    times = []
    for _ in range(_STEPS.value):
        start = time.perf_counter()
        step(data)["generator"].numpy()
        times.append(time.perf_counter() - start)
    return {
        "jit_compile": jit,
        "first_step_s": first,
        "step_s_median": float(np.median(times)),
        "step_s_all": times,
        "images_per_s": batch / float(np.median(times)),
    }


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rows = [measure(jit == "on") for jit in _JIT.value]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result = {
        "benchmark": "train_step",
        "size": _SIZE.value,
        "batch": _BATCH.value,
        "threads": _THREADS.value,
        "cycle_distance": _DISTANCE.value,
        "cpu": os.cpu_count(),
        "tensorflow": tf.__version__,
        "official_pytorch_s_per_step": list(OFFICIAL_SECONDS),
        "peak_rss_mb": peak_rss_mb,
        "runs": rows,
    }
    print(f"\nFull training step, {_SIZE.value}x{_SIZE.value}, batch {_BATCH.value}, {_THREADS.value} threads")
    print("| implementation | s/step (median) | first step s | speed-up vs official |")
    print("|---|---|---|---|")
    print(f"| official PyTorch 2.13 (measured on this machine type) | {OFFICIAL_SECONDS[0]:.0f}-{OFFICIAL_SECONDS[1]:.0f} | - | 1.00x |")
    for row in rows:
        speed = f"{sum(OFFICIAL_SECONDS) / 2 / row['step_s_median']:.2f}x" if _SIZE.value == 512 and _BATCH.value == 1 else "n/a (official figure is 512, batch 1)"
        name = "keras_asym (XLA)" if row["jit_compile"] else "keras_asym"
        print(f"| {name} | {row['step_s_median']:.2f} | {row['first_step_s']:.1f} | {speed} |")
    print(f"peak RSS: {peak_rss_mb:.0f} MB")
    out = Path(_OUTPUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(app.run(main))
