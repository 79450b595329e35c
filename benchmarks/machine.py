"""What a benchmark ran on, and what that machine can do, measured in the same run.

Absolute times on shared machines move by more than 50% between days, so
every benchmark records the machine beside its numbers and reports ratios
measured in one run. The sgemm peak is measured, never typed in.
"""

from __future__ import annotations

import datetime
import os
import platform
import time

import numpy as np

FLAGS_OF_INTEREST = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "i8mm",
)


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith(("flags", "Features")):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in FLAGS_OF_INTEREST if flag in present]
    except OSError:
        pass
    return []


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("torch", "tensorflow", "keras", "ai_edge_litert"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - a missing framework is reported, not fatal
            found[module] = "not installed"
    return found


def describe(threads: int) -> dict:
    """The machine; with ``ONEDNN_MAX_CPU_ISA`` set (oneDNN, inside TensorFlow and PyTorch, then uses no instructions
    past that ISA: ``AVX512_CORE_BF16`` keeps it off AMX, though it does not make the CPU one without AMX) the cap is
    recorded beside the flags."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return {
        "cpu": cpu_model(),
        "flags": cpu_flags(),
        **({"onednn_max_cpu_isa": cap} if cap else {}),
        "cores_visible": os.cpu_count(),
        "threads": threads,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    }


def sgemm_peak_gflops(threads: int, n: int = 2048, runs: int = 10) -> dict:
    """Best fp32 GEMM rate on ``threads`` threads: PyTorch's (MKL/oneDNN) when installed, else NumPy's BLAS."""
    try:
        import torch

        torch.set_num_threads(threads)
        a, b = torch.randn(n, n), torch.randn(n, n)
        multiply, library = (lambda: a @ b), f"torch {torch.__version__}"
    except ImportError:
        a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
        multiply, library = (lambda: a @ b), f"numpy {np.__version__} (threads as its BLAS sets them)"
    for _ in range(3):
        multiply()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        multiply()
        times.append(time.perf_counter() - started)
    return {"gflops": 2 * n**3 / min(times) / 1e9, "gflops_median": 2 * n**3 / float(np.median(times)) / 1e9, "n": n, "library": library}
