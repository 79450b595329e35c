"""Layers and networks: PyTorch semantics on small hand-checked cases, shapes, serialization."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_asym.evaluation import metrics
from keras_asym.layers.basic import ConcatenateStyle, InstanceNormalization, ReflectionPadding2D
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.models.networks import PatchDiscriminator, PhotoGenerator, StyleDiscriminator, StyleGenerator
from keras_asym.objective.hed import HED
from keras_asym.objective.lpips import LPIPS

rng = np.random.default_rng(0)


@pytest.mark.parametrize("pad", [1, 2, 3])
def test_reflection_padding_matches_numpy_reflect(pad):
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    out = np.asarray(ReflectionPadding2D(pad)(x))
    expected = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(out, expected)
    assert out[0, pad - 1, pad, 0] == x[0, 1, 0, 0]  # edge row is not repeated (torch ReflectionPad2d)


def test_reflection_padding_works_on_unknown_sizes_and_exports_without_mirror_pad():
    import tensorflow as tf

    layer = ReflectionPadding2D(3)
    fn = tf.function(lambda x: layer(x), input_signature=[tf.TensorSpec((1, None, None, 2), tf.float32)])
    x = rng.standard_normal((1, 9, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(fn(x).numpy(), np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="reflect"))
    inputs = keras.Input((8, 8, 2), batch_size=1)
    model = keras.Model(inputs, ReflectionPadding2D(3)(inputs))
    from ai_edge_litert.interpreter import Interpreter

    ops = {op["op_name"] for op in Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert())._get_ops_details()}
    assert "MIRROR_PAD" not in ops and "CONCATENATION" in ops  # XNNPACK runs slices and concatenations; not MIRROR_PAD


def test_instance_norm_is_per_sample_per_channel_biased_variance():
    x = rng.standard_normal((2, 6, 7, 3)).astype(np.float32) * 3 + 1
    out = np.asarray(InstanceNormalization()(x))
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    group_norm = keras.layers.GroupNormalization(groups=-1, center=False, scale=False, epsilon=1e-5)
    np.testing.assert_allclose(out, np.asarray(group_norm(x)), atol=1e-5)


def test_instance_norm_statistics_are_float64_under_a_float64_policy():
    x = rng.standard_normal((1, 64, 64, 2)) * 0.01 + 50.0  # a large offset: float32 statistics lose digits
    exact = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    wide = np.asarray(InstanceNormalization(dtype="float64")(x))
    assert wide.dtype == np.float64
    np.testing.assert_allclose(wide, exact, atol=1e-9)
    wide_per_channel = np.asarray(InstanceNormalization(epsilon=[1e-5, 1e-5], dtype="float64")(x))
    np.testing.assert_allclose(wide_per_channel, exact, atol=1e-9)
    narrow = np.asarray(InstanceNormalization()(x.astype(np.float32)))
    assert 1e-6 < np.abs(narrow - exact).max() < 0.1  # float32: the input's own rounding and the statistics'


def test_benchmarks_float64_copy_draws_what_the_generator_draws_in_float64():
    from benchmarks.common.float64 import float64_copy

    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=4, n_blocks=1)
    inputs = {"photo": rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32), "style": np.eye(3, dtype=np.float32)[:1]}
    narrow = np.asarray(generator(inputs))
    copy = float64_copy(generator)
    wide = np.asarray(copy({k: v.astype(np.float64) for k, v in inputs.items()}))
    assert wide.dtype == np.float64 and all(w.dtype == "float64" for w in copy.weights)
    assert 0 < np.abs(wide - narrow).max() < 1e-4


def _torch_conv_transpose(x, w, b, stride=2, padding=1, output_padding=1):
    """Reference ConvTranspose2d in NHWC; w in PyTorch layout (in, out, k, k)."""
    n, h, wd, cin = x.shape
    k = w.shape[2]
    full = np.zeros((n, (h - 1) * stride + k, (wd - 1) * stride + k, w.shape[1]), np.float64)
    for i in range(h):
        for j in range(wd):
            full[:, i * stride : i * stride + k, j * stride : j * stride + k, :] += np.einsum("nc,cokl->nklo", x[:, i, j, :], w)
    out_h = (h - 1) * stride - 2 * padding + k + output_padding
    out_w = (wd - 1) * stride - 2 * padding + k + output_padding
    full = np.pad(full, ((0, 0), (0, output_padding), (0, output_padding), (0, 0)))
    return full[:, padding : padding + out_h, padding : padding + out_w, :] + b


def test_upsampling_matches_pytorch_conv_transpose_with_output_padding():
    g = PhotoGenerator(ngf=2, n_blocks=0, input_channels=1, output_channels=1)
    layer = g.get_layer("up1_deconv")
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    layer.set_weights([w.transpose(2, 3, 1, 0), b])
    x = rng.standard_normal((1, 5, 6, 8)).astype(np.float32)
    crop = g.get_layer("up1_crop")
    out = np.asarray(crop(layer(x)))
    np.testing.assert_allclose(out, _torch_conv_transpose(x, w, b), atol=1e-5)
    assert out.shape == (1, 10, 12, 4)


def test_concatenate_style_tiles_the_vector():
    features = np.zeros((2, 3, 4, 5), np.float32)
    style = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    out = np.asarray(ConcatenateStyle()(features, style))
    assert out.shape == (2, 3, 4, 8)
    np.testing.assert_array_equal(out[1, 2, 3, 5:], [4, 5, 6])


def test_style_generator_any_multiple_of_four_and_style_matters():
    g = StyleGenerator(ngf=4, n_blocks=2, model0_res=1)
    photo = rng.uniform(-1, 1, (2, 36, 52, 3)).astype(np.float32)
    out1 = np.asarray(g({"photo": photo, "style": np.tile([[1.0, 0, 0]], (2, 1))}))
    out2 = np.asarray(g({"photo": photo, "style": np.tile([[0, 0, 1.0]], (2, 1))}))
    assert out1.shape == (2, 36, 52, 1)
    assert np.all(np.abs(out1) <= 1)
    assert np.max(np.abs(out1 - out2)) > 1e-4
    with pytest.raises(ValueError, match="multiples of 4"):
        StyleGenerator(ngf=4, n_blocks=1, height=30, width=32)


def test_weight_init_is_normal_002_with_zero_bias():
    g = StyleGenerator(ngf=16, n_blocks=2)
    kernel, bias = g.get_layer("block1_conv1").get_weights()
    assert abs(kernel.std() - 0.02) < 0.003 and abs(kernel.mean()) < 0.002
    assert not bias.any()


def test_discriminator_shapes():
    d = PatchDiscriminator(input_channels=2, ndf=4)
    assert d(np.zeros((1, 128, 128, 2), np.float32)).shape == (1, 14, 14, 1)
    da = StyleDiscriminator(image_size=256, ndf=4)
    patch, logits = da(np.zeros((2, 256, 256, 1), np.float32))
    assert patch.shape == (2, 30, 30, 1) and logits.shape == (2, 3)
    assert da.get_layer("cls_out_conv").kernel.shape[:2] == (8, 8)
    assert StyleDiscriminator(image_size=512, ndf=4).get_layer("cls_out_conv").kernel.shape[:2] == (16, 16)
    with pytest.raises(ValueError, match="multiple of 32"):
        StyleDiscriminator(image_size=200)


# Every network of the family, small, with an input it takes: the harness below runs each through what a user does
# with it (save and load, mixed precision, fp32 TFLite conversion), as keras-hub's model tests do for each backbone.
# The generators' shipped exports (uint8 in and out, metadata, quantization) are tested in test_export.py.
# Random photos: a constant one leaves instance norm nothing but rounding noise to normalise.
STYLE_INPUT = {"photo": rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32), "style": np.array([[0.2, 0.5, 0.3]], np.float32)}
NETWORKS = {
    "StyleGenerator": (lambda: StyleGenerator(ngf=4, n_blocks=2, model0_res=1), STYLE_INPUT),
    "MobileStyleGenerator": (lambda: MobileStyleGenerator(alpha=0.25, n_blocks=1), STYLE_INPUT),
    "MobileStyleGenerator, global context": (lambda: MobileStyleGenerator(alpha=0.25, n_blocks=1, global_context=True), STYLE_INPUT),
    "MobileStyleGenerator, context everywhere": (
        lambda: MobileStyleGenerator(alpha=0.25, n_blocks=1, context_everywhere=True),
        STYLE_INPUT,
    ),
    "MobileStyleGenerator, instance norm": (lambda: MobileStyleGenerator(alpha=0.25, n_blocks=1, instance_norm=True), STYLE_INPUT),
    "MobileStyleGenerator, transposed upsampling on the teacher's grid": (
        lambda: MobileStyleGenerator(alpha=0.25, n_blocks=1, transposed_up=True, teacher_grid=True),
        STYLE_INPUT,
    ),
    "PhotoGenerator": (lambda: PhotoGenerator(ngf=4, n_blocks=1), rng.uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)),
    "StyleDiscriminator": (
        lambda: StyleDiscriminator(image_size=64, ndf=4, n_layers=2),
        rng.uniform(-1, 1, (1, 64, 64, 1)).astype(np.float32),
    ),
    "PatchDiscriminator": (lambda: PatchDiscriminator(input_channels=3, ndf=4), rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)),
    "HED": (lambda: HED(), rng.uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)),
    "LPIPS": (
        lambda: LPIPS(),
        [rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32), rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)],
    ),
}


def _outputs(model, inputs) -> list[np.ndarray]:
    return [np.asarray(x, np.float32) for x in keras.tree.flatten(model(inputs))]


def _relative_error(got: list[np.ndarray], expected: list[np.ndarray]) -> float:
    return max(float(np.linalg.norm(g - e) / (np.linalg.norm(e) + 1e-6)) for g, e in zip(got, expected))


@pytest.mark.parametrize("name", NETWORKS)
def test_every_network_survives_a_keras_file_round_trip(tmp_path, name):
    factory, inputs = NETWORKS[name]
    keras.utils.set_random_seed(0)
    model = factory()
    expected = _outputs(model, inputs)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model)
    for a, b in zip(expected, _outputs(restored, inputs)):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("name", NETWORKS)
def test_every_network_computes_in_bfloat16_under_mixed_precision_and_stays_close_to_float32(name):
    factory, inputs = NETWORKS[name]
    keras.utils.set_random_seed(0)
    reference = factory()
    expected = _outputs(reference, inputs)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = factory()
        mixed(inputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    mixed.set_weights(reference.get_weights())
    convs = [layer for layer in mixed._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    # convolutions compute in bfloat16 on float32 weights (a head may be pinned to float32, as HED's is)
    assert sum(layer.compute_dtype == "bfloat16" for layer in convs) >= len(convs) - 1
    assert all(layer.variable_dtype == "float32" for layer in convs)
    got = _outputs(mixed, inputs)
    assert all(np.isfinite(g).all() for g in got)
    assert _relative_error(got, expected) < 0.05, name


@pytest.mark.parametrize("name", NETWORKS)
def test_every_network_converts_to_fp32_tflite_and_computes_what_keras_computes(tmp_path, name):
    """Through a SavedModel with fixed input shapes, the converter's route for a tracked Keras model."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    factory, inputs = NETWORKS[name]
    keras.utils.set_random_seed(0)
    model = factory()
    expected = _outputs(model, inputs)
    flat = keras.tree.flatten(inputs)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve",
        lambda *args: model(keras.tree.pack_sequence_as(inputs, list(args))),
        input_signature=[tf.TensorSpec(x.shape, tf.float32) for x in flat],
    )
    archive.write_out(str(tmp_path / "saved"), verbose=False)
    runner = Interpreter(model_content=tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert()).get_signature_runner()
    names = sorted(runner.get_input_details(), key=lambda key: int(key.rsplit("_", 1)[-1]))
    assert len(names) == len(flat)
    outputs = runner(**dict(zip(names, flat)))
    got = [outputs[key] for key in sorted(outputs, key=lambda key: int(key.rsplit("_", 1)[-1]))]
    assert [g.shape for g in got] == [e.shape for e in expected]
    assert all(np.abs(e).max() > 0 for e in expected)
    assert _relative_error(got, expected) < 1e-4, name


