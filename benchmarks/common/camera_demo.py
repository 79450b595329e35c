"""The camera demo run headless over a clip in its own process (no TensorFlow there), and its stats: what the
edge and browser benchmarks compare against."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_demo(model: Path, clip: Path, threads: int, stats: Path) -> dict:
    """``python -m edge_demo --headless`` over every frame of ``clip``; its ``--stats`` JSON."""
    command = [sys.executable, "-m", "edge_demo", f"--model={model}", f"--source={clip}", "--headless", f"--threads={threads}"]
    result = subprocess.run([*command, f"--stats={stats}"], capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"edge_demo failed on {model}:\n{result.stderr[-2000:]}")
    return json.loads(Path(stats).read_text())


def row_name(model: Path, taken) -> str:
    """A model's row in a results table: its folder and file name, or its whole path where that row is taken (two
    exports of other networks both named ``student_256px``, as ``benchmarks.distill_report`` names its exports)."""
    name = f"{model.parent.name}/{model.stem}"
    return str(model.with_suffix("")) if name in taken else name
