"""The camera demo: headless run on a rendered clip, capture semantics, camera errors, tracking filter."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import cv2
import keras
import numpy as np
import pytest

from edge_demo import camera
from edge_demo.app import Compositor, model_template
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.tracker import OneEuroFilter
from keras_asym.data.clip import write_clip
from keras_asym.data.procedural import render_photo, sample_face

SIZE = 64


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    from export import exporter
    from keras_asym.models.networks import StyleGenerator

    root = tmp_path_factory.mktemp("edge")
    keras.utils.set_random_seed(0)
    StyleGenerator(ngf=8, n_blocks=2).save(root / "g.keras")
    exporter.export_generator(  # one range quantile and no variance correction: any int8 file serves the demo
        root / "g.keras", root, size=(SIZE, SIZE), variants=("int8",), calibration_count=4, per_op_report=False,
        range_quantile=0.9999, correct_variance_bias=False, log=lambda *a: None,
    )  # fmt: skip
    return root / "drawing_int8.tflite"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    rng = np.random.default_rng(7)
    faces = [render_photo(sample_face(rng), 256)[0] for _ in range(2)]
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.avi", faces, frames=48, frames_per_face=24)


def run_demo(*args):
    return subprocess.run([sys.executable, "-m", "edge_demo", *args], capture_output=True, text=True, timeout=300)


def test_headless_run_draws_faces_and_writes_stats(int8_model, clip, tmp_path):
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    result = run_demo(
        "--model", str(int8_model), "--source", str(clip), "--headless", "--output", str(out), "--stats", str(stats), "--style", "2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(stats.read_text())
    assert summary["frames"] == 48 and summary["dropped_frames"] == 0
    assert summary["faces_found"] >= 44
    assert summary["detector_runs"] < summary["frames"] / 2  # tracking between detections
    assert summary["tensorflow_loaded"] is False
    for stage in ("capture", "detect", "align", "infer", "composite"):
        assert 0 < summary["stages_ms"][stage]["p50"] <= summary["stages_ms"][stage]["p99"]
    video = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 48
    source = cv2.VideoCapture(str(clip))
    _, first = source.read()
    # a gray drawing was pasted over part of the frame (the face), and the rest is the camera's picture
    changed = np.abs(frames[0].astype(int) - first.astype(int)).max(-1) > 40
    assert 0.02 < changed.mean() < 0.8
    spread = lambda image: image.astype(int).max(-1) - image.astype(int).min(-1)  # noqa: E731  (0 for gray)
    assert np.median(spread(frames[0])[changed]) <= 6  # gray where it changed (3 measured; the photo there: 13)
    assert np.abs(frames[0].astype(int) - first.astype(int))[~changed].mean() < 6


def test_missing_and_unreadable_sources_fail_cleanly(int8_model, tmp_path):
    result = run_demo("--model", str(int8_model), "--source", str(tmp_path / "nope.mp4"), "--headless")
    assert result.returncode == 2 and "nope.mp4: no such video file" in result.stderr and "Traceback" not in result.stderr
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 100)
    result = run_demo("--model", str(int8_model), "--source", str(junk), "--headless")
    assert result.returncode == 2 and "junk.mp4: cannot open" in result.stderr and "Traceback" not in result.stderr
    result = run_demo("--model", str(tmp_path / "missing.tflite"), "--source", str(junk), "--headless")
    assert result.returncode == 2 and "missing.tflite" in result.stderr


class FlakyCapture:
    """A camera that delivers ``good`` frames, then nothing; it can never be reopened."""

    opened = 0

    def __init__(self, target, good=5):
        FlakyCapture.opened += 1
        if FlakyCapture.opened > 1:
            self._open = False
            return
        self._open, self._left = True, good

    def isOpened(self):  # noqa: N802
        return self._open

    def read(self):
        if self._left <= 0:
            return False, None
        self._left -= 1
        time.sleep(0.01)
        return True, np.zeros((48, 64, 3), np.uint8)

    def set(self, *args):
        return True

    def get(self, prop):
        return 30.0

    def release(self):
        pass


def test_lost_camera_is_retried_then_reported(monkeypatch, caplog):
    FlakyCapture.opened = 0
    monkeypatch.setattr(camera.cv2, "VideoCapture", FlakyCapture)
    caplog.set_level(logging.WARNING, logger="edge_demo")
    source = camera.FrameSource("0", reopen_timeout=1.0)
    frames = 0
    with pytest.raises(camera.SourceError, match="lost and not back"):
        while True:
            if source.read(timeout=5) is not None:
                frames += 1
    source.close()
    assert 1 <= frames <= 5
    assert FlakyCapture.opened > 2  # retried with back-off
    assert any("reopening" in r.message for r in caplog.records)


class DamagedFile:
    """A 15-frame video file whose frames in ``bad`` cannot be read (what OpenCV does with a damaged stretch)."""

    bad: set = set()

    def __init__(self, target):
        self._next = 0

    def isOpened(self):  # noqa: N802
        return True

    def read(self):
        index, self._next = self._next, self._next + 1
        if index >= 15 or index in self.bad:
            return False, None
        return True, np.full((48, 64, 3), index, np.uint8)

    def get(self, prop):
        return 15.0 if prop == cv2.CAP_PROP_FRAME_COUNT else 10.0

    def release(self):
        pass


def test_a_damaged_file_is_read_past_its_damage_or_reported_where_it_stopped(monkeypatch, tmp_path):
    (tmp_path / "clip.avi").write_bytes(b"x")
    monkeypatch.setattr(camera.cv2, "VideoCapture", DamagedFile)
    DamagedFile.bad = {2, 3, 4}
    with camera.FrameSource(str(tmp_path / "clip.avi")) as source:
        values = []
        while (frame := source.read()) is not None:
            values.append(int(frame.image[0, 0, 0]))
    assert values == [0, 1, *range(5, 15)] and source.damaged == 3
    DamagedFile.bad = {13, 14}  # within the count's slack: the file has ended, it is not damaged
    with camera.FrameSource(str(tmp_path / "clip.avi")) as source:
        values = []
        while (frame := source.read()) is not None:
            values.append(int(frame.image[0, 0, 0]))
    assert values == list(range(13)) and source.damaged == 0
    DamagedFile.bad = set(range(2, 15))  # nothing readable after frame 2
    with camera.FrameSource(str(tmp_path / "clip.avi")) as source:
        assert source.read() is not None and source.read() is not None
        with pytest.raises(camera.SourceError, match="clip.avi: unreadable after frame 2 of the 15 it declares"):
            source.read()


def test_live_sources_keep_only_the_newest_frame(clip):
    with camera.FrameSource(str(clip), realtime=True) as source:
        first = source.read()
        time.sleep(0.5)  # a slow consumer
        second = source.read()
    assert second.index - first.index > 3
    assert source.dropped >= second.index - first.index - 1


def test_file_sources_deliver_every_frame(clip):
    with camera.FrameSource(str(clip)) as source:
        indices = []
        while (frame := source.read()) is not None:
            indices.append(frame.index)
            time.sleep(0.002)
    assert indices == list(range(48)) and source.dropped == 0


def test_one_euro_filter_steadies_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.02)
    noisy = 100 + rng.normal(0, 1.0, 200)
    smooth = np.array([f(np.array([v]), t / 30)[0] for t, v in enumerate(noisy)])
    assert np.std(np.diff(smooth[50:])) < 0.3 * np.std(np.diff(noisy[50:]))
    for t in range(200, 260):
        value = f(np.array([200.0]), t / 30)[0]
    assert abs(value - 200) < 1.0


def test_headless_run_on_the_gpu_accelerator_reports_it(int8_model, clip, tmp_path):
    """A functional run of the whole demo on the GPU kernels (SwiftShader in CI: no speed figure)."""
    from edge_demo.runtime import gpu

    try:
        gpu.vulkan_device()
    except gpu.GpuUnavailable as err:
        pytest.skip(f"no Vulkan device for LiteRT's GPU accelerator: {err}")
    stats = tmp_path / "stats.json"
    result = run_demo("--model", str(int8_model), "--source", str(clip), "--headless", "--stats", str(stats), "--delegate", "gpu")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(stats.read_text())
    assert summary["delegate"] == "gpu" and summary["fully_accelerated"] is True and summary["accelerator"] != "CPU"
    assert summary["frames"] == 48 and summary["faces_found"] >= 44 and summary["tensorflow_loaded"] is False


def test_paste_compositor_replaces_only_the_face_square():
    frame = np.full((120, 160, 3), 40, np.uint8)
    matrix = np.array([[1.0, 0, -30], [0, 1.0, -20]])  # the aligned square is frame[20:84, 30:94]
    out = Compositor("paste", (SIZE, SIZE)).compose(frame.copy(), np.full((SIZE, SIZE), 250, np.uint8), matrix)
    assert (out[25:80, 35:90] == 250).all()
    assert (out[:15] == 40).all() and (out[:, 100:] == 40).all()
    side = Compositor("side", (SIZE, SIZE)).compose(frame.copy(), np.full((SIZE, SIZE), 250, np.uint8), matrix)
    assert side.shape == (120, 280, 3) and (side[:, 160:] == 250).all()


def test_gpu_delegate_runs_on_the_gpu_accelerator_or_falls_back_with_one_line(int8_model, caplog):
    from edge_demo.runtime import gpu

    caplog.set_level(logging.INFO, logger="edge_demo")
    generator = TFLiteGenerator(int8_model, delegate="gpu")
    try:
        gpu.vulkan_device()
        has_device = True
    except gpu.GpuUnavailable:
        has_device = False
    if has_device:
        assert generator.delegate == "gpu" and generator.fully_accelerated and generator.accelerator != "CPU"
        reference = TFLiteGenerator(int8_model, delegate="xnnpack")
        rgb = np.random.default_rng(0).integers(0, 255, (generator.height, generator.width, 3), dtype=np.uint8)
        for k in (0, 2, 0):  # style changes are written once; frames reuse the buffers
            style = np.eye(3, dtype=np.float32)[k]
            assert np.abs(generator.draw(rgb, style).astype(int) - reference.draw(rgb, style).astype(int)).mean() < 8
    else:
        assert generator.delegate == "xnnpack" and generator.fully_accelerated is None
        assert sum("GPU accelerator unavailable" in r.message for r in caplog.records) == 1
    assert generator.metadata["variant"] == "int8"
    auto = TFLiteGenerator(int8_model, delegate="auto")  # never a software GPU unless asked for
    assert auto.delegate == "xnnpack" or "Software" not in auto.accelerator


def test_template_for_non_square_models_is_centred():
    square = model_template(64, 64)
    wide = model_template(64, 96)
    np.testing.assert_allclose(wide - square, np.tile([16.0, 0.0], (5, 1)))
