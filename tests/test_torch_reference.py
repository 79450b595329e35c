"""The PyTorch twin the benchmarks time against is the official computation, on the official weights.

``benchmarks.torch_reference`` is what every "vs PyTorch" ratio divides by, so it
is checked against the official code's own outputs and losses (the
``official_small`` fixture), and its weights against ours through a ``.pth``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import torch_reference as ref  # noqa: E402


def _official_step(official) -> ref.OfficialTrainingStep:
    cfg = official.config
    step = ref.OfficialTrainingStep(
        ngf=cfg["ngf"],
        ndf=cfg["ndf"],
        n_blocks=cfg["n_blocks"],
        progress=cfg["process"],
        trunc_levels=cfg["trunc_a"],
        lambda_a=cfg["lambda_A"],
        lambda_b=cfg["lambda_B"],
        lambda_trunc=cfg["lambda_A_trunc"],
        lambda_local=cfg["lambda_G_A_l"],
    )
    weights = official.root / "weights"
    for module, net in (
        (step.G, "G_A"),
        (step.F, "G_B"),
        (step.D_A, "D_A"),
        (step.D_B, "D_B"),
        *zip(step.D_local, ("D_A_l", "D_A_le", "D_A_ll")),
    ):
        module.load_state_dict(torch.load(weights / f"latest_net_{net}.pth", weights_only=True))
    ref.load_perceptual(step, official.state_dict("HED"), official.state_dict("LPIPS_alex"))
    return step


def _fixture_batch(official) -> dict:
    arrays = official._arrays
    t = lambda key: torch.from_numpy(arrays[key])  # noqa: E731
    return {
        "real_A": t("real_A"),
        "real_B": t("real_B"),
        "style": torch.from_numpy(arrays["style"][None].astype(np.float32)),
        "masks_A": [t("A_mask"), t("A_maske"), t("A_maskl")],
        "masks_B": [t("B_mask"), t("B_maske"), t("B_maskl")],
    }


def test_pytorch_twin_reproduces_the_official_images_and_generator_losses(official):
    step = _official_step(official)
    batch = _fixture_batch(official)
    with torch.no_grad():
        losses, fakes = step.generator_losses(batch)
    for key in ("fake_B", "rec_A", "fake_A", "rec_B"):
        np.testing.assert_allclose(fakes[key].numpy(), official._arrays[key], atol=2e-4, err_msg=key)
    expected = official.manifest["losses_G"]
    for name, value in losses.items():
        np.testing.assert_allclose(float(value), expected[name], rtol=2e-3, err_msg=name)
    with torch.no_grad():
        d_losses = step.discriminator_losses(batch, fakes["fake_B"], fakes["fake_A"])
    for name in ("D_A", "D_A_l", "D_A_le", "D_A_ll", "D_B"):  # D_A_cls: the official fake-side weighting is an indexing slip
        np.testing.assert_allclose(float(d_losses[name]), official.manifest["losses_D"][name], rtol=2e-3, err_msg=name)


def test_a_twin_step_updates_every_trained_network_and_no_frozen_one(official):
    step = _official_step(official)
    before = {
        name: [p.detach().clone() for p in module.parameters()]
        for name, module in (
            ("G", step.G),
            ("F", step.F),
            ("D_A", step.D_A),
            ("D_B", step.D_B),
            ("D_local", step.D_local),
            ("hed", step.hed),
            ("lpips", step.lpips),
        )
    }
    loss = step.step(_fixture_batch(official))
    assert np.isfinite(loss)
    for name, module in (("G", step.G), ("F", step.F), ("D_A", step.D_A), ("D_B", step.D_B), ("D_local", step.D_local)):
        assert any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters())), name
    for name, module in (("hed", step.hed), ("lpips", step.lpips)):
        assert all(torch.equal(a, b) for a, b in zip(before[name], module.parameters())), name


def test_keras_weights_reach_the_twin_through_a_pth_that_import_official_reads(tmp_path):
    import keras

    from keras_asym.convert.checkpoints import import_official
    from keras_asym.models.networks import StyleGenerator

    keras.utils.set_random_seed(3)
    original = StyleGenerator(ngf=8, n_blocks=2, model0_res=1)
    for w in original.weights:  # biases too, so a swapped transpose shows
        w.assign(np.random.default_rng(len(w.path)).normal(0, 0.05, w.shape).astype(np.float32))
    twin = ref.torch_style_generator(original)
    torch.save(twin.state_dict(), tmp_path / "latest_net_G_A.pth")
    imported = import_official(tmp_path, ngf=8, n_blocks=2, model0_res=1)[0]["generator"]
    for a, b in zip(original.get_weights(), imported.get_weights()):
        np.testing.assert_array_equal(a, b)
    photo = np.random.default_rng(0).uniform(-1, 1, (1, 64, 48, 3)).astype(np.float32)
    style = np.float32([[0.2, 0.5, 0.3]])
    ours = np.asarray(imported({"photo": photo, "style": style}))[0, ..., 0]
    with torch.no_grad():
        theirs = twin(torch.from_numpy(photo.transpose(0, 3, 1, 2).copy()), torch.from_numpy(style))[0, 0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
