"""Face alignment against the official template and the authors' 5 points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_demo.runtime import alignment
from edge_demo.runtime.assets import ASSETS, AssetError, asset_path
from tests.conftest import ROOT, SHARED

DATA = SHARED / "data"
needs_data = pytest.mark.skipif(not (DATA / "aligned_photos").is_dir(), reason=f"real photos not found under {DATA}")


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 500, (5, 2))
    angle, scale, shift = 0.4, 1.7, np.array([30.0, -12.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = source @ rotation.T + shift
    matrix = alignment.similarity_matrix(source, target)
    np.testing.assert_allclose(matrix[:, :2], rotation, atol=1e-9)
    np.testing.assert_allclose(alignment.transform_points(matrix, source), target, atol=1e-8)
    np.testing.assert_allclose(alignment.transform_points(alignment.invert(matrix), target), source, atol=1e-8)


def test_template_is_the_official_one():
    t = alignment.template(512)
    # MATLAB (1-based) (180 - 240) / 560 * 512 + 256 = 201.14..., minus 1 for 0-based pixels.
    assert t[0, 0] == pytest.approx((180 - 240) / 560 * 512 + 256 - 1)
    assert t[3, 1] == pytest.approx((365.6 - 240) / 560 * 512 + 256 - 1)
    np.testing.assert_allclose(alignment.template(256), (t + 0.5) / 2 - 0.5)


def test_align_then_paste_back_restores_the_frame():
    rng = np.random.default_rng(1)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), (0, 0), 3)
    points = alignment.template(512)[:, :] * 0.5 + np.array([90.0, 40.0])
    aligned, matrix = alignment.align(frame, points, 512)
    restored = alignment.paste_back(np.zeros_like(frame), aligned, matrix)
    inside = cv2.warpAffine(np.ones((512, 512), np.uint8), alignment.invert(matrix), (400, 300)) > 0
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert inside.sum() > 10000
    assert np.abs(restored.astype(int) - frame.astype(int))[inside].mean() < 3.0


def _face_region(size=512, margin=40):
    hull = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(alignment.template(size).astype(np.int32)), 1)
    return cv2.dilate(hull, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)).astype(bool)


@needs_data
def test_reproduces_the_official_matlab_alignment():
    folder = DATA / "alignment_example"
    photo = cv2.imread(str(folder / "photo.jpg"))
    official = cv2.imread(str(folder / "official_aligned_512.png")).astype(np.float64)
    points = np.loadtxt(folder / "landmarks5.txt") - 1.0  # MATLAB 1-based -> 0-based
    aligned, _ = alignment.align(photo, points, 512)
    region = _face_region()
    mse = np.mean((aligned.astype(np.float64) - official)[region] ** 2)
    assert 10 * np.log10(255**2 / mse) >= 30.0


def test_asset_cache_checks_hashes(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ASYM_CACHE", str(tmp_path))
    with pytest.raises(AssetError, match="not in"):
        asset_path("face_landmark.tflite", download=False)
    (tmp_path / "mediapipe").mkdir()
    (tmp_path / "mediapipe" / "face_landmark.tflite").write_bytes(b"tampered")
    with pytest.raises(AssetError, match="not in"):
        asset_path("face_landmark.tflite", download=False)
    from edge_demo.runtime import assets

    with pytest.raises(AssetError, match="does not match the pinned"):
        assets._store("face_landmark.tflite", b"tampered", "test")
    assert set(ASSETS) == {"face_detection_short_range.tflite", "face_landmark.tflite", "selfie_segmentation.tflite"}


def test_the_wheel_fallback_takes_another_platforms_wheel_where_this_one_has_none(tmp_path, monkeypatch):
    """aarch64 Linux (a Raspberry Pi) has no mediapipe==0.10.21 wheel; the model files inside the x86-64 one are the same."""
    import subprocess
    import zipfile

    from edge_demo.runtime import assets

    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        if "--platform" not in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for mediapipe==0.10.21")
        folder = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(folder / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl", "w") as wheel:
            wheel.writestr(ASSETS["face_landmark.tflite"]["wheel_path"], b"landmark model")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(assets.subprocess, "run", fake_pip)
    assert assets._from_wheel(["face_landmark.tflite"]) == {"face_landmark.tflite": b"landmark model"}
    assert len(calls) == 2 and "manylinux_2_28_x86_64" in calls[1] and calls[1][-1] == assets.WHEEL_REQUIREMENT
    monkeypatch.setattr(assets.subprocess, "run", lambda cmd, **kwargs: subprocess.CompletedProcess(cmd, 1, "", "offline"))
    with pytest.raises(AssetError, match="this platform: offline; --platform manylinux_2_28_x86_64 .*: offline"):
        assets._from_wheel(["face_landmark.tflite"])


def test_a_missing_system_library_is_named_with_the_package_that_provides_it(monkeypatch):
    """MediaPipe's aarch64 wheel loads libEGL.so.1, which Raspberry Pi OS Lite does not install."""
    from edge_demo.runtime import faces, system_libraries
    from edge_demo.runtime.system_libraries import SystemLibraryError

    real_import = system_libraries.importlib.import_module

    def without_egl(name, *args, **kwargs):
        if name.startswith("mediapipe"):
            raise ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(system_libraries.importlib, "import_module", without_egl)
    faces._mediapipe.cache_clear()  # an earlier test in this process may have loaded it
    with pytest.raises(SystemLibraryError, match=r"MediaPipe needs libEGL.so.1.*sudo apt-get install libegl1"):
        faces.FaceLandmarker()
    unknown = system_libraries.explain("OpenCV", OSError("libfoo.so.3: cannot open shared object file: No such file or directory"))
    assert "libfoo.so.3" in str(unknown) and "apt-file search libfoo.so.3" in str(unknown)
    assert system_libraries.explain("OpenCV", ImportError("No module named 'cv2'")) is None


