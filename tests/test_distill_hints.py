"""Feature hints: the teacher's bottleneck features as a second distillation target."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_asym.distillation.hints import bottleneck_layer, feature_model, pooled, standardised
from keras_asym.distillation.model import DistillationModel
from keras_asym.distillation.teacher import targets, teacher_features
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.models.networks import StyleGenerator


def test_the_bottleneck_is_the_last_layer_at_the_coarsest_resolution_not_a_pooled_context():
    assert bottleneck_layer(StyleGenerator(ngf=8, n_blocks=3)) == "block3_add"
    assert bottleneck_layer(MobileStyleGenerator(alpha=0.5, n_blocks=2, global_context=True)) == "block2_add"
    assert bottleneck_layer(MobileStyleGenerator(alpha=0.5, n_blocks=2, instance_norm=True)) == "block2_add"
    fixed = MobileStyleGenerator(alpha=0.5, n_blocks=2, global_context=True, height=48, width=48)
    assert bottleneck_layer(fixed) == "block2_add"  # a fixed input size is probed at that size
    assert bottleneck_layer(StyleGenerator(ngf=8, n_blocks=2, height=40, width=40)) == "block2_add"


def test_teacher_features_are_its_bottleneck_pooled_to_the_students_resolution_and_standardised():
    keras.utils.set_random_seed(0)
    teacher = StyleGenerator(ngf=8, n_blocks=2)
    rng = np.random.default_rng(0)
    photos = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    index, styles = np.array([0, 1, 2, 2]), np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    features = teacher_features(teacher, photos, index, styles)
    assert features.shape == (4, 4, 4, 32) and features.dtype == np.float16  # 1/8 of 32 px; ngf 8 x 4 channels
    _, hidden = feature_model(teacher)({"photo": photos[index] / 127.5 - 1.0, "style": styles})
    hidden = np.asarray(hidden, np.float64)
    assert hidden.shape == (4, 8, 8, 32)  # the teacher's bottleneck: 1/4
    expected = hidden.reshape(4, 4, 2, 4, 2, 32).mean(axis=(2, 4))
    expected = (expected - expected.mean(axis=(0, 1, 2))) / expected.std(axis=(0, 1, 2))
    np.testing.assert_allclose(features.astype(np.float64), expected, atol=0.02)
    assert not np.allclose(features[2], features[3], atol=0.1)  # the style changes the features: rows are not photos


def test_features_that_cannot_be_pooled_to_the_students_grid_are_refused_by_name():
    with pytest.raises(ValueError, match="--feature_weight needs a teacher whose bottleneck"):
        pooled(np.zeros((1, 2, 2, 4), np.float32), 32)  # 1/16: coarser than the student's 1/8
    np.testing.assert_array_equal(standardised(np.ones((2, 2, 2, 1), np.float32)), 0.0)  # a constant channel: 0, not NaN


def test_feature_hints_pull_the_students_bottleneck_toward_the_teachers_and_add_to_the_loss(tmp_path):
    keras.utils.set_random_seed(1)
    teacher = StyleGenerator(ngf=8, n_blocks=1)
    rng = np.random.default_rng(0)
    photos = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    styles = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    x = {"photo": photos / 127.5 - 1.0, "style": styles}
    drawings = np.asarray(teacher(x))
    features = teacher_features(teacher, photos, np.arange(8), styles).astype(np.float32)
    target = {"drawing": drawings, "features": features}
    model = DistillationModel(MobileStyleGenerator(alpha=0.5, n_blocks=1), feature_weight=0.5, feature_channels=32)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model(x)  # built, as distill builds it before its first backup
    before = model.evaluate(x, target, verbose=0, return_dict=True)
    assert before["loss"] == pytest.approx(before["l1"] + before["edge"] + (1 - before["ssim"]) + 0.5 * before["feature"], rel=1e-4)
    history = model.fit(x, target, batch_size=4, epochs=20, verbose=0).history  # training mode: batch statistics
    assert history["feature"][-1] < 0.3 * history["feature"][0] and history["l1"][-1] < history["l1"][0]
    after = model.evaluate(x, target, verbose=0, return_dict=True)
    # backups hold the head with the student: weights saved and loaded into a new model give the same losses
    model.save_weights(tmp_path / "w.weights.h5")
    again = DistillationModel(MobileStyleGenerator(alpha=0.5, n_blocks=1), feature_weight=0.5, feature_channels=32)
    again.compile(optimizer=keras.optimizers.Adam(3e-3))
    again(x)
    again.load_weights(tmp_path / "w.weights.h5")
    restored = again.evaluate(x, target, verbose=0, return_dict=True)
    assert restored["feature"] == pytest.approx(after["feature"], rel=1e-5) and restored["l1"] == pytest.approx(after["l1"], rel=1e-5)
    with pytest.raises(ValueError, match="needs {'drawing', 'features'} targets"):
        model.evaluate(x, drawings, verbose=0)


def test_a_student_with_its_bottleneck_at_the_teachers_quarter_resolution_is_hinted_through_it_pooled_to_the_cached_eighth():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(1)
    x = {"photo": rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32), "style": np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]}
    target = {
        "drawing": rng.uniform(-1, 1, (4, 32, 32, 1)).astype(np.float32),
        "features": rng.normal(size=(4, 4, 4, 16)).astype(np.float32),
    }
    model = DistillationModel(MobileStyleGenerator(alpha=0.5, n_blocks=1, bottleneck_stride=4), feature_weight=1.0, feature_channels=16)
    _, hidden = model.hinted(x)
    assert hidden.shape[1:3] == (8, 8) and model.feature_pool == 2  # the blocks at 1/4, the features at 1/8
    mapped = np.asarray(model.feature_head(hidden), np.float64).reshape(4, 4, 2, 4, 2, 16).mean(axis=(2, 4))
    losses = model.losses_for(x, target, training=False)
    assert float(losses["feature"]) == pytest.approx(np.mean((mapped - target["features"]) ** 2), rel=1e-5)
    coarse = DistillationModel(MobileStyleGenerator(alpha=0.5, n_blocks=1), feature_weight=1.0, feature_channels=16)
    assert coarse.feature_pool == 1 and coarse.hinted(x)[1].shape[1:3] == (4, 4)


def test_training_crops_take_the_features_of_the_same_square():
    from keras_asym.distillation.recipe import make_dataset

    rng = np.random.default_rng(0)
    photos = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    drawings = photos[..., 1]
    features = drawings.reshape(3, 4, 8, 4, 8).mean(axis=(2, 4))[..., None].astype(np.float16)  # each 8x8 cell's mean
    rows = (np.arange(3), np.eye(3, dtype=np.float32), drawings, features)
    for _, y in make_dataset(photos, [rows], 4, seed=0, training=True, crop=16, crop_grid=8).take(10):
        assert set(y) == {"drawing", "features"} and y["features"].shape == (4, 2, 2, 1)
        cells = ((np.asarray(y["drawing"], np.float64) + 1.0) * 127.5).reshape(4, 2, 8, 2, 8).mean(axis=(2, 4))
        np.testing.assert_allclose(np.asarray(y["features"])[..., 0], cells, atol=0.2)
    (_, y), *_ = list(make_dataset(photos, [rows], 3, seed=0, training=False))
    assert y["features"].shape == (3, 4, 4, 1) and y["drawing"].shape == (3, 32, 32, 1)


def test_a_run_adds_teacher_features_to_a_cache_made_without_them_and_trains_on_both(tmp_path):
    from keras_asym.distillation.config import DistillConfig
    from keras_asym.distillation.recipe import load_photos, run, teacher_drawings

    keras.utils.set_random_seed(2)
    StyleGenerator(ngf=8, n_blocks=1).save(tmp_path / "teacher.keras")
    teacher = keras.saving.load_model(tmp_path / "teacher.keras")
    loaded = load_photos([], 6, 64, seed=0)
    del loaded["skipped"]
    index, styles, drawings = teacher_drawings(teacher, loaded["photos"], loaded["source"], seed=0)
    folder = tmp_path / "run"
    folder.mkdir()
    np.savez(folder / "teacher_cache.npz", **loaded, index=index, styles=styles, drawings=drawings)
    config = DistillConfig(
        teacher=str(tmp_path / "teacher.keras"),
        output=str(folder),
        procedural=6,
        size=64,
        crop=32,
        alpha=0.5,
        n_blocks=1,
        epochs=2,
        full_size_epochs=1,
        full_size_batch=2,
        steps_per_epoch=2,
        batch_size=2,
        feature_weight=0.5,
    )
    report = run(config, resume=True, verbose=0)
    with np.load(folder / "teacher_cache.npz") as cache:
        assert cache["features"].shape == (len(index), 8, 8, 32)
        np.testing.assert_array_equal(cache["drawings"], drawings)  # the drawings kept, not drawn again
    assert report["feature_weight"] == 0.5 and {"feature", "val_feature"} <= set(report["logs"])
    assert np.isfinite(report["logs"]["feature"])


def test_one_teacher_pass_gives_the_drawings_and_the_features_of_two_separate_passes():
    keras.utils.set_random_seed(3)
    teacher = StyleGenerator(ngf=8, n_blocks=2)
    photos = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    index, styles = np.array([0, 1, 2, 1, 0]), np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 2]]
    both = targets(teacher, photos, index, styles, features=True, batch=2)
    alone = targets(teacher, photos, index, styles, batch=2)
    assert set(both) == {"drawings", "features"} and set(alone) == {"drawings"}
    assert both["drawings"].dtype == np.uint8 and both["drawings"].shape == (5, 32, 32)
    assert np.abs(both["drawings"].astype(int) - alone["drawings"]).max() <= 1  # the same drawings, to XLA's rounding
    np.testing.assert_allclose(both["features"].astype(np.float32), teacher_features(teacher, photos, index, styles), atol=0.02)
    with pytest.raises(ValueError, match="drawings, features or both"):
        targets(teacher, photos, index, styles, drawings=False)


def test_a_new_run_with_hints_runs_the_teacher_once_for_drawings_and_features(tmp_path, monkeypatch):
    from keras_asym.distillation import recipe
    from keras_asym.distillation.config import DistillConfig

    keras.utils.set_random_seed(4)
    StyleGenerator(ngf=8, n_blocks=1).save(tmp_path / "teacher.keras")
    passes = []

    def counted(*args, **kwargs):
        passes.append(kwargs.get("features", False))
        return targets(*args, **kwargs)

    monkeypatch.setattr(recipe, "targets", counted)
    monkeypatch.setattr(recipe, "teacher_features", lambda *a, **k: pytest.fail("a second pass for the features"))
    config = DistillConfig(
        teacher=str(tmp_path / "teacher.keras"),
        output=str(tmp_path / "run"),
        procedural=6,
        size=64,
        crop=32,
        alpha=0.5,
        n_blocks=1,
        epochs=1,
        full_size_epochs=1,
        full_size_batch=2,
        steps_per_epoch=2,
        batch_size=2,
        feature_weight=0.5,
    )
    report = recipe.run(config, verbose=0)
    assert passes == [True]
    with np.load(tmp_path / "run" / "teacher_cache.npz") as cache:
        assert cache["drawings"].shape == (24, 64, 64) and cache["features"].shape == (24, 8, 8, 32)
    assert np.isfinite(report["logs"]["feature"])
