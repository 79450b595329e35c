"""Winograd F(2x2, 3x3): the same convolution by other arithmetic, in Keras and in the exported fp32 file."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edge_demo.runtime.generator import TFLiteGenerator
from export import exporter, winograd
from keras_asym.models.networks import StyleGenerator


def _conv_pair(channels, filters, seed=0):
    rng = np.random.default_rng(seed)
    conv = keras.layers.Conv2D(filters, 3, padding="valid")
    conv.build((None, None, None, channels))
    conv.set_weights([rng.standard_normal((3, 3, channels, filters)).astype(np.float32), rng.standard_normal(filters).astype(np.float32)])
    fast = winograd.WinogradConv2D(filters)
    fast.build((None, None, None, channels))
    fast.set_weights([winograd.transform_kernel(conv.get_weights()[0]), conv.get_weights()[1]])
    return conv, fast


@pytest.mark.parametrize("height, width", [(10, 12), (9, 12), (10, 7), (3, 3)])
def test_a_winograd_convolution_is_the_direct_convolution_at_even_and_odd_sizes(height, width):
    conv, fast = _conv_pair(5, 7)
    x = np.random.default_rng(1).standard_normal((2, height, width, 5)).astype(np.float32)
    direct, other = np.asarray(conv(x)), np.asarray(fast(x))
    assert other.shape == direct.shape == (2, height - 2, width - 2, 7)
    assert np.abs(other - direct).max() <= 1e-5 * np.abs(direct).max()


def test_a_wrong_kernel_transform_is_caught():  # the comparison above can fail
    conv, fast = _conv_pair(4, 4)
    fast.set_weights([winograd.transform_kernel(conv.get_weights()[0][::-1]), conv.get_weights()[1]])
    x = np.random.default_rng(2).standard_normal((1, 8, 8, 4)).astype(np.float32)
    assert np.abs(np.asarray(fast(x)) - np.asarray(conv(x))).max() > 1e-2


def test_a_winograd_convolution_traced_without_its_size_crops_an_odd_side():
    import tensorflow as tf

    conv, fast = _conv_pair(3, 4)
    traced = tf.function(fast, input_signature=[tf.TensorSpec((1, None, None, 3), tf.float32)])
    for height, width in ((9, 12), (10, 7)):
        x = np.random.default_rng(height).standard_normal((1, height, width, 3)).astype(np.float32)
        direct = np.asarray(conv(x))
        np.testing.assert_allclose(np.asarray(traced(x)), direct, atol=1e-5 * np.abs(direct).max())


@pytest.mark.parametrize(
    "options",
    [
        {"strides": 2},
        {"padding": "same"},
        {"use_bias": False},
        {"activation": "relu"},
        {"dilation_rate": 2},
        {"groups": 2},
        {"kernel_size": 5},
    ],
    ids=lambda o: next(iter(o)),
)
def test_a_convolution_that_winograd_f2x3_does_not_compute_is_left_alone(options):
    options = dict(options)
    layer = keras.layers.Conv2D(8, options.pop("kernel_size", 3), **options)
    layer.build((None, 16, 16, 8))
    assert not winograd.eligible(layer, min_channels=8)
    plain = keras.layers.Conv2D(8, 3)
    plain.build((None, 16, 16, 8))
    assert winograd.eligible(plain, min_channels=8) and not winograd.eligible(plain, min_channels=9)


def test_only_wide_plain_3x3_stride_1_convolutions_are_rewritten():
    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=8, n_blocks=2)
    photo = np.random.default_rng(3).uniform(-1, 1, (1, 32, 40, 3)).astype(np.float32)
    style = np.array([[0.2, 0.5, 0.3]], np.float32)
    fast, names = winograd.for_speed(generator, min_channels=32)  # the bottleneck has 4 * ngf = 32 channels
    expected = [
        layer.name
        for layer in generator.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3) and layer.strides == (1, 1) and layer.filters == 32
    ]
    assert names == expected and len(names) == 5  # the style fusion and two per block
    assert sum(isinstance(layer, winograd.WinogradConv2D) for layer in fast.layers) == len(names)
    assert all(layer.strides == (2, 2) for layer in fast.layers if type(layer) is keras.layers.Conv2D and layer.kernel_size == (3, 3))
    reference = np.asarray(generator({"photo": photo, "style": style}))
    assert np.abs(np.asarray(fast({"photo": photo, "style": style})) - reference).max() < 1e-5
    assert winograd.for_speed(generator)[1] == []  # narrower than MIN_CHANNELS: nothing is worth rewriting


def test_the_winograd_layer_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    fast, _ = winograd.for_speed(StyleGenerator(ngf=8, n_blocks=1), min_channels=32)
    fast.save(tmp_path / "fast.keras")
    loaded = keras.saving.load_model(tmp_path / "fast.keras")
    photo = np.random.default_rng(6).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    inputs = {"photo": photo, "style": np.eye(3, dtype=np.float32)[:1]}
    np.testing.assert_array_equal(np.asarray(loaded(inputs)), np.asarray(fast(inputs)))


def test_the_fp32_winograd_export_reproduces_keras_with_the_winograd_ops_and_records_its_layers(tmp_path, monkeypatch):
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 32)
    keras.utils.set_random_seed(4)
    generator = StyleGenerator(ngf=8, n_blocks=2)
    generator.save(tmp_path / "g.keras")
    summary = exporter.export_generator(
        tmp_path / "g.keras", tmp_path / "out", (32, 40), ("fp32_winograd",), calibration_count=2, gpu_check="off", log=lambda *a: None
    )
    path = tmp_path / "out" / "drawing_fp32_winograd.tflite"
    record = json.loads(path.with_suffix(".json").read_text())
    assert len(record["winograd_layers"]) == 5
    assert record["subpixel_layers"] == ["stem_conv", "up1_deconv", "up2_deconv", "head_conv"]  # export.subpixel, on by default
    assert summary["variants"]["fp32_winograd"]["quality_vs_keras"]["psnr_db"] > exporter.PARITY_MIN_PSNR_DB
    ops = [op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()]
    assert ops.count("DEPTH_TO_SPACE") == 5 + 4 and ops.count("DEPTHWISE_CONV_2D") == 5 * 20  # 4 row and 16 column passes each
    photo = np.random.default_rng(5).uniform(-1, 1, (32, 40, 3)).astype(np.float32)
    got = TFLiteGenerator(path).run(photo, np.eye(3, dtype=np.float32)[2])
    reference = np.asarray(generator({"photo": photo[None], "style": np.eye(3, dtype=np.float32)[2:]}))[0]
    assert np.abs(got - reference).max() <= 1e-4


def test_a_wrong_winograd_file_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 32)
    wrong = lambda kernel: np.einsum("ia,abck,jb->ijck", winograd._G, kernel[::-1], winograd._G).astype(np.float32)  # noqa: E731
    monkeypatch.setattr(winograd, "transform_kernel", wrong)
    keras.utils.set_random_seed(4)
    StyleGenerator(ngf=8, n_blocks=1).save(tmp_path / "g.keras")
    with pytest.raises(exporter.ParityError, match="fp32_winograd TFLite does not reproduce Keras"):
        exporter.export_generator(
            tmp_path / "g.keras", tmp_path / "out", (32, 32), ("fp32_winograd",), calibration_count=2, gpu_check="off"
        )
    assert not (tmp_path / "out").exists()


def test_asking_fp32_winograd_of_a_model_with_nothing_to_rewrite_is_an_error(tmp_path):
    keras.utils.set_random_seed(4)
    StyleGenerator(ngf=8, n_blocks=1).save(tmp_path / "g.keras")  # 32 channels at the bottleneck, under MIN_CHANNELS
    with pytest.raises(ValueError, match="no 3x3 stride-1 convolution.*--nosubpixel"):
        exporter.export_generator(
            tmp_path / "g.keras", tmp_path / "out", (32, 32), ("fp32_winograd",), calibration_count=2, gpu_check="off", subpixel_convs=False
        )
    assert not (tmp_path / "out").exists()