def test_the_camera_demo_names_a_missing_library_of_opencv_in_one_line(tmp_path):
    """On a minimal userland MediaPipe's opencv-contrib-python build fails to load libGL.so.1 at `import cv2`."""
    fake = tmp_path / "cv2"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise ImportError("libGL.so.1: cannot open shared object file: No such file or directory")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "edge_demo", "--model=m.tflite"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip()
        == "edge_demo: error: OpenCV needs libGL.so.1, which this system lacks: install it with `sudo apt-get install libgl1`."
    )


@pytest.fixture(scope="module")
def landmarker():
    from keras_asym.face.detector import FaceLandmarker

    try:
        asset_path("face_landmark.tflite", download=False)
        asset_path("face_detection_short_range.tflite", download=False)
    except AssetError as err:
        pytest.skip(f"MediaPipe assets not installed (make assets): {err}")
    with FaceLandmarker() as fl:
        yield fl


def _authors_points():
    for image in sorted((DATA / "aligned_photos" / "images").glob("*.png")):
        points = np.loadtxt(DATA / "aligned_photos" / "landmarks5" / f"{image.stem}.txt")
        yield image, points


@needs_data
def test_detected_points_match_the_authors_on_photos_the_point_model_was_not_fitted_on(landmarker, tmp_path):
    from benchmarks.common.heldout import photo_split

    held_out, fitted_on = photo_split(10, tmp_path)  # the split benchmarks/fit_five_points.py fits on
    held = {p.name for p in held_out.iterdir()}
    assert held.isdisjoint(p.name for p in fitted_on.iterdir())
    errors = {}
    for image, reference in _authors_points():
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        face = landmarker.largest(rgb, where=str(image))
        errors[image.name] = np.linalg.norm(face.points - reference, axis=1) / np.linalg.norm(reference[1] - reference[0])
    assert len(errors) == 29
    unseen = np.array([e for name, e in errors.items() if name in held])
    assert len(unseen) == 10
    assert unseen.mean() <= 0.035
    assert unseen.mean(axis=1).max() <= 0.06
    assert np.array(list(errors.values())).mean() <= 0.035


@needs_data
def test_realignment_of_randomly_warped_photos(landmarker):
    rng = np.random.default_rng(0)
    errors = []
    for image, reference in list(_authors_points())[::3]:
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        angle, scale = rng.uniform(-30, 30), rng.uniform(0.5, 2.0)
        canvas = int(512 * max(1.5, scale * 1.6))
        warp = cv2.getRotationMatrix2D((256, 256), angle, scale)
        warp[:, 2] += (canvas - 512) / 2 + rng.uniform(-0.1, 0.1, 2) * canvas
        warped = cv2.warpAffine(rgb, warp, (canvas, canvas), borderValue=(255, 255, 255))
        face = landmarker.largest(warped, where=str(image))
        _, matrix = alignment.align(warped, face.points, 512)
        back = alignment.transform_points(matrix, alignment.transform_points(warp, reference))
        expected = alignment.transform_points(alignment.similarity_matrix(reference, alignment.template()), reference)
        errors.append(np.linalg.norm(back - expected, axis=1) / np.linalg.norm(expected[1] - expected[0]))
    errors = np.array(errors)
    assert errors.mean() <= 0.04 and errors.mean(axis=1).max() <= 0.08


