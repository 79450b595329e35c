"""Loss functions and schedules against hand-worked values on tiny tensors."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_asym.objective import losses, schedules


def test_lsgan_and_discriminator_loss():
    pred = np.array([[0.0, 1.0], [2.0, -1.0]], np.float32)
    assert float(losses.lsgan_loss(pred, True)) == pytest.approx((1 + 0 + 1 + 4) / 4)
    assert float(losses.lsgan_loss(pred, False)) == pytest.approx((0 + 1 + 4 + 1) / 4)
    assert float(losses.discriminator_loss(np.ones(3), np.zeros(3))) == 0.0
    assert float(losses.discriminator_loss(np.zeros(3), np.ones(3))) == pytest.approx(1.0)


def test_l1():
    assert float(losses.l1_loss([1.0, -1.0], [0.0, 1.0])) == pytest.approx(1.5)


def test_truncate_values_are_64_levels():
    y = np.array([-1.0, -0.99, 0.0, 0.0313, 0.0314, 0.999, 1.0], np.float32)
    out = np.asarray(losses.truncate(y))
    a = 31.875
    np.testing.assert_allclose(out, np.floor((y + 1) * a) / a - 1, atol=1e-7)
    assert out[0] == -1.0 and out[-1] == pytest.approx(63 / a - 1)
    levels = np.asarray(losses.truncate(np.linspace(-1, 1, 10001, dtype=np.float32)))
    assert len(np.unique(levels)) == 64  # floor((y + 1) * 31.875) takes the values 0..63: 6 bits


def test_truncate_passes_no_gradient_like_the_official_int_cast():
    y = tf.Variable([[0.1, -0.5, 0.7]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(losses.truncate(y) * 3.0)
    assert tape.gradient(loss, y) is None


def test_style_classification_loss_weighted_and_one_hot():
    logits = np.array([[2.0, 0.5, -1.0]], np.float32)
    log_p = logits - np.log(np.exp(logits).sum())
    weights = np.array([[0.7, 0.2, 0.1]], np.float32)
    assert float(losses.style_classification_loss(logits, weights)) == pytest.approx(-(weights * log_p).sum(), rel=1e-6)
    assert float(losses.style_classification_loss(logits, [[0.0, 1.0, 0.0]])) == pytest.approx(-log_p[0, 1], rel=1e-6)


def test_masked_part_whitens_outside_and_appends_mask():
    drawing = np.array([-1.0, 0.0, 0.5], np.float32).reshape(1, 1, 3, 1)
    mask = np.array([1.0, 0.0, 1.0], np.float32).reshape(1, 1, 3, 1)
    out = np.asarray(losses.masked_part(drawing, mask))
    np.testing.assert_allclose(out[..., 0].ravel(), [-1.0, 1.0, 0.5])
    np.testing.assert_array_equal(out[..., 1], mask[..., 0])


def test_cycle_weights_schedule():
    w_cycle, w_trunc = schedules.cycle_weights(0.0, 5.0, 5.0)
    assert (float(w_cycle), float(w_trunc)) == (5.0, 0.0)
    w_cycle, w_trunc = schedules.cycle_weights(0.3, 5.0, 5.0)
    assert float(w_cycle) == pytest.approx(3.65) and float(w_trunc) == pytest.approx(1.35)


def test_training_progress_and_linear_learning_rate_decay():
    # Official train.sh: niter 100 + niter_decay 100; Keras epochs are 0-based.
    assert schedules.training_progress(0, 100, 100) == 0.0
    assert schedules.training_progress(60, 100, 100) == pytest.approx(0.3)
    factors = [schedules.learning_rate_factor(e, 3, 3) for e in range(6)]
    np.testing.assert_allclose(factors, [1, 1, 1, 0.75, 0.5, 0.25])  # niter epochs at full rate, then 1 - k/(niter_decay+1)
    with pytest.raises(ValueError):
        schedules.training_progress(0, 0, 0)
