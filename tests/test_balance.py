"""Balancing the norm inputs for int8 keeps the float function and puts every channel on one scale."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from edge_demo.runtime.styles import ONE_HOTS
from export.balance import balance_norm_inputs, for_integer, norm_input_statistics
from keras_asym.layers.basic import InstanceNormalization
from keras_asym.models.networks import StyleGenerator


@pytest.fixture(scope="module")
def generators():
    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=4, n_blocks=1, model0_res=1)
    rng = np.random.default_rng(0)
    # spread the channels apart as training does: each conv output channel gets its own gain and offset
    for layer in generator.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) and layer.name != "head_conv":
            kernel, bias = layer.get_weights()
            axis = 2 if isinstance(layer, keras.layers.Conv2DTranspose) else 3
            gain = 10.0 ** rng.uniform(-1.5, 1.5, kernel.shape[axis])
            shape = [1, 1, 1, 1]
            shape[axis] = -1
            # offsets of a few spreads: far larger ones make the original lose float32 digits to cancellation
            layer.set_weights([kernel * gain.reshape(shape), rng.normal(0, 0.05, bias.shape) * gain])
    photos = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(6)]
    return generator, balance_norm_inputs(generator, photos[:4]), photos


def _draw(model, photo, k=0):
    return np.asarray(model({"photo": (photo / 127.5 - 1)[None].astype(np.float32), "style": ONE_HOTS[k][None]}))


def test_the_balanced_generator_computes_the_same_drawing_in_float(generators):
    generator, balanced, photos = generators
    for k, photo in enumerate(photos[3:]):  # also photos the statistics never saw
        np.testing.assert_allclose(_draw(balanced, photo, k), _draw(generator, photo, k), atol=2e-5)


def test_every_norm_input_has_zero_offset_and_unit_spread_per_channel_on_the_calibration_photos(generators):
    generator, balanced, photos = generators
    before = norm_input_statistics(generator, photos[:4])
    after = norm_input_statistics(balanced, photos[:4])
    assert set(after) == {layer.name for layer in balanced.layers if isinstance(layer, InstanceNormalization)}
    assert max(np.ptp(np.log10(spread)) for _, spread in before.values()) > 2  # channels decades apart
    for name, (mean, spread) in after.items():
        np.testing.assert_allclose(mean, 0, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(spread, 1, rtol=1e-3, err_msg=name)
    assert all(isinstance(balanced.get_layer(name).epsilon, list) for name in after)


def _norm_inputs(model, photos):
    """Each calibration photo's norm inputs, styles cycled as the exporter's statistics cycle them."""
    norms = [layer for layer in model.layers if isinstance(layer, InstanceNormalization)]
    probe = keras.Model(model.inputs, [norm.input for norm in norms])
    return norms, [
        [np.asarray(v) for v in probe({"photo": (p / 127.5 - 1)[None].astype(np.float32), "style": ONE_HOTS[i % 3][None]})]
        for i, p in enumerate(photos)
    ]


def test_a_clipped_norm_input_passes_one_on_at_most_the_quantiles_share_of_each_calibration_photo(generators):
    generator, _, photos = generators
    clipped = for_integer(generator, photos[:4], clip_quantile=0.99)
    norms, values = _norm_inputs(clipped, photos[:4])
    assert norms and all(norm.clip for norm in norms)
    over = np.array([[np.sum(np.abs(v) > 1 + 1e-5) for v in per_photo] for per_photo in values])  # photos x norms
    sizes = np.array([[v.size for v in per_photo] for per_photo in values])
    assert (over <= np.ceil(0.01 * (sizes - 1))).all(), over  # the quantile interpolates between two values
    shares = over / sizes
    assert (shares.max(axis=0) > 0.005).all(), shares  # each bound is one photo's quantile: that photo is clipped


def test_clipping_at_the_largest_calibration_value_keeps_the_drawing_of_every_calibration_photo(generators):
    generator, _, photos = generators
    clipped = for_integer(generator, photos[:4], clip_quantile=1.0)
    for k, photo in enumerate(photos[:4]):
        np.testing.assert_allclose(_draw(clipped, photo, k % 3), _draw(generator, photo, k % 3), atol=2e-5)


def test_a_per_channel_epsilon_and_the_clip_survive_a_keras_file_round_trip(generators, tmp_path):
    generator, _, photos = generators
    clipped = for_integer(generator, photos[:4])
    clipped.save(tmp_path / "clipped.keras")
    restored = keras.saving.load_model(tmp_path / "clipped.keras")
    assert restored.get_layer("stem_norm").epsilon == clipped.get_layer("stem_norm").epsilon
    assert restored.get_layer("stem_norm").clip
    np.testing.assert_array_equal(_draw(restored, photos[0]), _draw(clipped, photos[0]))
