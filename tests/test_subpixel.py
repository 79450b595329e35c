"""Space-to-depth forms of the stem, head and transposed convolutions: the same functions, in Keras and in int8."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from export import subpixel
from keras_asym.models.networks import StyleGenerator


def _conv_pair(kernel, channels, filters, seed=0):
    rng = np.random.default_rng(seed)
    conv = keras.layers.Conv2D(filters, kernel, padding="valid")
    conv.build((None, None, None, channels))
    conv.set_weights(
        [rng.standard_normal((kernel, kernel, channels, filters)).astype(np.float32), rng.standard_normal(filters).astype(np.float32)]
    )
    block = subpixel.block_for(filters)
    fast = subpixel.SubpixelConv2D(filters, kernel, block)
    fast.build((None, None, None, channels))
    fast.set_weights([subpixel.subpixel_kernel(conv.get_weights()[0], block), np.tile(conv.get_weights()[1], block * block)])
    return conv, fast


def _transposed_pair(kernel, strides, channels, filters, seed=0):
    rng = np.random.default_rng(seed)
    conv = keras.layers.Conv2DTranspose(filters, kernel, strides=strides, padding="valid")
    conv.build((None, None, None, channels))
    conv.set_weights(
        [rng.standard_normal((kernel, kernel, filters, channels)).astype(np.float32), rng.standard_normal(filters).astype(np.float32)]
    )
    fast = subpixel.SubpixelConv2DTranspose(filters, kernel, strides)
    fast.build((None, None, None, channels))
    fast.set_weights([subpixel.transposed_kernel(conv.get_weights()[0], strides), np.tile(conv.get_weights()[1], strides * strides)])
    return conv, fast


def _close(got, expected):
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.parametrize(
    "kernel, channels, filters, height, width",
    [(7, 3, 24, 20, 18), (7, 24, 1, 21, 17), (5, 2, 3, 9, 11), (7, 4, 8, 7, 7)],
    ids=["stem, block 2", "head, block 4, odd sides", "5x5, 3 outputs", "one block"],
)
def test_a_convolution_on_the_space_to_depth_map_is_the_direct_convolution(kernel, channels, filters, height, width):
    conv, fast = _conv_pair(kernel, channels, filters)
    x = np.random.default_rng(1).standard_normal((2, height + kernel - 1, width + kernel - 1, channels)).astype(np.float32)
    direct = np.asarray(conv(x))
    _close(np.asarray(fast(x)), direct)
    traced = tf.function(fast, input_signature=[tf.TensorSpec((None, None, None, channels), tf.float32)])
    _close(np.asarray(traced(x)), direct)  # sizes unknown when traced: pads and crops computed


@pytest.mark.parametrize("kernel, strides, height, width", [(3, 2, 6, 7), (4, 2, 5, 5), (3, 3, 4, 5), (5, 2, 4, 4)])
def test_a_transposed_convolution_as_its_output_phases_is_the_transposed_convolution(kernel, strides, height, width):
    conv, fast = _transposed_pair(kernel, strides, 5, 4)
    x = np.random.default_rng(2).standard_normal((2, height, width, 5)).astype(np.float32)
    direct = np.asarray(conv(x))
    _close(np.asarray(fast(x)), direct)
    traced = tf.function(fast, input_signature=[tf.TensorSpec((None, None, None, 5), tf.float32)])
    _close(np.asarray(traced(x)), direct)


def test_a_wrong_kernel_rearrangement_is_caught():  # the comparisons above can fail
    conv, fast = _conv_pair(7, 3, 24)
    fast.set_weights([subpixel.subpixel_kernel(conv.get_weights()[0][::-1], 2), np.tile(conv.get_weights()[1], 4)])
    x = np.random.default_rng(3).standard_normal((1, 14, 14, 3)).astype(np.float32)
    assert np.abs(np.asarray(fast(x)) - np.asarray(conv(x))).max() > 1e-2
    conv, fast = _transposed_pair(3, 2, 5, 4)
    fast.set_weights([subpixel.transposed_kernel(conv.get_weights()[0][:, ::-1], 2), np.tile(conv.get_weights()[1], 4)])
    x = np.random.default_rng(4).standard_normal((1, 4, 4, 5)).astype(np.float32)
    assert np.abs(np.asarray(fast(x)) - np.asarray(conv(x))).max() > 1e-2


@pytest.mark.parametrize(
    "layer",
    [
        lambda: keras.layers.Conv2D(24, 7, strides=2),
        lambda: keras.layers.Conv2D(24, 7, padding="same"),
        lambda: keras.layers.Conv2D(24, 7, use_bias=False),
        lambda: keras.layers.Conv2D(24, 7, activation="relu"),
        lambda: keras.layers.Conv2D(24, 3),
        lambda: keras.layers.Conv2D(24, 7, dilation_rate=2),
        lambda: keras.layers.Conv2D(24, (7, 5)),
        lambda: keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same"),
        lambda: keras.layers.Conv2DTranspose(8, 3, strides=2, output_padding=1),
        lambda: keras.layers.Conv2DTranspose(8, 3, strides=1),
        lambda: keras.layers.Conv2DTranspose(8, 2, strides=3),
    ],
    ids=[
        "strided",
        "same",
        "no bias",
        "relu",
        "3x3",
        "dilated",
        "not square",
        "t same",
        "t output padding",
        "t stride 1",
        "t kernel < stride",
    ],
)
def test_a_layer_the_rewrite_does_not_compute_is_left_alone(layer):
    layer = layer()
    layer.build((None, 32, 32, 3))
    assert not subpixel.eligible(layer)


def test_a_convolution_wide_on_both_sides_is_left_alone():
    wide, narrow = keras.layers.Conv2D(16, 7), keras.layers.Conv2D(16, 7)
    wide.build((None, 32, 32, subpixel.MAX_NARROW_CHANNELS + 1))
    narrow.build((None, 32, 32, subpixel.MAX_NARROW_CHANNELS))
    assert not subpixel.eligible(wide) and subpixel.eligible(narrow)


def test_the_block_fills_one_int8_output_block():
    assert [subpixel.block_for(f) for f in (1, 3, 4, 24, 64)] == [4, 4, 2, 2, 2]


def test_the_generator_copy_draws_the_same_with_its_stem_head_and_upsampling_rewritten(tmp_path):
    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=8, n_blocks=2)
    fast, names = subpixel.for_speed(generator)
    assert names == ["stem_conv", "up1_deconv", "up2_deconv", "head_conv"]
    assert not any(type(layer) is keras.layers.Conv2DTranspose for layer in fast.layers)
    inputs = {
        "photo": np.random.default_rng(5).uniform(-1, 1, (1, 32, 40, 3)).astype(np.float32),
        "style": np.eye(3, dtype=np.float32)[1:2],
    }
    _close(np.asarray(fast(inputs)), np.asarray(generator(inputs)))
    fast.save(tmp_path / "fast.keras")
    np.testing.assert_array_equal(np.asarray(keras.saving.load_model(tmp_path / "fast.keras")(inputs)), np.asarray(fast(inputs)))


def test_in_int8_the_rewritten_convolution_keeps_the_original_ranges_and_draws_within_a_level(tmp_path):
    """Same calibration values (permuted), so the same output scale; the weights' scales per output phase are finer."""
    conv, fast = _conv_pair(7, 3, 24, seed=7)
    rng = np.random.default_rng(8)
    samples = [rng.uniform(-1, 1, (1, 38, 38, 3)).astype(np.float32) for _ in range(4)]
    outputs = []
    for i, layer in enumerate((conv, fast)):
        fn = tf.function(lambda x, layer=layer: layer(x), input_signature=[tf.TensorSpec((1, 38, 38, 3), tf.float32)])
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        path = tmp_path / f"{i}.tflite"
        path.write_bytes(converter.convert())
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        ops = [op["op_name"] for op in interpreter._get_ops_details()]  # noqa: SLF001
        assert ("SPACE_TO_DEPTH" in ops) == (i == 1)
        source = interpreter.get_input_details()[0]
        scale, zero = source["quantization"]
        interpreter.set_tensor(source["index"], np.clip(np.round(samples[0] / scale) + zero, -128, 127).astype(np.int8))
        interpreter.invoke()
        out = interpreter.get_output_details()[0]
        outputs.append((interpreter.get_tensor(out["index"]).astype(np.int32), out["quantization"]))
    (direct, direct_scale), (spaced, spaced_scale) = outputs
    # the output's range: the same calibration values (summed in another order)
    assert direct_scale[1] == spaced_scale[1] and np.isclose(direct_scale[0], spaced_scale[0], rtol=1e-6)
    assert np.abs(spaced - direct).max() <= 1  # in levels: products rounded into finer weight scales
    assert np.mean(spaced != direct) < 0.2
    level, zero = direct_scale
    assert np.abs((spaced - zero) * level - np.asarray(conv(samples[0]))).max() < 4 * level


