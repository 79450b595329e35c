"""`prepare` and `style`: a real dataset from raw photos and drawings, resumable, bad files reported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from keras_asym.data.pipeline import make_dataset, scan
from tests.conftest import SHARED

DATA = SHARED / "data"
pytestmark = pytest.mark.skipif(not (DATA / "paper_drawings").is_dir(), reason=f"real images not found under {DATA}")


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    photos, drawings = root / "photos", root / "drawings"
    photos.mkdir()
    for name in ("woman-23_cropped.png", "celebahq-4797.jpg"):
        shutil.copy(DATA / "raw_photos" / name, photos / name)
    (photos / "broken.png").write_text("not an image")
    for k in (1, 2, 3):
        (drawings / f"style{k}").mkdir(parents=True)
        for row in (0, 1):
            shutil.copy(DATA / "paper_drawings" / f"row{row}_style{k}.png", drawings / f"style{k}" / f"row{row}.png")
    return photos, drawings


def test_prepare_builds_a_trainable_dataset_and_resumes(tmp_path, sources):
    photos, drawings = sources
    out = tmp_path / "dataset"
    result = _run("keras_asym.prepare", "--photos", photos, "--drawings", drawings, "--output", out, "--size", "256")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "broken.png: not a readable image" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["done"] == 8 and summary["errors"] == 1
    assert "prepare: 9/9 images (100%)" in result.stderr  # progress lines, the last at the end
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["photos"]["broken"]["status"] == "error"
    assert manifest["photos"]["woman-23_cropped"]["method"] == "detected"
    methods = {e["method"] for e in manifest["drawings"].values()}
    assert methods <= {"detected", "centred_crop"}
    assert cv2.imread(str(out / "A" / "woman-23_cropped.png")).shape == (256, 256, 3)
    assert cv2.imread(str(out / "B" / "style2_row1.png"), cv2.IMREAD_UNCHANGED).shape == (256, 256)
    np.testing.assert_array_equal(np.load(out / "B_feat" / "style3_row0.npy"), [0, 0, 1])
    mask = cv2.imread(str(out / "A_eyes" / "woman-23_cropped.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) == {0, 255} and 0.01 < (mask > 0).mean() < 0.2

    info = scan(out)
    assert len(info["photos"]) == 2 and len(info["drawings"]) == 6 and not info["skipped"]
    batch = next(iter(make_dataset(out, image_size=256, batch_size=2)))
    assert batch["photo"].shape == (2, 256, 256, 3)

    stamp = (out / "A" / "woman-23_cropped.png").stat().st_mtime_ns
    again = _run("keras_asym.prepare", "--photos", photos, "--drawings", drawings, "--output", out, "--size", "256")
    assert json.loads(again.stdout.strip().splitlines()[-1])["skipped_unchanged"] == 8
    assert (out / "A" / "woman-23_cropped.png").stat().st_mtime_ns == stamp
    forced = _run("keras_asym.prepare", "--photos", photos, "--drawings", drawings, "--output", out, "--size", "256", "--force")
    assert json.loads(forced.stdout.strip().splitlines()[-1])["done"] == 8
    assert not list(out.rglob("*.partial"))

    (out / "manifest.json").write_text('{"photos": [1, 2')  # damaged: set aside, everything redone
    damaged = _run("keras_asym.prepare", "--photos", photos, "--drawings", drawings, "--output", out, "--size", "256")
    assert damaged.returncode == 1 and "Traceback" not in damaged.stderr
    assert "manifest.json: damaged" in damaged.stderr and (out / "manifest.damaged.json").is_file()
    assert json.loads(damaged.stdout.strip().splitlines()[-1])["done"] == 8


def test_flat_drawing_folder_needs_a_style_source(tmp_path, sources):
    photos, _ = sources
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(DATA / "paper_drawings" / "row0_style1.png", flat / "d.png")
    result = _run("keras_asym.prepare", "--photos", photos, "--drawings", flat, "--output", tmp_path / "o", "--size", "256")
    assert result.returncode == 1 and "no style known" in result.stderr


@pytest.mark.parametrize(
    "landmarks",
    ['{"images": {"d.png": {"faces": [{"points": [[1, 2]]}]}}}', "[]"],  # points that are not 5 pairs; no "images"
)
def test_a_malformed_landmarks_file_exits_2_naming_it(tmp_path, sources, landmarks):
    photos, drawings = sources
    (tmp_path / "marks.json").write_text(landmarks)
    args = ["--photos", photos, "--drawings", drawings, "--output", tmp_path / "o", "--drawing_landmarks", tmp_path / "marks.json"]
    result = _run("keras_asym.prepare", *args)
    assert result.returncode == 2 and "marks.json: not a landmarks file" in result.stderr and "Traceback" not in result.stderr


def test_unwritable_output_fails_before_work(tmp_path, sources):
    photos, drawings = sources
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _run("keras_asym.prepare", "--photos", photos, "--drawings", drawings, "--output", blocker / "sub")
    assert result.returncode == 2 and "prepare: error" in result.stderr


def test_style_classifier_trains_and_writes_features(tmp_path, sources):
    _, drawings = sources
    model = tmp_path / "style.keras"
    result = _run("keras_asym.style", "--drawings", drawings, "--output", model, "--epochs", "2", "--vgg19_weights", "none")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trunk = small_cnn" in result.stdout
    features = tmp_path / "feat"
    result = _run("keras_asym.style", "--predict", drawings / "style2", "--output", model, "--features_dir", features)
    assert result.returncode == 0, result.stderr[-2000:]
    vectors = [np.load(p) for p in sorted(features.glob("*.npy"))]
    assert len(vectors) == 2 and all(v.shape == (3,) and abs(v.sum() - 1) < 1e-5 for v in vectors)
    result = _run("keras_asym.style", "--drawings", tmp_path, "--output", model)
    assert result.returncode == 2 and "style1" in result.stderr


def test_prepare_killed_mid_folder_leaves_only_whole_files_and_a_rerun_completes(tmp_path, sources):
    import os
    import signal
    import time

    photos, drawings = sources
    out = tmp_path / "dataset"
    args = [
        sys.executable,
        "-m",
        "keras_asym.prepare",
        "--photos",
        str(photos),
        "--drawings",
        str(drawings),
        "--output",
        str(out),
        "--size",
        "256",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not list((out / "B").glob("*.png")):
        time.sleep(0.005)
    assert process.poll() is None, "prepare finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    for path in out.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            if path.suffix == ".png":
                assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None, path
            elif path.suffix == ".json":
                json.loads(path.read_text())
    rerun = _run("keras_asym.prepare", "--photos", photos, "--drawings", drawings, "--output", out, "--size", "256")
    assert rerun.returncode == 1, rerun.stderr[-2000:]  # broken.png is skipped and reported
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["done"] + summary["skipped_unchanged"] == 8 and summary["errors"] == 1
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"
    assert len(list((out / "A").glob("*.png"))) == 2 and len(list((out / "B").glob("*.png"))) == 6