def test_the_style_reaches_gs_bottleneck_interior_only_as_a_per_channel_shift():
    """The official fusion (tiled style, zero-padded conv, instance norm): a constant style map adds a constant per
    channel, which instance norm removes, except on the one-pixel ring the zero padding touches and through that
    ring's share of each channel's statistics. So at initialisation switching the style moves the ring's features
    ten times more than the interior's, where it is a near-uniform shift (docs/unpaired_training.md)."""
    keras.utils.set_random_seed(0)
    g = StyleGenerator(ngf=8, n_blocks=2)
    probe = keras.Model(g.inputs, g.get_layer("style_norm").output)
    photo = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    a, b = (np.asarray(probe({"photo": photo, "style": np.float32([s])}))[0] for s in ([1, 0, 0], [0, 1, 0]))
    delta = b - a
    interior = delta[1:-1, 1:-1].reshape(-1, delta.shape[-1])
    ring = np.concatenate([delta[0], delta[-1], delta[:, 0], delta[:, -1]])
    assert np.abs(ring).mean() > 5 * np.abs(interior).mean()
    assert interior.std(0).mean() < 0.5 * np.abs(interior.mean(0)).mean()  # within the interior: mostly one shift per channel


@pytest.mark.parametrize(
    "context",
    [{}, {"global_context": True}, {"context_everywhere": True}, {"instance_norm": True}],
    ids=["plain", "blocks", "everywhere", "instance_norm"],
)
def test_a_student_draws_a_place_from_pixels_beyond_its_reach_only_with_global_context_or_instance_norm(context):
    photo = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    changed = photo.copy()
    changed[:, :, 96:] = 1.0  # columns 65+ px from the corner window below
    style = np.array([[1.0, 0.0, 0.0]], np.float32)
    corner = (slice(None), slice(0, 32), slice(0, 32))
    student = MobileStyleGenerator(alpha=0.25, n_blocks=1, **context)
    for layer in student.layers:  # a new student's contexts start neutral (zero kernels); a trained one's are not
        if layer.name.endswith(("_scale", "_shift")):
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    assert metrics.receptive_radius(student) < 96 - 31  # the change lies beyond its convolutions' reach
    a, b = (np.asarray(student({"photo": x, "style": style}))[corner] for x in (photo, changed))
    if context:
        assert np.abs(a - b).max() > 1e-4
    else:
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_context_everywhere_gives_every_convolution_its_features_mean_and_spread():
    student = MobileStyleGenerator(alpha=0.25, n_blocks=2, context_everywhere=True)
    names = {layer.name for layer in student.layers}
    for conv in ("stem", "down1", "down2", "down3", "style", "up1", "up2", "up3", "block1_context", "block2_context"):
        prefix = conv if conv.endswith("_context") else f"{conv}_context"
        assert {f"{prefix}_pool", f"{prefix}_pool2"} <= names, conv
    assert student.get_config()["context_everywhere"] is True
    # A new student's contexts are neutral, whatever the image: each halves its features (sigmoid 0), shifts none.
    names = ("up2_relu", "up2_context_shifted", "up2_context_pool2")
    probe = keras.Model(student.inputs, [student.get_layer(n).output for n in names])
    inputs = {"photo": rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32), "style": np.eye(3, dtype=np.float32)[:2]}
    features, modulated, spread = (np.asarray(t) for t in probe(inputs))
    assert features.std() > 0
    np.testing.assert_allclose(modulated, 0.5 * features, rtol=1e-6, atol=1e-7)
    # The spread each image's context sees: the mean of relu(y - mean) per channel, half the mean absolute deviation.
    centred = features - features.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(spread, np.maximum(centred, 0).mean(axis=(1, 2), keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(2 * spread, np.abs(centred).mean(axis=(1, 2), keepdims=True), rtol=1e-4, atol=1e-5)
    assert not any(name.endswith("_pool2") for name in (layer.name for layer in MobileStyleGenerator(global_context=True).layers))


def test_receptive_radius_counts_kernels_times_strides_along_the_layers():
    assert metrics.receptive_radius(StyleGenerator(ngf=4, n_blocks=9)) == 88  # 3 + 1 + 2 + 4 (style) + 18 x 4 + 2 + 1 + 3
    assert metrics.receptive_radius(StyleGenerator(ngf=4, n_blocks=2)) == 88 - 7 * 2 * 4
    assert metrics.receptive_radius(MobileStyleGenerator(alpha=0.25, n_blocks=1)) == 24  # stem 1 + 1 + 2 + 4 + 8 + 4 + 2 + 1 + head 1


def test_an_instance_norm_student_normalises_each_image_yet_keeps_the_style():
    student = MobileStyleGenerator(alpha=0.25, n_blocks=2, instance_norm=True)
    norms = {layer.name for layer in student.layers if isinstance(layer, InstanceNormalization)}
    expected = {f"{n}_in" for n in ("stem", "down1", "down2", "down3", "block1_expand", "block2_expand", "up1", "up2", "up3")}
    assert norms == expected  # the style fusion keeps batch norm: an instance norm would remove the tiled style
    assert student.get_config()["instance_norm"] is True
    probe = keras.Model(student.inputs, student.get_layer("down2_in").output)
    photo = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    normalised = np.asarray(probe({"photo": photo, "style": np.eye(3, dtype=np.float32)[:2]}))
    np.testing.assert_allclose(normalised.mean(axis=(1, 2)), 0, atol=1e-4)  # per image and channel, as the teacher's
    np.testing.assert_allclose(normalised.std(axis=(1, 2)), 1, atol=2e-2)
    for layer in student.layers:  # a trained student: batch norms that do not map every channel alike
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 2, w.shape).astype(np.float32) for w in layer.get_weights()])
    one = {"photo": photo[:1], "style": np.eye(3, dtype=np.float32)[:1]}
    other = {"photo": photo[:1], "style": np.eye(3, dtype=np.float32)[1:2]}
    assert np.abs(np.asarray(student(one)) - np.asarray(student(other))).max() > 1e-3