def test_a_float_file_keeps_a_wide_stem_direct_and_an_int8_file_does_not():
    generator = StyleGenerator(ngf=64, n_blocks=1)  # stem 3 -> 64: 256 outputs on the 2x2 space-to-depth map
    assert subpixel.for_speed(generator, "float")[1] == ["up1_deconv", "up2_deconv", "head_conv"]
    assert subpixel.for_speed(generator, "int8")[1] == ["stem_conv", "up1_deconv", "up2_deconv", "head_conv"]
    narrow = StyleGenerator(ngf=24, n_blocks=1)  # 96 outputs: still spaced in float
    assert subpixel.for_speed(narrow, "float")[1][0] == "stem_conv"
    with pytest.raises(ValueError, match="precision must be one of"):
        subpixel.for_speed(generator, "fp16")


def test_a_clipping_norms_clip_moves_before_depth_to_space_where_the_int8_convolution_fuses_it(tmp_path):
    from export import tflite
    from export.balance import for_integer
    from export.savedmodel import save_savedmodel
    from keras_asym.layers.basic import InstanceNormalization

    keras.utils.set_random_seed(1)
    photos = [np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8) for i in range(3)]
    integer = for_integer(StyleGenerator(ngf=8, n_blocks=1), photos, 0.999)
    fast, _ = subpixel.for_speed(integer)
    clips = {layer.name: layer.clip for layer in fast.layers if isinstance(layer, (InstanceNormalization, subpixel._Subpixel))}
    assert {name for name, clip in clips.items() if clip and "norm" not in name} == {"stem_conv", "up1_deconv", "up2_deconv"}
    assert not any(clips[name] for name in ("stem_norm", "up1_norm", "up2_norm"))
    assert clips["down1_norm"] and not clips["head_conv"]  # norms after direct convolutions keep theirs; the head has none
    inputs = {"photo": np.random.default_rng(9).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32), "style": np.eye(3, dtype=np.float32)[:1]}
    _close(np.asarray(fast(inputs)), np.asarray(integer(inputs)))
    model = tflite.convert(save_savedmodel(fast, tmp_path / "saved", 32, 32, batch=1), "int8", photos, "uint8")
    assert not [row for row in tflite.reference_kernel_ops(model) if row["op"] == "RELU_N1_TO_1"]
