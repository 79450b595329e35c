"""A ``.keras`` generator is checked before Keras builds it, and once after: refused in one line, never half-used."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from keras_asym.inference.keras_generator import load_generator


def _rewrite(source, target, config=None, weights=None):
    """``source`` with its config.json replaced by ``config`` (a dict) or its weights by ``weights`` (bytes)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "config.json" and config is not None:
                data = json.dumps(config).encode()
            if info.filename == "model.weights.h5" and weights is not None:
                data = weights
            new.writestr(info.filename, data)
    return target


def _config(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def test_a_keras_asym_generator_loads(generator_file):
    generator = load_generator(generator_file)
    assert generator({"photo": np.zeros((1, 16, 16, 3)), "style": np.eye(3)[:1]}).shape == (1, 16, 16, 1)


def test_a_config_declaring_two_gib_is_refused_before_it_is_read(tmp_path, generator_file):
    path = tmp_path / "big_config.keras"
    path.write_bytes(generator_file.read_bytes())
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02")  # the central directory's uncompressed size of the first entry
    while not raw[at + 46 : at + 46 + 11] == b"config.json":
        at = raw.index(b"PK\x01\x02", at + 4)
    raw[at + 24 : at + 28] = struct.pack("<I", 2 << 30)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="big_config.keras: config.json declares 2,147,483,648 bytes"):
        load_generator(path)


def test_a_config_declaring_more_parameters_than_its_weights_hold_is_refused_before_building(tmp_path, generator_file):
    config = _config(generator_file)
    config["config"]["ngf"] = 1500  # one block of 6000 channels: 648 million parameters
    path = _rewrite(generator_file, tmp_path / "wide.keras", config=config)
    with pytest.raises(ValueError, match="wide.keras: config.json declares at least 648,000,000 parameters"):
        load_generator(path)


def test_models_that_are_not_generators_or_cannot_draw_are_refused(tmp_path, generator_file):
    sequential = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    sequential.save(tmp_path / "sequential.keras")
    with pytest.raises(ValueError, match="sequential.keras: holds a None, not a keras-asym generator"):
        load_generator(tmp_path / "sequential.keras")
    config = _config(generator_file)
    config["config"]["input_channels"] = 4
    with pytest.raises(ValueError, match="four.keras: maps 4 channels"):
        load_generator(_rewrite(generator_file, tmp_path / "four.keras", config=config))
    config = _config(generator_file)
    config["config"]["ngf"] = "wide"
    with pytest.raises(ValueError, match="text.keras: config.json has a malformed setting"):
        load_generator(_rewrite(generator_file, tmp_path / "text.keras", config=config))


def test_weights_holding_nan_are_refused(tmp_path, generator_file):
    generator = keras.saving.load_model(generator_file)
    weights = generator.get_weights()
    weights[0][0, 0, 0, 0] = np.nan
    generator.set_weights(weights)
    generator.save(tmp_path / "nan.keras")
    with pytest.raises(ValueError, match="nan.keras: draws non-finite values"):
        load_generator(tmp_path / "nan.keras")


def test_draw_refuses_a_hostile_keras_file_with_exit_2(tmp_path, generator_file):
    config = _config(generator_file)
    config["config"]["ngf"] = 1500
    model = _rewrite(generator_file, tmp_path / "wide.keras", config=config)
    (tmp_path / "in").mkdir()
    args = ["keras_asym.draw", "--model", model, "--input", tmp_path / "in", "--output", tmp_path / "out", "--noalign"]
    result = subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "wide.keras: config.json declares at least" in result.stderr
    assert "Traceback" not in result.stderr


def test_deflated_weights_and_settings_json_cannot_build_are_refused_in_one_line(tmp_path, generator_file):
    """A deflated weights entry could pass a small file off as large weights; Keras stores them as they are."""
    with zipfile.ZipFile(generator_file) as old, zipfile.ZipFile(tmp_path / "deflated.keras", "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
    with pytest.raises(ValueError, match="deflated.keras: model.weights.h5 is compressed"):
        load_generator(tmp_path / "deflated.keras")
    for name, value in (("infinite", float("inf")), ("huge", 1e308)):
        config = _config(generator_file)
        config["config"]["ngf"] = value
        with pytest.raises(ValueError, match=f"{name}.keras: config.json (has a malformed setting|declares at least)"):
            load_generator(_rewrite(generator_file, tmp_path / f"{name}.keras", config=config))
    path = _rewrite(generator_file, tmp_path / "deep.keras")
    with zipfile.ZipFile(generator_file) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, "[" * 100_000 + "]" * 100_000 if info.filename == "config.json" else old.read(info))
    with pytest.raises(ValueError, match="deep.keras: config.json is not readable JSON"):
        load_generator(path)


def test_a_generator_saved_at_a_fixed_size_draws_at_it_by_default(tmp_path):
    from keras_asym.inference.drawer import Drawer
    from keras_asym.models.networks import StyleGenerator

    StyleGenerator(ngf=4, n_blocks=1, height=48, width=48).save(tmp_path / "fixed.keras")
    drawer = Drawer(tmp_path / "fixed.keras")
    assert drawer.native_size == (48, 48)
    with pytest.raises(ValueError, match="cannot draw 64x64 photos"):
        drawer.draw(np.zeros((1, 64, 64, 3), np.uint8), np.eye(3)[0])


def test_perceptual_networks_load_from_their_own_files_and_nothing_else_passes_for_them(tmp_path, generator_file):
    """train's --hed_weights/--lpips_weights: the registered class is checked before Keras builds the file."""
    from keras_asym.objective.hed import HED
    from keras_asym.objective.lpips import LPIPS
    from keras_asym.utils.keras_archive import load_checked

    hed = HED()
    hed(np.zeros((1, 32, 32, 3), np.float32))
    hed.set_weights([np.full(w.shape, 0.01 * k, np.float32) for k, w in enumerate(hed.get_weights())])
    path = tmp_path / "hed.keras"
    hed.save(path)
    loaded = load_checked(path, (keras.saving.get_registered_name(HED),), "a HED network")
    for a, b in zip(loaded.get_weights(), hed.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"generator.keras: holds a keras_asym>StyleGenerator, not a LPIPS network"):
        load_checked(generator_file, (keras.saving.get_registered_name(LPIPS),), "a LPIPS network")
