"""One full training step of the paper's configuration, ours beside the official one, alternating in one run.

All networks at full size (ngf = ndf = 64, 9 blocks), the HED + LPIPS relaxed
cycle with its truncated twin, three local discriminators, batch 1, 512x512,
pool 50. Two persistent worker processes, one per implementation, each with
``--threads`` threads: ours (``AsymmetricCycleGAN.train_step``, with XLA as
``fit`` uses it and/or without) and the official ``optimize_parameters``
written again in PyTorch (``benchmarks.torch_reference.OfficialTrainingStep``).
The parent asks them for one step at a time, in turn, so both see the same
machine minute by minute; each reports its own peak RSS. Speed is the median
of the per-round ratios official/ours (> 1: ours is faster), with min and max.

    python -m benchmarks.train_step                    # 512, 3 timed rounds
    python -m benchmarks.train_step --size 256 --steps 5 --jit_compile on
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
from absl import flags

from benchmarks import machine
from benchmarks.report import render_train_step
from edge_demo.runtime import cli

_SIZE = flags.DEFINE_integer("size", 512, "Image side (the official style head needs 512).")
_BATCH = flags.DEFINE_integer("batch", 1, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed rounds after one warm-up step each.")
_THREADS = flags.DEFINE_integer("threads", 2, "Threads per framework.")
_JIT = flags.DEFINE_list("jit_compile", ["on"], "Ours with XLA ('on', what fit uses) and/or without ('off').")
_PRECISIONS = flags.DEFINE_list(
    "precisions", ["off"], "Ours in float32 ('off', as the official step) and/or train's --mixed_precision policies (e.g. mixed_bfloat16)."
)
_DISTANCE = flags.DEFINE_enum(
    "cycle_distance", "hed_lpips", ["hed_lpips", "edges"], "Our relaxed-cycle distance (the official is hed_lpips)."
)
_OUTPUT = flags.DEFINE_string("output", "docs/results/train_step.json", "JSON results path.")
_WORKER = flags.DEFINE_string("worker", None, "Internal: 'ours-on', 'ours-off' or 'official'; steps on each line read from stdin.")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def ours(jit: bool, precision: str = "off"):
    import keras
    import tensorflow as tf

    from keras_asym.data.synthetic import random_batch
    from keras_asym.models.cycle_gan import build_model
    from keras_asym.training.loop import set_precision

    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    set_precision(precision)
    keras.utils.set_random_seed(0)
    model = build_model(image_size=_SIZE.value, cycle_distance=_DISTANCE.value)
    model.compile(g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), jit_compile=jit)
    model.progress.assign(0.3)
    data = keras.tree.map_structure(tf.constant, random_batch(_BATCH.value, _SIZE.value))
    step = tf.function(model.train_step, jit_compile=jit)
    return lambda: float(step(data)["generator"].numpy())


def official():
    import torch

    from benchmarks.torch_reference import OfficialTrainingStep, random_official_batch

    torch.set_num_threads(_THREADS.value)
    torch.manual_seed(0)
    model = OfficialTrainingStep()
    batch = random_official_batch(_BATCH.value, _SIZE.value)
    return lambda: model.step(batch)


def worker(kind: str) -> int:
    """Builds one implementation, then runs a step per line on stdin and answers ``STEP seconds loss``."""
    from benchmarks.common.timing import peak_rss_mb

    if kind == "official":
        step = official()
    else:  # ours-<on|off>[-<precision policy>]
        _, jit, *precision = kind.split("-", 2)
        step = ours(jit == "on", precision[0] if precision else "off")
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        started = time.perf_counter()
        loss = step()
        print(f"STEP {time.perf_counter() - started} {loss}", flush=True)
    print(f"RSS {peak_rss_mb()}", flush=True)
    return cli.OK


class Worker:
    def __init__(self, kind: str):
        self.kind = kind
        args = [
            sys.executable,
            "-m",
            "benchmarks.train_step",
            f"--worker={kind}",
            f"--size={_SIZE.value}",
            f"--batch={_BATCH.value}",
            f"--threads={_THREADS.value}",
            f"--cycle_distance={_DISTANCE.value}",
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self._expect("READY")

    def _expect(self, prefix: str) -> str:
        for line in self.process.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise RuntimeError(f"{self.kind} worker exited (status {self.process.wait()}) before answering {prefix}")

    def step(self) -> tuple[float, float]:
        self.process.stdin.write("step\n")
        self.process.stdin.flush()
        seconds, loss = self._expect("STEP ").split()
        return float(seconds), float(loss)

    def close(self) -> float:
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        rss = float(self._expect("RSS "))
        self.process.wait()
        return rss


def main(argv):
    del argv
    if _WORKER.value:
        return worker(_WORKER.value)
    try:
        import torch  # noqa: F401

        kinds = ["official"]
    except ImportError:
        kinds = []
        log("PyTorch is not installed (pip install -e '.[bench]'): the official column says 'not measured'")
    kinds += [f"ours-{jit}" + ("" if precision == "off" else f"-{precision}") for precision in _PRECISIONS.value for jit in _JIT.value]
    record = {
        "benchmark": "train_step",
        "command": " ".join(["python", "-m", "benchmarks.train_step", *sys.argv[1:]]),
        "machine": machine.describe(_THREADS.value),
        "size": _SIZE.value,
        "batch": _BATCH.value,
        "cycle_distance": _DISTANCE.value,
        "rows": {},
    }
    workers = {}
    for kind in kinds:
        log(f"starting {kind} (builds the networks; the first step compiles)")
        workers[kind] = Worker(kind)
    first = {}
    for kind, w in workers.items():
        first[kind] = w.step()[0]
        log(f"  {kind}: first step {first[kind]:.1f} s")
    times = {kind: [] for kind in workers}
    losses = {kind: [] for kind in workers}
    started = time.perf_counter()
    for round_ in range(_STEPS.value):
        for kind, w in workers.items():
            seconds, loss = w.step()
            times[kind].append(seconds)
            losses[kind].append(loss)
        done = round_ + 1
        eta = (time.perf_counter() - started) / done * (_STEPS.value - done)
        log(f"  round {done}/{_STEPS.value}: " + ", ".join(f"{k} {t[-1]:.1f}s" for k, t in times.items()) + f" (ETA {eta:.0f} s)")
    for kind, w in workers.items():
        values = np.array(times[kind])
        row = {
            "first_step_s": first[kind],
            "median_s": float(np.median(values)),
            "min_s": float(values.min()),
            "max_s": float(values.max()),
            "all_s": values.round(3).tolist(),
            "peak_rss_mb": w.close(),
            "finite_losses": bool(np.isfinite(losses[kind]).all()),
            "generator_losses": [float(v) for v in losses[kind]],
        }
        if "official" in times and kind != "official":
            ratios = np.array(times["official"]) / values
            row.update(
                speed_vs_official=float(np.median(ratios)),
                speed_vs_official_min=float(ratios.min()),
                speed_vs_official_max=float(ratios.max()),
            )
        record["rows"][kind] = row
    print(render_train_step(record))
    from keras_asym.utils.imageio import write_bytes_atomic

    write_bytes_atomic(_OUTPUT.value, json.dumps(record, indent=1).encode())
    log(f"wrote {_OUTPUT.value}")
    return cli.OK


if __name__ == "__main__":
    cli.run(main)