@needs_data
def test_detected_points_on_the_alignment_example(landmarker):
    folder = DATA / "alignment_example"
    rgb = cv2.cvtColor(cv2.imread(str(folder / "photo.jpg")), cv2.COLOR_BGR2RGB)
    given = np.loadtxt(folder / "landmarks5.txt") - 1.0
    face = landmarker.largest(rgb)
    error = np.linalg.norm(face.points - given, axis=1).mean() / np.linalg.norm(given[1] - given[0])
    assert error <= 0.04


def test_no_face_is_a_clear_error(landmarker):
    from keras_asym.face.detector import NoFaceError

    with pytest.raises(NoFaceError, match="blank.png: no face"):
        landmarker.largest(np.full((200, 200, 3), 200, np.uint8), where="blank.png")


def test_part_masks_match_the_official_boxes(landmarker, official):
    from keras_asym.face.masks import part_masks

    keys = {"eyes": "maske", "nose": "mask", "lips": "maskl"}
    # Measured 0.78/0.84/0.82 (eyes/nose/lips) on the photo and 0.71/0.66/0.78 on the drawing (5 px margin).
    for side, image_key, margin, bound in (("A", "real_A", 0, 0.75), ("B", "real_B", 5, 0.65)):
        image = ((official.nhwc(image_key)[0] + 1) * 127.5).astype(np.uint8)
        rgb = np.ascontiguousarray(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image)
        masks = part_masks(landmarker.largest(rgb).points, (512, 512), margin)
        for part, key in keys.items():
            ours, theirs = masks[part] > 0, official.nhwc(f"{side}_{key}")[0, :, :, 0] > 0
            iou = np.logical_and(ours, theirs).sum() / np.logical_or(ours, theirs).sum()
            assert iou >= bound, (side, part, iou)
    with pytest.raises(ValueError, match="degenerate"):
        part_masks(np.zeros((5, 2)), (64, 64))


@needs_data
def test_background_whitening_keeps_the_person_the_authors_masked():
    import cv2

    from keras_asym.face.segmentation import BackgroundWhitener
    from keras_asym.utils.imageio import list_images, read_rgb

    folder = SHARED / "data" / "aligned_photos"
    whitener = BackgroundWhitener()
    ious = []
    for path in list_images(folder / "images"):
        ours = whitener.person_probability(read_rgb(path)) > 0.5
        theirs = cv2.imread(str(folder / "background_masks" / path.name), cv2.IMREAD_GRAYSCALE) > 127
        ious.append((ours & theirs).sum() / (ours | theirs).sum())
    # Measured: mean 0.950 over the 29 masks, the worst photo 0.80.
    assert len(ious) == 29 and np.mean(ious) >= 0.94 and min(ious) >= 0.75, ious


@needs_data
def test_landmarks_and_align_clis(tmp_path, landmarker):
    import json
    import shutil
    import subprocess
    import sys

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(DATA / "raw_photos" / "woman-23_cropped.png", inputs / "w.png")
    (inputs / "bad.jpg").write_text("nope")
    run = lambda *a: subprocess.run([sys.executable, "-m", *a], capture_output=True, text=True, timeout=300)  # noqa: E731
    result = run("keras_asym.landmarks", "--input", str(inputs), "--output", str(tmp_path / "p.json"))
    assert result.returncode == 1
    points = json.loads((tmp_path / "p.json").read_text())
    assert points["images"]["bad.jpg"]["faces"] is None and "not a readable image" in points["images"]["bad.jpg"]["error"]
    face = points["images"]["w.png"]["faces"][0]
    expected = landmarker.largest(cv2.cvtColor(cv2.imread(str(inputs / "w.png")), cv2.COLOR_BGR2RGB)).points
    np.testing.assert_allclose(face["points"], expected, atol=0.05)
    result = run("keras_asym.align", "--input", str(inputs), "--output", str(tmp_path / "out"), "--size", "256")
    assert result.returncode == 1 and "bad.jpg" in result.stderr
    assert cv2.imread(str(tmp_path / "out" / "w.png")).shape == (256, 256, 3)
    transforms = json.loads((tmp_path / "out" / "transforms.json").read_text())
    record = transforms["w.png"]
    np.testing.assert_allclose(
        alignment.transform_points(np.array(record["matrix"]), record["points_source"]), record["points_aligned"], atol=0.02
    )
    np.testing.assert_allclose(np.array(record["points_aligned"])[:2], alignment.template(256)[:2], atol=256 * 0.04)


def test_missing_landmarker_task_is_a_clear_error(tmp_path):
    from keras_asym.face.detector import FaceLandmarker

    with pytest.raises(FileNotFoundError, match="face_landmarker.task"):
        FaceLandmarker(task_path=str(tmp_path / "face_landmarker.task"))