def test_transposed_upsampling_draws_on_the_pixel_grid_what_a_resize_cannot():
    keras.utils.set_random_seed(5)
    constant = {"photo": np.full((1, 128, 128, 3), 0.3, np.float32), "style": np.array([[1.0, 0.0, 0.0]], np.float32)}
    for transposed in (False, True):
        student = MobileStyleGenerator(alpha=0.25, n_blocks=1, transposed_up=transposed)
        ups = [layer for layer in student.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
        assert len(ups) == (3 if transposed else 0)
        assert any(isinstance(layer, keras.layers.UpSampling2D) for layer in student.layers) is not transposed
        margin = int(np.ceil(metrics.receptive_radius(student))) + 8  # beyond the zero padding's reach
        inner = np.asarray(student(constant))[0, margin:-margin, margin:-margin, 0]
        if transposed:  # a kernel for each output phase: a constant photo gives a pattern of period 8, the student's stride
            assert inner.std() > 1e-3
            np.testing.assert_allclose(inner[8:], inner[:-8], atol=1e-5)
            np.testing.assert_allclose(inner[:, 8:], inner[:, :-8], atol=1e-5)
        else:  # a resize's phases share one kernel: a constant photo gives a constant drawing
            assert inner.std() < 1e-5
    assert metrics.conv_gflops(student, 256, 256) < metrics.conv_gflops(MobileStyleGenerator(alpha=0.25, n_blocks=1), 256, 256)
    with pytest.raises(ValueError, match="transposed_up has no resize"):
        MobileStyleGenerator(alpha=0.25, n_blocks=1, transposed_up=True, full_res_conv=False)


def test_a_student_with_bottleneck_stride_4_runs_its_style_fusion_and_blocks_at_the_teachers_quarter_resolution():
    x = {"photo": np.zeros((1, 64, 64, 3), np.float32), "style": np.array([[0.0, 1.0, 0.0]], np.float32)}
    sizes = {}
    for stride in (8, 4):
        student = MobileStyleGenerator(alpha=0.25, n_blocks=2, transposed_up=True, bottleneck_stride=stride)
        blocks = keras.Model(student.inputs, [student.get_layer("style_concat").output, student.get_layer("block2_add").output])
        sizes[stride] = [int(out.shape[1]) for out in blocks(x)]
        assert student(x).shape == (1, 64, 64, 1)
        names = {layer.name for layer in student.layers}
        assert ("down3_conv" in names, "up1_deconv" in names) == (stride == 8, stride == 8)
        assert MobileStyleGenerator.from_config(student.get_config()).bottleneck_stride == stride
    assert sizes == {8: [8, 8], 4: [16, 16]}
    with pytest.raises(ValueError, match="bottleneck_stride must be 4 or 8"):
        MobileStyleGenerator(alpha=0.25, n_blocks=1, bottleneck_stride=2)


def _layers(model, names, x):
    for name in names:
        x = model.get_layer(name)(x)
    return np.asarray(x)


def test_on_the_teachers_grid_the_students_strided_and_transposed_convolutions_sample_where_the_papers_g_does():
    teacher = StyleGenerator(ngf=4, n_blocks=1, model0_res=0)
    rng = np.random.default_rng(3)
    fine, coarse = rng.uniform(-1, 1, (1, 32, 32, 8)), rng.uniform(-1, 1, (1, 8, 8, 16))
    for grid in (True, False):
        student = MobileStyleGenerator(alpha=0.5, n_blocks=1, transposed_up=True, teacher_grid=grid)
        for ours, theirs, x in (("down2", "down2", fine), ("up2", "up1", coarse)):
            kind = "conv" if ours.startswith("down") else "deconv"
            mine, paper = student.get_layer(f"{ours}_{kind}"), teacher.get_layer(f"{theirs}_{kind}")
            paper.set_weights([mine.get_weights()[0], np.zeros(paper.filters, np.float32)])  # the student's norm takes the bias
            before, after = ("pad", kind) if kind == "conv" else (kind, "crop")
            want = _layers(teacher, [f"{theirs}_{before}", f"{theirs}_{after}"], x)
            got = _layers(student, [f"{ours}_{before}", f"{ours}_{after}"] if grid else [f"{ours}_{kind}"], x)
            assert got.shape == want.shape
            if grid:
                np.testing.assert_allclose(got, want, atol=1e-5)
            else:  # Keras' "same" samples one pixel later
                assert np.abs(got - want).max() > 0.1
