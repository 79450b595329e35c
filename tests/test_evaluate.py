"""Learning on procedural data, and the evaluate CLI (paired metrics, hidden information, FID/KID)."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_asym.data.pipeline import make_dataset
from keras_asym.data.procedural import write_dataset
from keras_asym.evaluation import metrics
from keras_asym.evaluation.scoring import draw, load_test_pairs, paired_metrics, to_uint8
from keras_asym.models.cycle_gan import build_model
from tests.browser import render


@pytest.fixture(scope="module")
def procedural(tmp_path_factory):
    root = tmp_path_factory.mktemp("procedural") / "data"
    write_dataset(root, photos=24, drawings=24, test=6, size=64, seed=5)
    return root


def test_twenty_steps_lower_the_generator_loss_and_the_paired_error(procedural):
    keras.utils.set_random_seed(0)
    model = build_model(image_size=64, ngf=8, ndf=8, n_blocks=2, n_layers_d=2, pool_size=4, seed=0)
    model.compile(
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), jit_compile=False
    )
    photos, drawings, _ = load_test_pairs(procedural, 64)

    def paired_error():
        errors = [
            np.abs(to_uint8(draw(model.generator, photos, np.eye(3, dtype=np.float32)[k - 1]))[..., 0].astype(float) - drawings[k]).mean()
            for k in (1, 2, 3)
        ]
        return float(np.mean(errors))

    before = paired_error()
    data = iter(make_dataset(procedural, image_size=64, load_size=72, batch_size=1, seed=0).repeat())
    step = tf.function(model.train_step)  # traced once: eager steps cost twice the time
    losses = [float(step(next(data))["generator"]) for _ in range(20)]
    after = paired_error()
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert after < 0.8 * before, (before, after)


def test_metrics_know_right_from_wrong():
    rng = np.random.default_rng(0)
    drawing = np.full((64, 64), 255, np.uint8)
    drawing[20, 10:50] = 0
    drawing[10:50, 30] = 0
    shifted = np.roll(drawing, 1, axis=0)
    assert metrics.edge_f1(drawing, drawing) == 1.0 and metrics.chamfer(drawing, drawing) == 0.0
    assert metrics.edge_f1(shifted, drawing) == 1.0  # within the 1.5 px tolerance
    assert metrics.edge_f1(np.roll(drawing, 6, axis=1), drawing) < 0.6
    assert metrics.ssim(drawing, drawing) == pytest.approx(1.0)
    assert metrics.ssim(rng.integers(0, 256, (64, 64)), drawing) < 0.2
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    assert abs(metrics.fid(a, b)) < 0.5 and abs(metrics.kid(a, b)) < 0.05
    assert metrics.fid(a, b + 3.0) > 60 and metrics.kid(a, b + 3.0) > 1.0


def test_evaluate_cli_on_a_tiny_run(procedural, tmp_path, browser):
    run = tmp_path / "run"
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_asym.train",
            f"--dataset={procedural}",
            f"--output={run}",
            "--image_size=64",
            "--load_size=72",
            "--n_layers_d=2",
            "--ngf=4",
            "--ndf=4",
            "--n_blocks=1",
            "--pool_size=4",
            "--niter=1",
            "--niter_decay=0",
            "--steps_per_epoch=2",
            "--nojit_compile",
            "--verbose=0",
            "--image_every=0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "keras_asym.evaluate", f"--run={run}", f"--dataset={procedural}", f"--output={out}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "evaluation.json").read_text())
    assert report["test_photos"] == 6 and set(report["paired"]) == {"style1", "style2", "style3"}
    hidden = report["hidden_information"]
    assert 0 < hidden["truncation_amplitude_gray_levels"] <= 127.5 / 31.875 + 1e-6
    assert np.isfinite(hidden["ratio"]) and hidden["reconstruction_l1"] > 0
    assert "skipped" in report["fid_kid"] and "skipped" in report["style_accuracy"]
    assert (out / "samples.png").is_file() and "Hidden information" in (out / "evaluation.md").read_text()
    loaded, total, spread = render(out / "evaluation.html", tmp_path / "evaluation.png")  # as a reader sees it
    assert total == 2 and loaded == total and spread > 10
    missing = subprocess.run(
        [sys.executable, "-m", "keras_asym.evaluate", f"--run={tmp_path / 'nope'}", f"--dataset={procedural}", f"--output={out}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_paired_metrics_score_the_known_answer_perfectly(procedural):
    photos, drawings, _ = load_test_pairs(procedural, 64)

    class Oracle:
        """Returns the known drawing of each photo for the requested style."""

        def __call__(self, inputs, training=False):
            k = int(np.argmax(inputs["style"][0]))
            index = [int(np.argmin(np.abs(photos.astype(float) - p).sum(axis=(1, 2, 3)))) for p in (inputs["photo"] + 1) * 127.5]
            return (drawings[k + 1][index][..., None].astype(np.float32) / 127.5) - 1.0

    results, _ = paired_metrics(Oracle(), photos, drawings)
    for k in (1, 2, 3):
        assert results[f"style{k}"]["ssim"] > 0.99 and results[f"style{k}"]["edge_f1"] == 1.0


def test_self_consistency_is_one_for_a_pixelwise_generator_and_exposes_aliasing():
    from keras_asym.evaluation.scoring import self_consistency

    photos = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    style = np.eye(3, dtype=np.float32)[0]

    def pixelwise(inputs, training=False):
        return np.mean(inputs["photo"], -1, keepdims=True)

    def subsampled(inputs, training=False):
        return np.repeat(np.repeat(pixelwise(inputs)[:, ::2, ::2], 2, 1), 2, 2)

    for kwargs in ({"shift": 1}, {"shift": 3}, {"mirror": True}):
        assert self_consistency(pixelwise, photos, style, **kwargs) == {"ssim": pytest.approx(1.0), "edge_f1": pytest.approx(1.0)}
    assert self_consistency(subsampled, photos, style, shift=2)["ssim"] == pytest.approx(1.0)  # its period
    assert self_consistency(subsampled, photos, style, shift=1)["ssim"] < 0.7
    from keras_asym.evaluation.scoring import draw, to_uint8

    own = to_uint8(draw(subsampled, photos, style))[..., 0]
    assert self_consistency(subsampled, photos, style, shift=1, reference=own) == self_consistency(subsampled, photos, style, shift=1)
    assert self_consistency(pixelwise, photos, style, shift=1, reference=np.zeros_like(own))["ssim"] < 0.1  # used as given
    assert self_consistency(subsampled, photos, style, mirror=True)["ssim"] < 0.7


def _block_photos(count: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Gray photos made of 4x4 flat blocks: their colour layout is all there is to recover."""
    blocks = np.random.default_rng(seed).integers(0, 256, (count, 4, 4, 1))
    return np.repeat(np.repeat(np.repeat(blocks, size // 4, 1), size // 4, 2), 3, 3).astype(np.uint8)


def test_a_generator_that_hides_the_photo_below_6_bits_is_caught():
    from keras_asym.evaluation.scoring import hidden_information
    from keras_asym.objective.losses import truncate

    levels = 31.875
    base = -1.0 + 20.0 / levels  # a visible gray exactly on the 6-bit grid

    def hider(inputs, training=False):
        gray = inputs["photo"][..., :1]
        return base + (gray + 1.0) / 2.0 * (0.98 / levels)  # the photo, below one 6-bit step

    def decoder(drawing, training=False):
        drawing = np.asarray(drawing)
        hidden = (drawing - np.asarray(truncate(drawing, levels))) * levels / 0.98
        return np.repeat(hidden * 2.0 - 1.0, 3, axis=-1)

    report = hidden_information(hider, decoder, _block_photos(40), levels)
    assert report["reconstruction_l1"] < 0.01 and report["truncated_reconstruction_l1"] > 0.3
    assert report["noisy_reconstruction_l1"] > 10 * report["reconstruction_l1"]
    assert report["residual_colour_r2"] > 0.8 and report["visible_colour_r2"] < 0.1
    assert 0 < report["truncation_amplitude_gray_levels"] < 127.5 / levels


def test_a_generator_that_draws_on_the_6_bit_grid_hides_nothing():
    from keras_asym.evaluation.scoring import hidden_information
    from keras_asym.objective.losses import truncate

    levels = 31.875

    def honest(inputs, training=False):
        gray = inputs["photo"][..., :1]
        return (np.floor((gray + 1.0) * 4.0) * 8.0 + 0.5) / levels - 1.0  # coarse and visible: mid-step on the grid

    def decoder(drawing, training=False):  # reads only what is visible
        return np.repeat(np.asarray(truncate(drawing, levels)), 3, axis=-1)

    report = hidden_information(honest, decoder, _block_photos(40, seed=1), levels)
    assert report["truncation_amplitude_gray_levels"] == pytest.approx(0.5 * 127.5 / levels, rel=1e-3)  # the same everywhere
    assert report["ratio"] == pytest.approx(1.0, abs=0.05)
    assert report["residual_colour_r2"] < 0.1 < report["visible_colour_r2"]


def test_a_feature_constant_in_training_does_not_wreck_the_colour_r2():
    """A residual pixel that is zero in every training photo and not in one test photo carries nothing: the R^2 must
    stay near zero, not fall to minus thousands through a division by the training fold's zero spread."""
    from keras_asym.evaluation.scoring import ridge_r2

    rng = np.random.default_rng(0)
    targets = rng.normal(size=(50, 4))
    features = np.zeros((50, 20))
    features[7, 3] = 1.0  # one stray value, in one photo
    assert -0.2 < ridge_r2(features, targets) <= 0.0
    informative = np.concatenate([features, targets + 0.1 * rng.normal(size=targets.shape)], axis=1)
    assert ridge_r2(informative, targets) > 0.9
