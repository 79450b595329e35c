"""`make demo` end to end on a tiny budget: every stage runs and the report links real outputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import cv2
import pytest

from tests.browser import render
from tests.conftest import SHARED


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_the_report(tmp_path, browser):
    out = tmp_path / "demo"
    # three of the shared raw photos, not all sixteen: each is drawn three times (two shipped drawers, the int8 export)
    env, raw = dict(os.environ), sorted(p for p in (SHARED / "data" / "raw_photos").glob("*") if p.suffix.lower() in (".jpg", ".png"))[:3]
    if raw:
        few = tmp_path / "shared" / "data" / "raw_photos"
        few.mkdir(parents=True)
        for photo in raw:
            (few / photo.name).symlink_to(photo.resolve())
        env["KERAS_ASYM_SHARED"] = str(tmp_path / "shared")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_asym.demo",
            f"--output={out}",
            "--size=64",
            "--ngf=4",
            "--n_blocks=1",
            "--epochs=4",
            "--steps_per_epoch=1",
            "--photos=12",
            "--clip_frames=16",
            "--train_minutes=5",
            "--nojit_compile",  # XLA's compile costs more than four steps save
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Report:" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    # 4 epochs, more than the 3 checkpoints a run keeps: the report counts them all (from history.csv)
    assert summary["training"]["epochs_run"] == 4 and summary["training"]["steps"] == 4
    assert "4 epochs (4 steps)" in (out / "report.html").read_text()
    assert set(summary["timings"]) == {"dataset", "pretrained", "train", "export", "draw", "edge", "evaluate"}
    assert "[demo] stage 7/7: evaluate done" in result.stdout
    pretrained = summary["pretrained"]
    assert set(pretrained["paired"]) == {"style1", "style2", "style3"} and isinstance(pretrained["meets_bar"], bool)
    assert pretrained["drawing_files"] and (out / "pretrained" / "styles.png").is_file()
    unpaired = summary["pretrained_unpaired"]  # the shipped drawer trained by the paper's unpaired method, beside it
    assert "unpaired" in unpaired["what"] and set(unpaired["paired"]) == {"style1", "style2", "style3"}
    assert (out / "pretrained_unpaired" / "styles.png").is_file() and unpaired["drawing_files"]
    assert "paired fit (not the paper&#x27;s method)" in (out / "report.html").read_text()
    assert "trained from scratch by the paper&#x27;s unpaired method" in (out / "report.html").read_text()
    assert summary["edge"]["frames"] == 16 and summary["edge"]["faces_found"] >= 12
    assert set(summary["evaluation"]["paired"]) == {"style1", "style2", "style3"}
    assert summary["export"]["variants"]["int8"]["io"]["photo"] == "uint8"
    report = (out / "report.html").read_text()
    for link in re.findall(r"(?:src|href)='([^']+)'|(?:src|href)=\"([^\"]+)\"", report):
        target = out / (link[0] or link[1])
        assert target.is_file(), target
    assert summary["drawing_files"] and (
        not raw or all(name.split("/")[-1].startswith(tuple(p.stem for p in raw)) for name in summary["drawing_files"])
    )
    drawing = cv2.imread(str(out / summary["drawing_files"][0]))
    assert drawing is not None and drawing.size > 0
    for page in (out / "report.html", out / "drawings" / "index.html"):  # as a reader sees them
        loaded, total, spread = render(page, tmp_path / f"{page.parent.name}.png")
        assert total >= 5 and loaded == total, (page, loaded, total)
        assert spread > 10, f"{page}: the screenshot is blank"
