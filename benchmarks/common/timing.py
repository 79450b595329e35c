"""Latency of one TFLite generator, timed in a child process of its own (no TensorFlow there).

``child_timing`` is importable without defining any flags, so benchmarks can share it; the child is
``python -m benchmarks.common.timing MODEL THREADS RUNS`` (internal), which prints ``RESULT {json}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.styles import one_hot


def alternating_medians(runners: dict, runs: int) -> dict[str, float]:
    """Median seconds of each allocated interpreter's ``invoke`` over ``runs`` rounds, one call each per round, so a
    slow moment hits them all."""
    times = {name: [] for name in runners}
    for _ in range(runs):
        for name, interpreter in runners.items():
            started = time.perf_counter()
            interpreter.invoke()
            times[name].append(time.perf_counter() - started)
    return {name: float(np.median(t)) for name, t in times.items()}


def time_model(path: str, threads: int, runs: int) -> dict:
    """Median latency of one generator invocation (after 2 warm-ups) and this process's peak RSS."""
    generator = TFLiteGenerator(path, threads=threads)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (generator.height, generator.width, 3), dtype=np.uint8)
    style = one_hot(1)
    for _ in range(2):
        generator.draw(photo, style)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        generator.draw(photo, style)
        times.append(time.perf_counter() - started)
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that across ``exec`` from the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_timing(path: Path, threads: int, runs: int) -> dict:
    """``time_model`` in a fresh process, so each model's peak RSS is its own."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.common.timing", str(path), str(threads), str(runs)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    line = next((line for line in result.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"timing {path} failed:\n{result.stderr[-2000:]}")
    return json.loads(line[len("RESULT ") :])


if __name__ == "__main__":
    model, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print("RESULT " + json.dumps(time_model(model, threads, runs)))
