"""Mobile generator and distillation: cost, export-friendliness, learning, the CLI and resume."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_asym.distillation import DistillationModel
from keras_asym.metrics import conv_gflops
from keras_asym.mobile import MobileStyleGenerator
from keras_asym.networks import StyleGenerator


def test_mobile_generator_is_a_drop_in_generator_at_a_fraction_of_the_cost(tmp_path):
    student = MobileStyleGenerator()
    out = student({"photo": np.zeros((2, 64, 96, 3), np.float32), "style": np.eye(3, dtype=np.float32)[:2]})
    assert out.shape == (2, 64, 96, 1) and float(np.abs(out).max()) <= 1.0
    assert conv_gflops(student, 256, 256) < conv_gflops(StyleGenerator(), 256, 256) / 50
    assert conv_gflops(MobileStyleGenerator(alpha=0.5), 256, 256) < conv_gflops(student, 256, 256) / 2
    student.save(tmp_path / "s.keras")
    again = keras.saving.load_model(tmp_path / "s.keras")
    x = {"photo": np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32), "style": np.eye(3, dtype=np.float32)[1:2]}
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(student(x)), atol=1e-6)
    with pytest.raises(ValueError, match="multiples of 8"):
        MobileStyleGenerator(height=60, width=64)


def test_mobile_generator_exports_gpu_compatible_and_int8(tmp_path):
    from export import exporter

    keras.utils.set_random_seed(0)
    MobileStyleGenerator(alpha=0.5, n_blocks=2).save(tmp_path / "s.keras")
    summary = exporter.export_generator(tmp_path / "s.keras", tmp_path / "out", (64, 64), ("fp32", "int8"), calibration_count=4, per_op_report=False, log=lambda *a: None)
    assert summary["variants"]["fp32"]["gpu_delegate"]["compatible"]
    assert summary["variants"]["fp32"]["quality_vs_keras"]["max_abs_diff"] < 1e-4
    assert summary["variants"]["int8"]["quality_vs_keras"]["psnr_db"] > 25  # no instance norm: int8-friendly


def test_distillation_learns_the_teacher():
    keras.utils.set_random_seed(1)
    teacher = StyleGenerator(ngf=8, n_blocks=1)
    rng = np.random.default_rng(0)
    photos = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    styles = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    targets = np.asarray(teacher({"photo": photos, "style": styles}))
    model = DistillationModel(MobileStyleGenerator(alpha=0.5, n_blocks=1), edge_weight=0.5)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = model.evaluate({"photo": photos, "style": styles}, targets, verbose=0, return_dict=True)
    model.fit({"photo": photos, "style": styles}, targets, batch_size=4, epochs=30, verbose=0)
    after = model.evaluate({"photo": photos, "style": styles}, targets, verbose=0, return_dict=True)
    assert set(after) == {"loss", "l1", "edge"}
    assert after["l1"] < 0.6 * before["l1"] and after["loss"] < before["loss"]


def test_distill_cli_runs_evaluates_and_resumes(tmp_path):
    keras.utils.set_random_seed(2)
    StyleGenerator(ngf=8, n_blocks=1).save(tmp_path / "teacher.keras")
    run = tmp_path / "run"
    args = [sys.executable, "-m", "keras_asym.distill", f"--teacher={tmp_path / 'teacher.keras'}", f"--output={run}",
            "--procedural=10", "--size=64", "--alpha=0.5", "--n_blocks=1", "--epochs=1", "--steps_per_epoch=3", "--batch_size=4", "--verbose=0"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((run / "eval.json").read_text())
    assert set(report["vs_teacher"]) == {"style1", "style2", "style3"}
    assert all(0 <= v["ssim"] <= 1 and 0 <= v["edge_f1"] <= 1 and v["photos"] == 1 for v in report["vs_teacher"].values())
    assert report["student"]["gflops"] < 0.1
    assert keras.saving.load_model(run / "generators" / "generator.keras").count_params() == report["student"]["params"]
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "already holds a run" in again.stderr
    config = json.loads((run / "distill_config.json").read_text())
    config["epochs"] = 2
    (run / "distill_config.json").write_text(json.dumps(config))
    resumed = subprocess.run([sys.executable, "-m", "keras_asym.distill", f"--output={run}", "--resume", "--verbose=0"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "teacher drew" not in resumed.stderr  # the teacher cache was reused
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("*.json"))
    assert checkpoints == ["epoch-0001.json", "epoch-0002.json"]
