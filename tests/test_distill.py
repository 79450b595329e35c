"""Mobile generator and distillation: cost, export-friendliness, learning, the CLI and resume."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from keras_asym.distillation.model import DistillationModel
from keras_asym.evaluation.metrics import conv_gflops
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.models.networks import StyleGenerator


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


def test_mobile_generator_exports_for_the_gpu_and_int8(tmp_path):
    from export import exporter

    keras.utils.set_random_seed(0)
    MobileStyleGenerator(alpha=0.5, n_blocks=2).save(tmp_path / "s.keras")
    summary = exporter.export_generator(
        tmp_path / "s.keras", tmp_path / "out", (64, 64), ("fp32", "int8"), calibration_count=4, per_op_report=False, log=lambda *a: None
    )
    verdict = summary["variants"]["fp32"]["gpu"]
    assert verdict["fully_accelerated"] if verdict["measured"] else "Vulkan" in verdict["reason"]
    assert summary["variants"]["fp32"]["quality_vs_keras"]["max_abs_diff"] < 1e-4
    assert summary["variants"]["int8"]["quality_vs_keras"]["psnr_db"] > 25  # no instance norm: int8-friendly


def test_benchmarks_time_a_model_in_a_child_without_defining_flags(tmp_path):
    """distill_report and export_variants both time through benchmarks.common.timing; it must define no absl flags."""
    from benchmarks.common.timing import child_timing
    from export import exporter

    MobileStyleGenerator(alpha=0.5, n_blocks=1).save(tmp_path / "s.keras")
    exporter.export_generator(tmp_path / "s.keras", tmp_path / "out", (32, 32), ("fp32",), per_op_report=False, log=lambda *a: None)
    timing = child_timing(tmp_path / "out" / "drawing_fp32.tflite", 1, 3)
    assert 0 < timing["min_s"] <= timing["median_s"] < 5 and timing["peak_rss_mb"] > 10
    code = "from absl import flags; import benchmarks.common.timing; import benchmarks.export_variants; print(sorted(f for f in flags.FLAGS if f in ('size', 'output', 'child')))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert shown.stdout.split("\n")[-2] == "['output', 'size']", shown.stderr[-2000:]
    with pytest.raises(RuntimeError, match="missing.tflite"):
        child_timing(tmp_path / "missing.tflite", 1, 1)


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
    assert set(after) == {"loss", "l1", "edge", "ssim"} and after["ssim"] > before["ssim"]
    assert after["l1"] < 0.6 * before["l1"] and after["loss"] < before["loss"]


def test_training_ssim_is_the_reported_ssim():
    from keras_asym.distillation.model import ssim
    from keras_asym.evaluation import metrics

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 40, 48), dtype=np.uint8)
    b = np.clip(a + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    values = np.asarray(ssim((a / 127.5 - 1.0)[..., None], (b / 127.5 - 1.0)[..., None]))
    np.testing.assert_allclose(values, [metrics.ssim(a[k], b[k]) for k in range(2)], atol=1e-5)
    assert np.asarray(ssim((a / 127.5 - 1.0)[..., None], (a / 127.5 - 1.0)[..., None])) == pytest.approx(1.0, abs=1e-5)


def test_jittered_photos_are_new_faces_of_the_same_shape_and_reproducible():
    from keras_asym.data.jitter import jitter_photo

    photo = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    a = jitter_photo(photo, np.random.default_rng(1))
    assert a.shape == photo.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, jitter_photo(photo, np.random.default_rng(1)))
    assert np.abs(a.astype(int) - jitter_photo(photo, np.random.default_rng(2))).mean() > 5
    assert np.abs(a.astype(int) - photo).mean() > 5
    with pytest.raises(ValueError, match="uint8 RGB"):
        jitter_photo(photo[..., 0], np.random.default_rng(1))


def test_copies_of_held_out_photos_are_neither_trained_on_nor_scored(tmp_path):
    from keras_asym.distillation.recipe import load_photos, split_examples, teacher_drawings

    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(5):
        cv2.imwrite(str(folder / f"f{k}.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"not a png")
    loaded = load_photos([str(folder)], procedural=2, size=32, seed=0, augment=3)
    assert loaded["photos"].shape == (5 + 2 + 15, 32, 32, 3) and len(loaded["skipped"]) == 1 and "broken.png" in loaded["skipped"][0]
    np.testing.assert_array_equal(loaded["source"][:7], np.arange(7))
    np.testing.assert_array_equal(loaded["source"][7:], np.repeat(np.arange(5), 3))
    np.testing.assert_array_equal(loaded["real"], loaded["source"] < 5)
    index, styles, drawings = teacher_drawings(StyleGenerator(ngf=8, n_blocks=1), loaded["photos"], loaded["source"], seed=0)
    assert len(index) == 7 * 4 + 15 and drawings.shape == (43, 32, 32) and drawings.dtype == np.uint8
    np.testing.assert_allclose(styles.sum(axis=1), 1.0, rtol=1e-5)
    held_out, train_rows, eval_rows = split_examples(loaded["source"], index, holdout=0.4, seed=0)
    assert len(held_out) == 3
    assert not np.isin(loaded["source"][index[train_rows]], held_out).any()
    assert set(index[eval_rows]) == set(held_out) and len(eval_rows) == 3 * 4
    assert len(train_rows) + len(eval_rows) + 3 * int(np.isin(held_out, np.arange(5)).sum()) == len(index)


def test_training_crops_keep_photo_and_drawing_aligned_on_the_stride_grid_and_mix_the_pools():
    from keras_asym.distillation.recipe import make_dataset

    rng = np.random.default_rng(0)
    photos = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    index = np.arange(6)
    photos[..., 0] = 40 * index[:, None, None]  # the red channel names the photo
    styles = np.eye(3, dtype=np.float32)[index % 3]
    drawings = photos[..., 1]  # a "drawing" equal to the green channel shows any misalignment
    real, procedural = (index[:2], styles[:2], drawings[:2]), (index[2:], styles[2:], drawings[2:])
    batches = list(make_dataset(photos, [real, procedural], 8, seed=0, training=True, crop=16, weights=[0.75, 0.25], crop_grid=8).take(40))
    x, y = batches[0]
    assert x["photo"].shape == (8, 16, 16, 3) and y.shape == (8, 16, 16, 1)
    for x, y in batches:
        np.testing.assert_array_equal(np.asarray(x["photo"])[..., 1:2], np.asarray(y))
    pictures = np.concatenate([np.asarray(x["photo"]) for x, _ in batches])
    owner = np.round((pictures[:, 0, 0, 0] + 1.0) * 127.5 / 40).astype(int)
    corners = set()
    for picture, i in zip(np.round((pictures + 1.0) * 127.5).astype(np.uint8)[:64], owner):
        windows = [(dy, dx) for dy in range(17) for dx in range(17) if np.array_equal(photos[i, dy : dy + 16, dx : dx + 16], picture)]
        assert len(windows) == 1, "a training crop is not an unmirrored window of its photo"
        corners.add(windows[0])
    assert corners == {(dy, dx) for dy in (0, 8, 16) for dx in (0, 8, 16)}, f"crop corners off the 8-px grid or not all used: {corners}"
    from_real = owner < 2
    assert 0.6 < from_real.mean() < 0.9
    whole = list(make_dataset(photos, [real, procedural], 4, seed=0, training=False))
    assert [len(y) for _, y in whole] == [4, 2] and whole[0][0]["photo"].shape[1:] == (32, 32, 3)


def test_training_phases_end_on_whole_images():
    from keras_asym.distillation.recipe import training_phases

    assert training_phases(10, 128, 3, 8, 4) == [(0, 7, 128, 8), (7, 10, 0, 4)]
    assert training_phases(10, 128, 0, 8, 4) == [(0, 10, 128, 8)]
    assert training_phases(10, 128, 10, 8, 4) == [(0, 10, 0, 4)]
    assert training_phases(10, 0, 3, 8, 4) == [(0, 10, 0, 8)]  # no crops: every epoch is whole-image already


@pytest.mark.slow
def test_distill_cli_runs_evaluates_and_resumes(tmp_path):
    keras.utils.set_random_seed(2)
    StyleGenerator(ngf=8, n_blocks=1).save(tmp_path / "teacher.keras")
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "keras_asym.distill",
        f"--teacher={tmp_path / 'teacher.keras'}",
        f"--output={run}",
        "--procedural=10",
        "--size=64",
        "--crop=32",
        "--alpha=0.5",
        "--n_blocks=1",
        "--epochs=2",
        "--full_size_epochs=1",
        "--full_size_batch=2",
        "--steps_per_epoch=3",
        "--batch_size=4",
        "--verbose=0",
    ]
    bad = subprocess.run([*args[:-1], "--crop=36"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--crop 36" in bad.stderr and not run.exists()
    # the other refusals of DistillConfig.validate: tests/test_configs.py (the same path to exit 2, a child each saved)
    result = subprocess.run([*args[:-1], "--verbose=2"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    # progress lines with an ETA, the last of each at 100%: the teacher's drawings, then every step of both phases
    assert "distill: teacher drawings: 40/40 drawings (100%)" in result.stderr and "distill: 6/6 steps (100%)" in result.stderr
    report = json.loads((run / "eval.json").read_text())
    assert set(report["vs_teacher"]) == {"style1", "style2", "style3"}
    assert all(0 <= v["ssim"] <= 1 and 0 <= v["edge_f1"] <= 1 and v["photos"] == 1 for v in report["vs_teacher"].values())
    assert report["student"]["gflops"] < 0.1
    assert set(report["vs_teacher_by_source"]) == {"procedural"} and report["training_examples"] == {"photos": 0, "procedural": 9 * 4}
    assert report["phases"] == [{"epochs": [1, 1], "batch": [4, 32, 32, 3]}, {"epochs": [2, 2], "batch": [2, 64, 64, 3]}]
    assert keras.saving.load_model(run / "generators" / "generator.keras").count_params() == report["student"]["params"]
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "already holds a run" in again.stderr
    config = json.loads((run / "distill_config.json").read_text())
    config["epochs"] = 3  # resumed after epoch 2: the crop phase grows to epoch 2 and is done, one whole-image epoch is left
    (run / "distill_config.json").write_text(json.dumps(config))
    resumed = subprocess.run(
        [sys.executable, "-m", "keras_asym.distill", f"--output={run}", "--resume", "--verbose=0"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "teacher drew" not in resumed.stderr  # the teacher cache was reused
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("*.json"))
    assert checkpoints == ["epoch-0002.json", "epoch-0003.json"]
    assert json.loads((run / "checkpoints" / "epoch-0003.json").read_text())["iterations"] == 3 * 3


@pytest.mark.slow
def test_distill_killed_mid_epoch_resumes_step_exactly_to_the_uninterrupted_weights(tmp_path):
    from tests.test_train import _h5_arrays, _kill_when, kill_rng

    keras.utils.set_random_seed(3)
    StyleGenerator(ngf=8, n_blocks=1).save(tmp_path / "teacher.keras")
    common = [
        f"--teacher={tmp_path / 'teacher.keras'}",
        "--procedural=8",
        "--size=64",
        "--crop=32",
        "--alpha=0.5",
        "--n_blocks=1",
        "--epochs=3",
        "--full_size_epochs=1",
        "--full_size_batch=2",
        "--steps_per_epoch=3",
        "--batch_size=2",
        "--backup_every=2",
        "--verbose=0",
    ]

    def start(run, *extra):
        return subprocess.Popen(
            [sys.executable, "-m", "keras_asym.distill", f"--output={run}", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = start(whole, *common)
    process = start(killed, *common)
    _kill_when(process, killed, 2, kill_rng("distill").uniform(0.0, 0.3))  # in the crop phase, maybe mid-save
    resumed = subprocess.run(
        [sys.executable, "-m", "keras_asym.distill", f"--output={killed}", "--resume", "--verbose=0"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "backup: resuming from" in resumed.stderr
    assert reference.wait(timeout=600) == 0, reference.stderr.read()[-2000:]
    a, b = (_h5_arrays(run / "backup" / "gen-000000000009" / "weights.weights.h5") for run in (whole, killed))
    assert sorted(a) == sorted(b)
    worst = max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)
    assert worst <= 1e-6, worst
    iterations = [json.loads((run / "checkpoints" / "epoch-0003.json").read_text())["iterations"] for run in (whole, killed)]
    assert iterations == [9, 9]
