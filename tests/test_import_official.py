"""`import_official`: official .pth folders become .keras models that reproduce the official outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_asym.convert.checkpoints import import_official

SMALL = ["--ngf", "8", "--ndf", "8", "--n_blocks", "3"]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "keras_asym.import_official", *args], capture_output=True, text=True, timeout=600)


def test_cli_imports_every_network_and_reproduces_fake_b(tmp_path, official):
    out = tmp_path / "imported"
    result = _run("--checkpoint_dir", str(official.root / "weights"), "--output", str(out), *SMALL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "generator" in result.stdout and "lips_discriminator" in result.stdout
    names = {"generator", "photo_generator", "drawing_discriminator", "photo_discriminator"}
    names |= {f"{p}_discriminator" for p in ("nose", "eyes", "lips")}
    assert {p.stem for p in out.glob("*.keras")} == names
    config = json.loads((out / "config.json").read_text())
    assert config["ngf"] == 8 and config["sources"]["generator"].endswith("latest_net_G_A.pth")
    generator = keras.saving.load_model(out / "generator.keras")
    batch = official.batch()
    fake = np.asarray(generator({"photo": batch["photo"], "style": batch["style"]}))
    assert np.max(np.abs(fake - official.nhwc("fake_B"))) <= 2e-4
    photo_generator = keras.saving.load_model(out / "photo_generator.keras")
    assert np.max(np.abs(np.asarray(photo_generator(official.nhwc("real_B"))) - official.nhwc("fake_A"))) <= 2e-4


def test_legacy_format_generator_imports_identically(tmp_path, official):
    shutil.copy(official.root / "weights" / "latest_net_G_A.legacy.pth", tmp_path / "latest_net_G_A.pth")
    models, sources = import_official(tmp_path, ngf=8, ndf=8, n_blocks=3)
    assert set(models) == {"generator"}
    batch = official.batch()
    fake = np.asarray(models["generator"]({"photo": batch["photo"], "style": batch["style"]}))
    assert np.max(np.abs(fake - official.nhwc("fake_B"))) <= 2e-4


def test_wrong_architecture_and_missing_generator_are_clear_errors(tmp_path, official):
    result = _run("--checkpoint_dir", str(official.root / "weights"), "--output", str(tmp_path / "o"), "--ngf", "16", "--n_blocks", "3")
    assert result.returncode == 2
    assert "model0.1.weight" in result.stderr and "expects" in result.stderr
    assert not (tmp_path / "o").exists()
    result = _run("--checkpoint_dir", str(tmp_path), "--output", str(tmp_path / "o"))
    assert result.returncode == 2 and "latest_net_G_A.pth" in result.stderr and "required" in result.stderr


def test_hostile_checkpoint_folder_is_refused(tmp_path):
    from tests.test_torch_pickle import _hostile_pickle, _zip_checkpoint

    marker = tmp_path / "pwned"
    _zip_checkpoint(tmp_path / "latest_net_G_A.pth", _hostile_pickle("os", "system", f"touch {marker}"))
    result = _run("--checkpoint_dir", str(tmp_path), "--output", str(tmp_path / "o"))
    assert result.returncode == 2 and "refusing to load global 'os.system'" in result.stderr
    assert not marker.exists()


def test_lpips_from_published_heads_and_torchvision_or_keras_trunk(tmp_path):
    """torchvision-layout AlexNet and LPIPS head files written here: the real ones cannot be fetched in CI."""
    from keras_asym.convert.checkpoints import load_lpips_files
    from keras_asym.objective.lpips import LPIPS
    from tests.torch_writer import write_state_dict_zip

    rng = np.random.default_rng(0)
    reference = LPIPS()
    reference.build((None, None, None, 3))
    trunk, heads = {}, {}
    for k, conv in zip((0, 3, 6, 8, 10), reference.convs):
        kh, kw, cin, cout = conv.kernel.shape
        trunk[f"features.{k}.weight"] = rng.standard_normal((cout, cin, kh, kw)).astype(np.float32) * 0.05
        trunk[f"features.{k}.bias"] = rng.standard_normal(cout).astype(np.float32) * 0.01
    trunk["classifier.1.weight"] = rng.standard_normal((10, 9216)).astype(np.float32)
    for k, lin in enumerate(reference.lins):
        heads[f"lin{k}.model.1.weight"] = np.abs(rng.standard_normal((1, lin.kernel.shape[2], 1, 1))).astype(np.float32)
    write_state_dict_zip(tmp_path / "alexnet-owt.pth", trunk)
    write_state_dict_zip(tmp_path / "alex.pth", heads)
    model = load_lpips_files(tmp_path / "alex.pth", tmp_path / "alexnet-owt.pth")
    np.testing.assert_array_equal(model.get_layer("alex_conv2").kernel.numpy(), trunk["features.3.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model.get_layer("lin4").kernel.numpy()[0, 0, :, 0], heads["lin4.model.1.weight"][0, :, 0, 0])
    a, b = rng.uniform(-1, 1, (2, 1, 64, 64, 3)).astype(np.float32)
    distance = float(model([a, b])[0])
    assert distance > 0 and float(model([a, a])[0]) == 0.0

    model.save_weights(tmp_path / "lpips.weights.h5")
    again = load_lpips_files(tmp_path / "alex.pth", tmp_path / "lpips.weights.h5")
    assert float(again([a, b])[0]) == pytest.approx(distance, rel=1e-6)


def test_an_oversized_checkpoint_is_one_line_and_exit_2(tmp_path):
    from tests.test_torch_pickle import _tensor_pickle, _zip_checkpoint

    _zip_checkpoint(tmp_path / "latest_net_G_A.pth", _tensor_pickle(1, (1 << 31,), (0,)), {"0": b"\0" * 4})
    result = _run("--checkpoint_dir", str(tmp_path), "--output", str(tmp_path / "o"), "--max_checkpoint_mb=64")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("import_official: error:")]
    assert len(errors) == 1 and "latest_net_G_A.pth: tensor 'w' needs 8,589,934,592 bytes" in errors[0]
    assert not (tmp_path / "o").exists()
