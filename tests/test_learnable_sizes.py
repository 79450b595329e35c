"""Configurations that cannot learn are refused; every accepted size has a style head that sees its input."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_asym.data.pipeline import resolve_load_size
from keras_asym.data.procedural import render_drawing, sample_face
from keras_asym.models.cycle_gan import build_model
from keras_asym.models.networks import MIN_NORM_POSITIONS, StyleDiscriminator, discriminator_layers_for, instance_norm_maps
from keras_asym.objective.losses import style_classification_loss
from keras_asym.training.config import TrainConfig
from keras_asym.utils.config_flags import model_options

# (n_layers, the smallest accepted image size): the class head's last map is then exactly 4x4.
SMALLEST = [(1, 32), (2, 64), (3, 128)]


@pytest.mark.parametrize("n_layers, size", SMALLEST)
def test_a_style_head_one_step_too_small_is_refused_with_the_layer_named(n_layers, size):
    with pytest.raises(ValueError, match=r"cls2_norm normalises a 2x2 map"):
        StyleDiscriminator(image_size=size // 2, ndf=4, n_layers=n_layers)


def test_build_model_refuses_the_32px_configuration_the_old_study_trained():
    with pytest.raises(ValueError, match="too small for instance-norm statistics"):
        build_model(image_size=32, ngf=4, ndf=4, n_blocks=1)
    with pytest.raises(ValueError, match="too small for instance-norm statistics"):
        build_model(image_size=64, ngf=4, ndf=4, n_blocks=1)


def test_build_model_checks_every_network_not_only_the_style_head():
    # At 32 px with two trunk layers D_A's class head is 2x2; with one it is 4x4 and every
    # other network's maps are larger, so only the first is refused.
    with pytest.raises(ValueError, match="normalises a 2x2 map"):
        build_model(image_size=32, ngf=4, ndf=4, n_blocks=1, n_layers_d=2)
    model = build_model(image_size=32, ngf=4, ndf=4, n_blocks=1, n_layers_d=1)
    for net, inputs in [
        (model.photo_discriminator, keras.KerasTensor((1, 32, 32, 3))),
        (model.drawing_discriminator, keras.KerasTensor((1, 32, 32, 1))),
    ]:
        assert min(h * w for _, h, w in instance_norm_maps(net, inputs)) >= MIN_NORM_POSITIONS


@pytest.mark.parametrize("n_layers, size", SMALLEST + [(3, 256)])
def test_style_logits_depend_on_the_drawing_at_every_accepted_size(n_layers, size):
    keras.utils.set_random_seed(0)
    head = StyleDiscriminator(image_size=size, ndf=8, n_layers=n_layers)
    rng = np.random.default_rng(0)
    drawings = rng.uniform(-1, 1, (4, size, size, 1)).astype(np.float32)
    _, logits = head(drawings)
    spread = float(np.ptp(np.asarray(logits), axis=0).max())
    assert spread > 1e-2, f"the style logits are the same for every drawing (spread {spread})"


def _procedural_drawings(count: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(count):
        style = i % 3 + 1
        images.append(render_drawing(sample_face(rng), size, style)[0])
        labels.append(style - 1)
    x = np.stack(images)[..., None].astype(np.float32) / 127.5 - 1.0
    return x, np.eye(3, dtype=np.float32)[labels]


@pytest.mark.parametrize("n_layers, size", SMALLEST)
def test_the_smallest_accepted_style_head_learns_procedural_styles_in_a_few_hundred_steps(n_layers, size):
    """D_A's style loss (the model's own function) on held-out drawings falls well below chance, ln 3."""
    keras.utils.set_random_seed(1)
    head = StyleDiscriminator(image_size=size, ndf=8, n_layers=n_layers)
    x, y = _procedural_drawings(240, size, seed=1)
    x_test, y_test = _procedural_drawings(60, size, seed=2)
    optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)  # the training default

    @tf.function
    def step(images, weights):
        with tf.GradientTape() as tape:
            loss = style_classification_loss(head(images, training=True)[1], weights)
        grads = tape.gradient(loss, head.trainable_variables)  # the PatchGAN head gets none
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, head.trainable_variables) if g is not None])
        return loss

    before = float(style_classification_loss(head(x_test)[1], y_test))
    rng = np.random.default_rng(3)
    for _ in range(300):
        batch = rng.integers(0, len(x), 4)
        step(x[batch], y[batch])
    after = float(style_classification_loss(head(x_test)[1], y_test))
    assert abs(before - math.log(3)) < 0.5
    assert after < 0.5 * math.log(3), f"held-out style loss {after:.3f} (chance {math.log(3):.3f}, before {before:.3f})"


def test_load_size_follows_image_size_by_one_rule():
    assert TrainConfig().load_size == 0
    assert resolve_load_size(512) == 572
    assert resolve_load_size(256) == 286
    assert resolve_load_size(128) == 143
    assert resolve_load_size(128, 160) == 160
    with pytest.raises(ValueError, match="smaller than image_size"):
        resolve_load_size(128, 100)


def test_train_config_carries_the_discriminator_depth_into_the_model():
    model = build_model(**model_options(TrainConfig(image_size=64, ngf=4, ndf=4, n_blocks=1, n_layers_d=2)))
    assert model.drawing_discriminator.n_layers == 2 and model.photo_discriminator.n_layers == 2


def test_the_discriminator_depth_for_a_size_is_the_deepest_that_can_learn():
    assert [discriminator_layers_for(size) for size in (32, 48, 64, 96, 128, 256, 512)] == [1, 1, 2, 2, 3, 3, 3]
    for size in (32, 64, 128, 512):
        StyleDiscriminator(image_size=size, ndf=2, n_layers=discriminator_layers_for(size))  # accepted
