"""The benchmarks' full-size generator with realistic weights (``benchmarks.reference_generator``), fitted once
and cached: quantization error needs real activations, which random weights do not have."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference_generator.keras"
# benchmarks.unpaired_drawer's final G, shipped with the package (the same weights as its run's export): a generator
# trained by the paper's method that no quantization setting was tuned on
UNPAIRED_G = Path(__file__).resolve().parents[2] / "keras_asym" / "pretrained" / "unpaired_drawer.keras"


def reference_model(calibration_dir: Path | None) -> Path:
    """The cached reference generator, fitted first (paper's G, 300 steps at 128x128: minutes) when missing."""
    if not REFERENCE.is_file():
        print(f"[{time.strftime('%H:%M:%S')}] fitting the reference generator (minutes) -> {REFERENCE}", flush=True)
        args = [sys.executable, "-m", "benchmarks.reference_generator", f"--output={REFERENCE}"]
        subprocess.run(args + ([f"--photos={calibration_dir}"] if calibration_dir else []), check=True, cwd=REFERENCE.parents[2])
    return REFERENCE


def models_or_defaults(paths: list[str], calibration_dir: Path | None) -> list[Path]:
    """The generators a benchmark was given, else the reference generator (fitted first if missing) and ``UNPAIRED_G``."""
    return [Path(p) for p in paths] if paths else [reference_model(calibration_dir), UNPAIRED_G]
