"""AsymmetricCycleGAN: the training step updates every network, inside fit's tf.function."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_asym.data.synthetic import random_batch
from keras_asym.models.cycle_gan import build_model
from keras_asym.training.callbacks import EpochSchedule

SIZE = 64


def _batch(n=2, seed=0):
    return random_batch(n, SIZE, seed, mask_fraction=0.2, soft_styles=True)


def _small(**kwargs):
    keras.utils.set_random_seed(1)
    model = build_model(image_size=SIZE, ngf=4, ndf=4, n_blocks=1, n_layers_d=2, **kwargs)
    model.compile(g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    return model


def _snapshot(net):
    return [np.array(w) for w in net.trainable_weights]


def _changed(before, net):
    return all(np.max(np.abs(a - np.asarray(b))) > 0 for a, b in zip(before, net.trainable_weights))


@pytest.mark.parametrize("distance", ["edges", "hed_lpips"])
def test_one_fit_step_updates_every_network(distance):
    model = _small(cycle_distance=distance)
    nets = [model.generator, model.photo_generator, model.drawing_discriminator, model.photo_discriminator]
    nets += list(model.local_discriminators.values())
    frozen = model.cycle_distance.weights
    before = [_snapshot(n) for n in nets]
    frozen_before = [np.array(w) for w in frozen]
    data = tf.data.Dataset.from_tensors(_batch())
    history = model.fit(data, epochs=1, verbose=0)
    for net, snap in zip(nets, before):
        assert _changed(snap, net), net.name
    for a, b in zip(frozen_before, frozen):
        np.testing.assert_array_equal(a, np.asarray(b))
    logs = {k: v[-1] for k, v in history.history.items()}
    assert set(logs) == set(model.loss_names)
    assert all(np.isfinite(v) for v in logs.values())
    assert model.g_optimizer.iterations.numpy() == 1 and model.d_optimizer.iterations.numpy() == 1


def test_train_step_traces_into_a_tf_function():
    """One trace serves every step, and the traced step really updates both generators and the discriminators."""
    model = _small()
    step = tf.function(model.train_step)
    batch = keras.tree.map_structure(tf.constant, _batch())
    before = [np.array(w) for w in model.generator.weights + model.photo_generator.weights]
    d_before = [np.array(w) for w in model.drawing_discriminator.weights]
    logs = step(batch)
    assert np.isfinite(float(logs["generator"])) and float(logs["generator"]) > 0
    changed = [not np.array_equal(b, np.array(w)) for b, w in zip(before, model.generator.weights + model.photo_generator.weights)]
    assert sum(changed) > len(changed) // 2
    assert any(not np.array_equal(b, np.array(w)) for b, w in zip(d_before, model.drawing_discriminator.weights))
    step(batch)
    assert step.experimental_get_tracing_count() == 1


def test_truncation_cycle_trains_only_the_photo_generator():
    model = _small()
    model.progress.assign(0.5)
    batch = keras.tree.map_structure(tf.constant, _batch())
    with tf.GradientTape(persistent=True) as tape:
        images = model.generate(batch)
        g_losses, _ = model.generator_losses(batch, images)
    g_grads = tape.gradient(g_losses["truncation_cycle"], model.generator.trainable_variables)
    f_grads = tape.gradient(g_losses["truncation_cycle"], model.photo_generator.trainable_variables)
    assert all(g is None or not np.any(np.asarray(g)) for g in g_grads)
    assert any(g is not None and np.any(np.asarray(g)) for g in f_grads)
    relaxed = tape.gradient(g_losses["relaxed_cycle"], model.generator.trainable_variables)
    assert any(g is not None and np.any(np.asarray(g)) for g in relaxed)


def test_loss_terms_follow_the_options():
    model = _small(parts=("eyes",), use_truncation=False, cycle_distance="l1")
    all_losses, images = model.compute_losses(_batch(1))
    assert "truncation_cycle" not in all_losses and "reconstructed_photo_truncated" not in images
    assert {"local_eyes", "d_local_eyes"} <= set(all_losses) and "local_nose" not in all_losses
    parts = sum(v for k, v in all_losses.items() if k not in ("generator", "discriminator") and not k.startswith("d_"))
    assert float(all_losses["generator"]) == pytest.approx(float(parts), rel=1e-6)
    with pytest.raises(ValueError, match="Unknown local"):
        build_model(image_size=SIZE, ngf=4, ndf=4, n_blocks=1, n_layers_d=2, parts=("ears",))


def test_epoch_schedule_sets_progress_and_learning_rate():
    model = _small()
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((float(model.progress.numpy()), float(model.g_optimizer.learning_rate.numpy())))

    data = tf.data.Dataset.from_tensors(_batch(1))
    model.fit(data, epochs=4, verbose=0, callbacks=[EpochSchedule(1e-3, niter=2, niter_decay=2), Record()])
    np.testing.assert_allclose([p for p, _ in seen], [0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose([lr for _, lr in seen], [1e-3, 1e-3, 1e-3 * 2 / 3, 1e-3 / 3], rtol=1e-6)
    assert float(model.d_optimizer.learning_rate.numpy()) == pytest.approx(1e-3 / 3, rel=1e-6)


def test_whole_model_round_trips_through_a_keras_file(tmp_path):
    model = _small(cycle_distance="hed_lpips", pool_size=5, parts=("lips", "nose"))
    model.progress.assign(0.4)
    path = tmp_path / "gan.keras"
    model.save(path)
    restored = keras.saving.load_model(path, compile=False)
    assert type(restored.cycle_distance).__name__ == "HedLpipsDistance"
    assert restored.parts == ("nose", "lips") and restored.pool_size == 5
    assert float(restored.progress.numpy()) == pytest.approx(0.4)
    batch = _batch(1)
    inputs = {"photo": batch["photo"], "style": batch["style"]}
    np.testing.assert_allclose(np.asarray(restored(inputs)), np.asarray(model(inputs)), atol=1e-6)
    hed_before = [w.numpy() for w in model.cycle_distance.hed.weights]
    for a, b in zip(hed_before, restored.cycle_distance.hed.weights):
        np.testing.assert_array_equal(a, b.numpy())
