"""The `draw` command: styles, alignment, bad inputs, model formats, atomic outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

from edge_demo.runtime.styles import parse as parse_style
from edge_demo.runtime.styles import suffix as style_suffix
from keras_asym.inference.drawer import Drawer
from keras_asym.models.networks import StyleGenerator
from keras_asym.utils.imageio import ImageReadError, read_rgb
from tests.browser import render
from tests.conftest import SHARED
from tests.test_layers_of_code import imported_modules

RAW = SHARED / "data" / "raw_photos"


def _draw(*args, python=()):
    return subprocess.run([sys.executable, *python, "-m", "keras_asym.draw", *map(str, args)], capture_output=True, text=True, timeout=600)


def test_the_style_vector_has_one_home():
    from edge_demo.runtime import styles

    assert styles.STYLE_NAMES == ("style1", "style2", "style3") and styles.STYLE_COUNT == 3
    np.testing.assert_array_equal(styles.one_hot(3), [0, 0, 1])
    np.testing.assert_array_equal(styles.cycling(4), [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    assert styles.which(np.float32([0, 1, 0])) == 2 and styles.which(np.float32([0.5, 0.5, 0])) is None
    with pytest.raises(ValueError, match="style must be 1..3"):
        styles.one_hot(0)
    with pytest.raises(ValueError):
        styles.ONE_HOTS[0, 0] = 5.0  # shared: read-only


def test_parse_style_and_names():
    np.testing.assert_allclose(parse_style("0.2,0.5,0.3"), [0.2, 0.5, 0.3])
    np.testing.assert_allclose(parse_style("1,1,2"), [0.25, 0.25, 0.5])
    np.testing.assert_array_equal(parse_style("2"), [0, 1, 0])
    np.testing.assert_allclose(parse_style("1e308,1e308,1e308"), [1 / 3] * 3)  # their sum overflows; the mix does not
    np.testing.assert_allclose(parse_style("1e-320,0,0"), [1, 0, 0])
    for bad, message in (("0,0,0", "sum to 0"), ("1,2", "expected 3"), ("-1,1,1", "non-negative"), ("a,b,c", "comma")):
        with pytest.raises(ValueError, match=message):
            parse_style(bad)
    assert style_suffix(np.float32([0, 0, 1])) == "style3"
    assert style_suffix(np.float32([0.2, 0.5, 0.3])) == "mix-0.20-0.50-0.30"


def test_read_rgb_handles_modes_orientation_and_bombs(tmp_path):
    rgba = np.zeros((8, 6, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = read_rgb(tmp_path / "a.png")
    assert out.shape == (8, 6, 3) and tuple(out[0, 0]) == (255, 0, 0) and tuple(out[7, 0]) == (255, 255, 255)
    Image.fromarray(np.full((5, 7), 65535, np.uint16)).save(tmp_path / "g16.png")
    assert read_rgb(tmp_path / "g16.png").max() == 255
    rotated = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    rotated.save(tmp_path / "r.jpg", exif=exif)
    assert read_rgb(tmp_path / "r.jpg").shape == (20, 10, 3)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "b.webp")
    assert read_rgb(tmp_path / "b.webp").shape == (10, 10, 3)
    with pytest.raises(ImageReadError, match="decompression bomb"):
        read_rgb(tmp_path / "a.png", max_pixels=40)
    (tmp_path / "t.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with pytest.raises(ImageReadError, match="t.png: not a readable image"):
        read_rgb(tmp_path / "t.png")


def test_noalign_non_square_mix_style_and_gallery(tmp_path, generator_file, browser):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 103, 3), dtype=np.uint8)).save(inputs / "wide.png")
    out = tmp_path / "out"
    result = _draw("--model", generator_file, "--input", inputs, "--output", out, "--noalign", "--style", "1,2,1")
    assert result.returncode == 0, result.stderr[-2000:]
    drawing = cv2.imread(str(out / "wide_mix-0.25-0.50-0.25.png"), cv2.IMREAD_UNCHANGED)
    assert drawing.shape == (68, 100)
    assert "wide_mix-0.25-0.50-0.25.png" in (out / "index.html").read_text()
    assert not list(out.glob("*.partial"))
    loaded, total, spread = render(out / "index.html", tmp_path / "gallery.png")  # in a real browser
    assert (loaded, total) == (2, 2) and spread > 10


def test_bad_arguments_exit_2(tmp_path, generator_file):
    result = _draw("--model", generator_file, "--input", tmp_path, "--output", tmp_path / "o", "--style", "0,0,0")
    assert result.returncode == 2 and "sum to 0" in result.stderr
    result = _draw("--model", tmp_path / "nope.keras", "--input", tmp_path, "--output", tmp_path / "o")
    assert result.returncode == 2 and "nope.keras" in result.stderr


def test_an_input_none_of_whose_images_can_be_drawn_is_refused_with_exit_2(tmp_path, generator_file):
    bomb = tmp_path / "bomb.png"  # a PNG header declaring 60000 x 60000 pixels
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xea`\x00\x00\xea`\x08\x02\x00\x00\x00\x00\x00\x00\x00")
    result = _draw("--model", generator_file, "--input", bomb, "--output", tmp_path / "o", "--noalign")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{bomb}: not a readable image" in result.stderr and "drew 0 of 1 images" in result.stdout


@pytest.mark.skipif(not RAW.is_dir(), reason=f"raw photos not found under {RAW}")
def test_aligned_folder_skips_bad_files_and_reports(tmp_path, generator_file):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(RAW / "woman-23_cropped.png", inputs / "face.png")
    (inputs / "broken.jpg").write_text("not an image")
    Image.fromarray(np.full((120, 120, 3), 200, np.uint8)).save(inputs / "wall.png")
    out = tmp_path / "out"
    result = _draw("--model", generator_file.parent, "--input", inputs, "--output", out, "--paste_back")
    assert result.returncode == 1
    assert "broken.jpg: not a readable image" in result.stderr and "wall.png: no face found" in result.stderr
    assert "drew 1 of 3 images in 3 style(s)" in result.stdout
    for k in (1, 2, 3):
        pasted = cv2.imread(str(out / f"face_style{k}.png"))
        assert pasted.shape == cv2.imread(str(inputs / "face.png")).shape
    assert cv2.imread(str(out / "face_input.png")).shape == (512, 512, 3)


def _one_photo(folder, name: str, shape: tuple[int, int], seed: int):
    """``folder`` holding one random RGB photo ``name`` of ``shape`` (height, width)."""
    folder.mkdir()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*shape, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _tflite_twin(generator_file, path, size: int):
    """The generator's weights as a float TFLite model fixed at ``size``."""
    import tensorflow as tf

    fixed = StyleGenerator(ngf=4, n_blocks=1, height=size, width=size)
    fixed.set_weights(keras.saving.load_model(generator_file).get_weights())
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(fixed).convert())
    return path


