"""Official PyTorch state_dict names -> keras_asym layers, with strict checking.

A state_dict here is a plain ``{name: numpy array}`` in PyTorch layout (NCHW
kernels). Convolution kernels ``(out, in, kh, kw)`` and transpose-convolution
kernels ``(in, out, kh, kw)`` both become Keras' ``(kh, kw, ·, ·)`` by the same
axis permutation. Loading is all or nothing: an unknown, missing or
mis-shaped tensor raises ``OfficialWeightsError`` naming it, and no weight is
changed.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

# Buffers PyTorch may store for norm layers that have no Keras counterpart
# (pre-0.4 InstanceNorm checkpoints carried running statistics).
IGNORED_SUFFIXES = ("num_batches_tracked", "running_mean", "running_var")


class OfficialWeightsError(ValueError):
    """An official checkpoint does not match the network it is loaded into."""


def style_generator_names(n_blocks: int = 9, model0_res: int = 0) -> dict[str, str]:
    """``ResnetStyle2Generator`` (official G_A) -> ``StyleGenerator`` layers."""
    names = {"model0.1": "stem_conv", "model0.4": "down1_conv", "model0.7": "down2_conv"}
    for i in range(model0_res):
        names[f"model0.{10 + i}.conv_block.1"] = f"block{i + 1}_conv1"
        names[f"model0.{10 + i}.conv_block.5"] = f"block{i + 1}_conv2"
    names["model.0"] = "style_conv"
    for j in range(n_blocks - model0_res):
        names[f"model.{3 + j}.conv_block.1"] = f"block{model0_res + j + 1}_conv1"
        names[f"model.{3 + j}.conv_block.5"] = f"block{model0_res + j + 1}_conv2"
    up = 3 + n_blocks - model0_res
    names.update({f"model.{up}": "up1_deconv", f"model.{up + 3}": "up2_deconv", f"model.{up + 7}": "head_conv"})
    return names


def photo_generator_names(n_blocks: int = 9) -> dict[str, str]:
    """``ResnetGenerator`` (official G_B) -> ``PhotoGenerator`` layers."""
    names = {"model.1": "stem_conv", "model.4": "down1_conv", "model.7": "down2_conv"}
    for i in range(n_blocks):
        names[f"model.{10 + i}.conv_block.1"] = f"block{i + 1}_conv1"
        names[f"model.{10 + i}.conv_block.5"] = f"block{i + 1}_conv2"
    up = 10 + n_blocks
    names.update({f"model.{up}": "up1_deconv", f"model.{up + 3}": "up2_deconv", f"model.{up + 7}": "head_conv"})
    return names


def _trunk_indices(n_layers: int) -> list[int]:
    """Indices of the convs in an official PatchGAN ``nn.Sequential`` (0, 2, 5, 8, ...)."""
    return [0] + [2 + 3 * (n - 1) for n in range(1, n_layers)]


def patch_discriminator_names(n_layers: int = 3) -> dict[str, str]:
    """``NLayerDiscriminator`` (official D_B, D_A_l/le/ll) -> ``PatchDiscriminator`` layers."""
    idx = _trunk_indices(n_layers)
    names = {f"model.{i}": f"layer{k + 1}_conv" for k, i in enumerate(idx)}
    last = idx[-1] + 3
    names.update({f"model.{last}": "patch1_conv", f"model.{last + 3}": "patch_out_conv"})
    return names


def style_discriminator_names(n_layers: int = 3) -> dict[str, str]:
    """``NLayerDiscriminatorCls`` (official D_A) -> ``StyleDiscriminator`` layers."""
    names = {f"model0.{i}": f"layer{k + 1}_conv" for k, i in enumerate(_trunk_indices(n_layers))}
    names.update({"model1.0": "patch1_conv", "model1.3": "patch_out_conv"})
    names.update({"model2.0": "cls1_conv", "model2.3": "cls2_conv", "model2.6": "cls_out_conv"})
    return names


_HED_STAGES = ("One", "Two", "Thr", "Fou", "Fiv")


def hed_names() -> dict[str, str]:
    """``pytorch-hed`` ``network-bsds500`` names (``module*``) -> ``HED`` layers."""
    names = {}
    for stage, (word, count) in enumerate(zip(_HED_STAGES, (2, 2, 3, 3, 3)), start=1):
        first = 0 if stage == 1 else 1
        for i in range(count):
            names[f"moduleVgg{word}.{first + 2 * i}"] = f"vgg{stage}_conv{i + 1}"
        names[f"moduleScore{word}"] = f"score{stage}"
    names["moduleCombine.0"] = "combine"
    return names


_ALEX_INDICES = (0, 3, 6, 8, 10)


def lpips_names(trunk: str = "lpips") -> dict[str, str]:
    """LPIPS v0.1 alex names -> ``LPIPS`` layers.

    ``trunk="lpips"``: a whole ``PNetLin`` state_dict (``net.sliceK.i``);
    ``"torchvision"``: torchvision's ``alexnet`` (``features.i``), the trunk
    LPIPS builds on; ``"lin"``: the published ``weights/v0.1/alex.pth`` (only
    the ``linK`` heads).
    """
    names = {}
    if trunk == "lpips":
        names.update({f"net.slice{k + 1}.{i}": f"alex_conv{k + 1}" for k, i in enumerate(_ALEX_INDICES)})
    elif trunk == "torchvision":
        names.update({f"features.{i}": f"alex_conv{k + 1}" for k, i in enumerate(_ALEX_INDICES)})
    if trunk in ("lpips", "lin"):
        names.update({f"lin{k}.model.1": f"lin{k}" for k in range(5)})
    if trunk not in ("lpips", "torchvision", "lin"):
        raise ValueError(f"Unknown LPIPS trunk naming {trunk!r}.")
    return names


def _normalise(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state_dict.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        # Newer pytorch-hed releases renamed ``moduleVggOne`` to ``netVggOne``.
        if key.startswith("net") and key[3:4].isupper():
            key = "module" + key[3:]
        out[key] = np.asarray(value)
    return out


def _layer_arrays(layer, prefix: str, tensors: dict, used: set, source: str) -> list[np.ndarray]:
    arrays = []
    for weight, suffix in zip(layer.weights, ("weight", "bias")):
        key = f"{prefix}.{suffix}"
        if key not in tensors:
            raise OfficialWeightsError(f"{source}: missing tensor {key!r} (for layer {layer.name!r}).")
        value = tensors[key]
        if suffix == "weight":
            if value.ndim != 4:
                raise OfficialWeightsError(f"{source}: tensor {key!r} has shape {value.shape}, expected a 4-d kernel.")
            value = value.transpose(2, 3, 1, 0)
        if tuple(value.shape) != tuple(weight.shape):
            raise OfficialWeightsError(
                f"{source}: tensor {key!r} maps to shape {tuple(value.shape)} but layer {layer.name!r} expects {tuple(weight.shape)}."
            )
        arrays.append(value.astype(np.float32))
        used.add(key)
    return arrays


def load_state_dict(
    model: keras.Model,
    state_dict: Mapping[str, np.ndarray],
    names: Mapping[str, str],
    source: str = "state_dict",
    extra: Mapping[str, keras.Variable] | None = None,
) -> None:
    """Copies an official state_dict into ``model`` through a name table.

    ``extra`` maps tensor names to single variables (e.g. LPIPS' scaling
    buffers), reshaped to the variable's shape. Raises ``OfficialWeightsError``
    before changing anything if a tensor is missing, unknown or mis-shaped.
    """
    tensors = _normalise(state_dict)
    used: set[str] = set()
    pending = []
    for prefix, layer_name in names.items():
        try:
            layer = model.get_layer(layer_name)
        except ValueError as err:
            raise OfficialWeightsError(f"{source}: model {model.name!r} has no layer {layer_name!r}.") from err
        pending.append((layer, _layer_arrays(layer, prefix, tensors, used, source)))
    extra_values = []
    for key, variable in (extra or {}).items():
        if key not in tensors:
            raise OfficialWeightsError(f"{source}: missing tensor {key!r}.")
        value = tensors[key]
        if value.size != int(np.prod(variable.shape)):
            raise OfficialWeightsError(f"{source}: tensor {key!r} has shape {value.shape}, expected {variable.shape} elements.")
        extra_values.append((variable, value.reshape(variable.shape).astype(np.float32)))
        used.add(key)
    unknown = sorted(k for k in tensors if k not in used and not k.endswith(IGNORED_SUFFIXES))
    if unknown:
        raise OfficialWeightsError(f"{source}: unknown tensors {unknown[:8]}{' ...' if len(unknown) > 8 else ''} for {model.name!r}.")
    for layer, arrays in pending:
        layer.set_weights(arrays)
    for variable, value in extra_values:
        variable.assign(value)


def load_lpips(model, state_dict: Mapping[str, np.ndarray], trunk: str = "lpips", source: str = "state_dict") -> None:
    """LPIPS weights; a full ``PNetLin`` dict also carries the scaling buffers."""
    extra = None
    if trunk == "lpips" and any(k.startswith("scaling_layer.") for k in state_dict):
        extra = {"scaling_layer.shift": model.shift, "scaling_layer.scale": model.scale}
    load_state_dict(model, state_dict, lpips_names(trunk), source=source, extra=extra)
