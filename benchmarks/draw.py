"""Seconds per drawing of the full-size style generator (ngf 64, 9 blocks) on this CPU.

Keras float32 (the path ``keras_asym.draw`` takes for ``.keras`` models) and
TFLite float32 through LiteRT/XNNPACK (the ``.tflite`` path), at 512 and 256,
with 1 and 2 threads, beside the official PyTorch generator measured on the
same kind of machine (2.10 s at 512, 0.45 s at 256; torch 2.13, 2 threads).
Each configuration runs in its own process so thread settings apply.

    python benchmarks/draw.py --output benchmarks/results/draw.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

_SIZES = flags.DEFINE_list("sizes", ["512", "256"], "Square input sizes.")
_THREADS = flags.DEFINE_list("threads", ["1", "2"], "Thread counts.")
_RUNS = flags.DEFINE_integer("runs", 5, "Timed runs per configuration (median reported).")
_MODEL = flags.DEFINE_string("model", None, "A generator .keras (default: random full-size weights).")
_OUTPUT = flags.DEFINE_string("output", "benchmarks/results/draw.json", "JSON results path.")
_CHILD = flags.DEFINE_string("child", None, "Internal: 'backend,size,threads' measured in this process.")

OFFICIAL_SECONDS = {512: 2.10, 256: 0.45}
GFLOP_512 = 412.7


def _generator(size: int):
    import keras

    from keras_asym.networks import StyleGenerator

    model = StyleGenerator(height=size, width=size)
    if _MODEL.value:
        model.set_weights(keras.saving.load_model(_MODEL.value, compile=False).get_weights())
    return model


def measure_child(backend: str, size: int, threads: int) -> dict:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    generator = _generator(size)
    photo = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    style = np.float32([[0.0, 1.0, 0.0]])
    if backend == "keras":
        fn = tf.function(lambda p, s: generator({"photo": p, "style": s}, training=False))
        run = lambda: fn(photo, style).numpy()  # noqa: E731
    else:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(generator).convert(), num_threads=threads)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], photo if len(detail["shape"]) == 4 else style)
        out = interpreter.get_output_details()[0]["index"]

        def run():
            interpreter.invoke()
            return interpreter.get_tensor(out)

    run()
    times = []
    for _ in range(_RUNS.value):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"backend": backend, "size": size, "threads": threads, "s_per_image": float(np.median(times)), "all": times}


def main(argv):
    del argv
    if _CHILD.value:
        backend, size, threads = _CHILD.value.split(",")
        print("RESULT " + json.dumps(measure_child(backend, int(size), int(threads))))
        return 0
    rows = []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for size in map(int, _SIZES.value):
        for backend in ("keras", "tflite_fp32"):
            for threads in map(int, _THREADS.value):
                args = [sys.executable, __file__, f"--child={backend},{size},{threads}", f"--runs={_RUNS.value}"]
                if _MODEL.value:
                    args.append(f"--model={_MODEL.value}")
                result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
                line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT ")), None)
                if line is None:
                    print(f"{backend} {size} {threads}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(line[len("RESULT ") :]))
    print("\n| backend | size | threads | s/image | images/s | GFLOP/s | vs official (2 threads) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        gflop = GFLOP_512 * (row["size"] / 512) ** 2
        ratio = row["s_per_image"] / OFFICIAL_SECONDS[row["size"]] if row["size"] in OFFICIAL_SECONDS else float("nan")
        print(
            f"| {row['backend']} | {row['size']} | {row['threads']} | {row['s_per_image']:.3f} | "
            f"{1 / row['s_per_image']:.2f} | {gflop / row['s_per_image']:.0f} | {ratio:.2f}x time |"
        )
    for size, seconds in OFFICIAL_SECONDS.items():
        print(f"| official PyTorch 2.13 | {size} | 2 | {seconds:.2f} | {1 / seconds:.2f} | {GFLOP_512 * (size / 512) ** 2 / seconds:.0f} | 1.00x |")
    out = Path(_OUTPUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"benchmark": "draw", "official_s_per_image": OFFICIAL_SECONDS, "runs": rows}, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    app.run(main)
