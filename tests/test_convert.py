"""Official state_dict loading: strict names, shapes, all-or-nothing."""

from __future__ import annotations

import numpy as np
import pytest

from keras_asym.convert import official as names
from keras_asym.convert.official import OfficialWeightsError, load_state_dict
from keras_asym.models.networks import PatchDiscriminator, StyleGenerator
from keras_asym.objective.hed import HED
from keras_asym.objective.lpips import LPIPS


def _official_patch_state(ndf=4, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {
        "model.0": (ndf, channels),
        "model.2": (2 * ndf, ndf),
        "model.5": (4 * ndf, 2 * ndf),
        "model.8": (8 * ndf, 4 * ndf),
        "model.11": (1, 8 * ndf),
    }
    state = {}
    for prefix, (out, inp) in shapes.items():
        state[f"{prefix}.weight"] = rng.standard_normal((out, inp, 4, 4)).astype(np.float32)
        state[f"{prefix}.bias"] = rng.standard_normal(out).astype(np.float32)
    return state


def test_loads_and_transposes_kernels():
    d = PatchDiscriminator(input_channels=2, ndf=4)
    state = _official_patch_state()
    load_state_dict(d, state, names.patch_discriminator_names())
    np.testing.assert_array_equal(d.get_layer("layer2_conv").kernel.numpy(), state["model.2.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(d.get_layer("patch_out_conv").bias.numpy(), state["model.11.bias"])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("model.5.bias"), "missing tensor 'model.5.bias'"),
        (lambda s: s.__setitem__("model.99.weight", np.zeros((1, 1, 1, 1))), "unknown tensors \\['model.99.weight'\\]"),
        (lambda s: s.__setitem__("model.8.weight", np.zeros((32, 16, 3, 3))), "'model.8.weight' maps to shape"),
    ],
)
def test_bad_state_dicts_name_the_tensor_and_change_nothing(edit, message):
    d = PatchDiscriminator(input_channels=2, ndf=4)
    before = [w.numpy().copy() for w in d.weights]
    state = _official_patch_state()
    edit(state)
    with pytest.raises(OfficialWeightsError, match=message):
        load_state_dict(d, state, names.patch_discriminator_names(), source="D_A_l.pth")
    for a, b in zip(before, d.weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_norm_buffers_and_data_parallel_prefix_are_accepted():
    """A DataParallel checkpoint ("module." names, norm running statistics) loads the same weights as a plain one."""
    plain = _official_patch_state()
    d = PatchDiscriminator(input_channels=2, ndf=4)
    state = {f"module.{k}": v for k, v in plain.items()}
    state["module.model.3.running_mean"] = np.zeros(8, np.float32)
    load_state_dict(d, state, names.patch_discriminator_names())
    reference = PatchDiscriminator(input_channels=2, ndf=4)
    load_state_dict(reference, plain, names.patch_discriminator_names())
    for got, want in zip(d.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    kernels = [w for w in d.get_weights() if w.ndim == 4]
    np.testing.assert_array_equal(kernels[0], plain["model.0.weight"].transpose(2, 3, 1, 0))  # torch OIHW -> HWIO


def test_name_tables_cover_every_layer_with_weights():
    g = StyleGenerator(ngf=4, n_blocks=4, model0_res=2)
    table = names.style_generator_names(4, 2)
    with_weights = {layer.name for layer in g.layers if layer.weights}
    assert set(table.values()) == with_weights
    assert table["model0.10.conv_block.1"] == "block1_conv1" and table["model.3.conv_block.5"] == "block3_conv2"
    assert table["model.5"] == "up1_deconv" and table["model.12"] == "head_conv"
    hed = HED()
    hed.build((None, None, None, 3))
    assert set(names.hed_names().values()) == {layer.name for layer in hed.layers if layer.weights}


def test_lpips_accepts_torchvision_trunk_and_published_lin_heads():
    model = LPIPS()
    model.build((None, None, None, 3))
    rng = np.random.default_rng(1)
    trunk = {}
    for k, conv in zip((0, 3, 6, 8, 10), model.convs):
        kh, kw, cin, cout = conv.kernel.shape
        trunk[f"features.{k}.weight"] = rng.standard_normal((cout, cin, kh, kw)).astype(np.float32)
        trunk[f"features.{k}.bias"] = rng.standard_normal(cout).astype(np.float32)
    names.load_lpips(model, trunk, trunk="torchvision")
    np.testing.assert_array_equal(model.get_layer("alex_conv3").bias.numpy(), trunk["features.6.bias"])
    lin = {
        f"lin{k}.model.1.weight": np.abs(rng.standard_normal((1, c, 1, 1))).astype(np.float32)
        for k, c in enumerate((64, 192, 384, 256, 256))
    }
    names.load_lpips(model, lin, trunk="lin")
    np.testing.assert_array_equal(model.get_layer("lin2").kernel.numpy()[0, 0, :, 0], lin["lin2.model.1.weight"][0, :, 0, 0])
    with pytest.raises(OfficialWeightsError, match="unknown tensors \\['features.0.bias'"):
        names.load_lpips(model, {**trunk, **lin}, trunk="lin")
