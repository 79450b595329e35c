"""Procedural portraits: determinism, known geometry, masks, and the dataset layout."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge_demo.runtime.alignment import template
from keras_asym.data.pipeline import make_dataset, scan
from keras_asym.data.procedural import render_drawing, render_photo, sample_face, write_dataset


def test_same_seed_same_faces_and_images():
    a = sample_face(np.random.default_rng(4))
    b = sample_face(np.random.default_rng(4))
    assert a == b
    np.testing.assert_array_equal(render_photo(a, 128)[0], render_photo(b, 128)[0])
    assert sample_face(np.random.default_rng(5)) != a


def test_points_follow_the_template_and_drawings_differ_by_style():
    face = sample_face(np.random.default_rng(0))
    photo, points = render_photo(face, 256)
    assert photo.shape == (256, 256, 3) and photo.dtype == np.uint8
    np.testing.assert_allclose(points[:2], template(256)[:2] + np.array(face.shift) * 256, atol=1e-6)
    drawings = [render_drawing(face, 256, s)[0] for s in (1, 2, 3)]
    ink = [float((d < 128).mean()) for d in drawings]
    assert ink[0] < ink[1] < ink[2]  # thin lines < hatching < filled hair and shadows
    for _k, eye in enumerate(points[:2]):
        y, x = int(round(eye[1])), int(round(eye[0]))
        assert drawings[0][y, x] < 128, "the pupil is drawn at the eye point"
    with pytest.raises(ValueError, match="style"):
        render_drawing(face, 64, 4)


def test_dataset_layout_trains_and_keeps_paired_test_drawings(tmp_path):
    summary = write_dataset(tmp_path / "ds", photos=6, drawings=6, test=2, size=64, seed=1)
    assert sum(summary["drawings_per_style"].values()) == 6
    info = scan(tmp_path / "ds")
    assert len(info["photos"]) == 6 and len(info["drawings"]) == 6 and not info["skipped"]
    batch = next(iter(make_dataset(tmp_path / "ds", image_size=64, load_size=64, batch_size=2)))
    assert batch["photo"].shape == (2, 64, 64, 3)
    eyes = cv2.imread(str(tmp_path / "ds" / "A_eyes" / "photo_00000.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(eyes)) == {0, 255}
    for style in (1, 2, 3):
        assert cv2.imread(str(tmp_path / "ds" / "test" / f"B_style{style}" / "test_00001.png"), cv2.IMREAD_UNCHANGED).shape == (64, 64)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["seed"] == 1 and len(manifest["test_faces"]) == 2


def test_cli(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_asym.generate",
            "--output",
            str(tmp_path / "d"),
            "--photos=2",
            "--drawings=3",
            "--test=1",
            "--size=64",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["photos"] == 2
    from keras_asym.data.pipeline import scan

    info = scan(tmp_path / "d")  # what it wrote is a dataset training reads, with the sizes asked for
    assert len(info["photos"]) == 2 and len(info["drawings"]) == 3 and not info["skipped"]
    from PIL import Image

    assert Image.open(info["photos"][0][0]).size == (64, 64)


def test_plain_photos_are_flat_colours_and_keep_the_same_face():
    from keras_asym.data.procedural import render_photo, sample_face

    face = sample_face(np.random.default_rng(3))
    plain, points = render_photo(face, 64, plain=True)
    textured, same_points = render_photo(face, 64)
    corner = plain[:8, :8].reshape(-1, 3)
    assert np.abs(corner.astype(int) - face.background).max() <= 1  # the background is its one colour
    assert textured[:8, :8].reshape(-1, 3).std(0).max() > 2  # texture and noise otherwise
    assert np.array_equal(points, same_points)