def test_keras_and_tflite_models_draw_the_same(tmp_path, generator_file):
    tflite = _tflite_twin(generator_file, tmp_path / "generator.tflite", 64)
    photos = np.random.default_rng(2).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    style = parse_style("0.2,0.5,0.3")
    from_keras = Drawer(generator_file, batch_size=2).draw(photos, style)
    from_tflite = Drawer(tflite).draw(photos, style)
    assert from_keras.shape == (3, 64, 64)
    assert np.abs(from_keras.astype(int) - from_tflite.astype(int)).max() <= 1


def test_a_tflite_export_draws_at_its_own_size_by_default_and_other_sizes_are_resampled(tmp_path, generator_file):
    tflite = _tflite_twin(generator_file, tmp_path / "generator.tflite", 32)
    inputs = _one_photo(tmp_path / "in", "face.png", (48, 40), seed=3)
    result = _draw("--model", tflite, "--input", inputs, "--output", tmp_path / "own", "--noalign", python=("-X", "importtime"))
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = imported_modules(result.stderr)
    assert "ai_edge_litert" in loaded and not loaded & {"tensorflow", "keras"}  # a TFLite file is drawn without TensorFlow
    assert cv2.imread(str(tmp_path / "own" / "face_style1.png"), cv2.IMREAD_UNCHANGED).shape == (32, 24)
    result = _draw("--model", tflite, "--input", inputs, "--output", tmp_path / "big", "--noalign", "--size", "64")
    assert result.returncode == 0, result.stderr[-2000:]
    assert cv2.imread(str(tmp_path / "big" / "face_style1.png"), cv2.IMREAD_UNCHANGED).shape == (48, 40)
    # the same resampling through the library: a 64x64 batch drawn by the 32x32 export
    photos = np.random.default_rng(4).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    assert Drawer(tflite).draw(photos, parse_style("1")).shape == (2, 64, 64)


