"""The `make demo` entry point runs end to end and writes its outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2


def test_demo_writes_three_styles(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "keras_asym.demo", "--output", str(out), "--size", "64", "--steps", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "UNTRAINED" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["losses"]["generator"] > 0
    for k in (1, 2, 3):
        image = cv2.imread(str(out / f"photo_style{k}.png"), cv2.IMREAD_UNCHANGED)
        assert image.shape == (64, 64)
    assert not list(out.glob("*.tmp"))
