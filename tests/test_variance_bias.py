"""Each norm's int8 variance bias: measured in the converted file, given back through the norm's epsilon."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from benchmarks.common.sensitivity import Sensitivity
from export import tflite, variance_bias
from export.balance import for_integer
from export.savedmodel import save_savedmodel
from keras_asym.layers.basic import InstanceNormalization
from keras_asym.models.networks import StyleGenerator

SIZE = 32


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=8, n_blocks=1)
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(4)]
    model = for_integer(generator, photos)
    return generator, model, photos, Sensitivity(model, SIZE, photos, tmp_path_factory.mktemp("variance_bias")).quantize()


def _norms(model):
    return [layer for layer in model.layers if isinstance(layer, InstanceNormalization)]


def test_every_norm_of_a_full_int8_file_is_measured_channel_by_channel(converted):
    _, model, photos, flatbuffer = converted
    measured = variance_bias.measure(flatbuffer, model, photos)
    assert set(measured) == {norm.name for norm in _norms(model)}
    for norm in _norms(model):
        bias, variance = measured[norm.name]
        assert bias.shape == variance.shape == (norm.input.shape[-1],)
        assert np.all(variance > 0) and np.all(np.isfinite(bias))
        assert np.all(np.abs(bias) < variance)  # rounding takes a part of the variance, not all of it
    assert any(np.any(bias != 0) for bias, _ in measured.values())


def test_norms_left_in_float_have_no_int8_variance_to_measure(converted, tmp_path):
    _, model, photos, _ = converted
    saved = save_savedmodel(model, tmp_path / "saved", SIZE, SIZE, batch=1)
    float_norms = tflite.convert(saved, "int8_float_norm", photos, "uint8")
    assert variance_bias.measure(float_norms, model, photos) == {}


def test_correcting_again_replaces_the_earlier_correction_and_never_lowers_epsilon(converted):
    generator, _, photos, _ = converted
    model = for_integer(generator, photos)
    norm = _norms(model)[0]
    before = np.array(norm.epsilon, np.float64)
    channels = before.shape[0]
    bias = np.linspace(-1e-3, 1e-3, channels)
    variance_bias.correct(model, {norm.name: bias})
    variance_bias.correct(model, {norm.name: bias})
    np.testing.assert_allclose(norm.epsilon, before + np.maximum(bias, 0), rtol=1e-12)
    variance_bias.correct(model, {norm.name: -np.ones(channels)})
    np.testing.assert_allclose(norm.epsilon, before, rtol=1e-12)