def test_images_too_small_to_draw_are_skipped_and_odd_names_are_kept(tmp_path, generator_file):
    """A 5x5 image, a 1000x6 strip, a newline and a byte that is not UTF-8 in names: each drawn or skipped with one line."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(5)
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(inputs / "ti\nny.png")
    Image.fromarray(np.zeros((6, 1000, 3), np.uint8)).save(inputs / "strip.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(inputs / "new\nline.png")
    (inputs / os.fsdecode(b"caf\xe9.png")).write_bytes((inputs / "new\nline.png").read_bytes())
    out = tmp_path / "out"
    result = _draw("--model", generator_file, "--input", inputs, "--output", out, "--noalign")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "drew 2 of 4 images" in result.stdout
    # the newline in a skipped file's name is shown escaped: it cannot start a forged line
    assert "ti\\nny.png: 5x5 is drawn at 4x4; the generator needs at least 16 px a side" in result.stderr
    assert not any(line.startswith("ny.png") for line in result.stderr.splitlines())
    assert "strip.png: 1000x6" in result.stderr
    gallery = (out / "index.html").read_bytes().decode("utf-8")
    assert 'src="caf%E9_style1.png"' in gallery and 'src="new%0Aline_input.png"' in gallery
    assert (out / os.fsdecode(b"caf\xe9_style1.png")).is_file()


def test_draw_killed_mid_folder_leaves_only_whole_files_and_a_rerun_completes(tmp_path):
    import os
    import signal
    import time

    keras.utils.set_random_seed(1)
    model = tmp_path / "g.keras"
    StyleGenerator(ngf=16, n_blocks=3).save(model)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for k in range(40):
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(inputs / f"p{k:02d}.png")
    args = [
        sys.executable,
        "-m",
        "keras_asym.draw",
        "--model",
        str(model),
        "--input",
        str(inputs),
        "--output",
        str(out),
        "--noalign",
        "--size",
        "256",
        "--batch_size",
        "1",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and len(list(out.glob("p*_style3.png"))) < 4:
        time.sleep(0.005)
    assert process.poll() is None, "draw finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    assert 4 <= len([p for p in finished if p.name.endswith("_style3.png")]) < 40
    for path in finished:  # every file under a final name is whole
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None, path
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not list(out.glob(".*")), "temporary files left behind"
    for k in range(40):
        for suffix in ("input", "style1", "style2", "style3"):
            assert cv2.imread(str(out / f"p{k:02d}_{suffix}.png")) is not None
    assert (out / "index.html").is_file()


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    from keras_asym.utils.imageio import write_bytes_atomic

    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.json", b"{}")
        (tmp_path / "b.json").write_bytes(b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == (tmp_path / "b.json").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temporary file left behind


def test_the_default_size_is_the_one_the_model_was_trained_at(tmp_path, generator_file):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(generator_file, folder / "generator.keras")
    assert Drawer(folder).trained_size is None  # nothing says: draw uses 512
    (folder / "config.json").write_text(json.dumps({"image_size": 64}))  # what import_official and train write
    assert Drawer(folder).trained_size == 64
    inputs = _one_photo(tmp_path / "in", "tall.png", (200, 100), seed=6)
    result = _draw("--model", folder, "--input", inputs, "--output", tmp_path / "out", "--noalign")
    assert result.returncode == 0, result.stderr[-2000:]
    assert cv2.imread(str(tmp_path / "out" / "tall_style1.png"), cv2.IMREAD_UNCHANGED).shape == (64, 32)


def test_the_pixel_contract_round_trips_every_level_and_scales_tensors_in_a_graph():
    import tensorflow as tf

    from edge_demo.runtime.pixels import to_model, to_pixels

    levels = np.arange(256, dtype=np.uint8)
    assert to_model(levels).dtype == np.float32 and to_model(levels)[[0, 255]].tolist() == [-1.0, 1.0]
    np.testing.assert_array_equal(to_pixels(to_model(levels)), levels)
    np.testing.assert_array_equal(to_pixels([-2.0, 1.5]), [0, 255])  # clipped
    graph = tf.function(lambda x: to_model(tf.cast(x, tf.float32)))
    np.testing.assert_allclose(graph(tf.constant(levels)).numpy(), to_model(levels), atol=1e-6)  # TF may use the reciprocal
