"""Import a folder of official checkpoints into Keras models.

The official training saves ``<epoch>_net_<NAME>.pth`` per network (the
published model: ``checkpoints/pretrained/latest_net_G_A.pth``, 512x512,
ngf 64, 9 blocks). HED (``network-bsds500.pytorch``) and LPIPS
(``alex.pth`` heads + torchvision's AlexNet trunk) are separate public files.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from keras_asym.convert import official
from keras_asym.convert.torch_pickle import DEFAULT_MAX_BYTES, CheckpointFormatError, load_torch_file
from keras_asym.models.networks import PatchDiscriminator, PhotoGenerator, StyleDiscriminator, StyleGenerator
from keras_asym.objective.hed import HED
from keras_asym.objective.lpips import LPIPS
from keras_asym.utils.imageio import save_keras_atomic, write_json_atomic

# output name -> official network name
NETWORKS = {
    "generator": "G_A",
    "photo_generator": "G_B",
    "drawing_discriminator": "D_A",
    "photo_discriminator": "D_B",
    "nose_discriminator": "D_A_l",
    "eyes_discriminator": "D_A_le",
    "lips_discriminator": "D_A_ll",
}
HED_FILE = "network-bsds500.pytorch"
LPIPS_FILE = "alex.pth"


def _build(name: str, ngf: int, ndf: int, n_blocks: int, model0_res: int, image_size: int):
    if name == "generator":
        model = StyleGenerator(ngf=ngf, n_blocks=n_blocks, model0_res=model0_res)
        return model, official.style_generator_names(n_blocks, model0_res)
    if name == "photo_generator":
        return PhotoGenerator(ngf=ngf, n_blocks=n_blocks), official.photo_generator_names(n_blocks)
    if name == "drawing_discriminator":
        return StyleDiscriminator(image_size=image_size, ndf=ndf), official.style_discriminator_names()
    channels = 3 if name == "photo_discriminator" else 2
    return PatchDiscriminator(input_channels=channels, ndf=ndf, name=name), official.patch_discriminator_names()


def _read_for(model: keras.Model, path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """``path``'s tensors, allocating at most what ``model`` can need.

    The network's shapes are known before the file is opened: a checkpoint
    for it holds at most its parameters (float64 at worst) plus small norm
    buffers, read once as storage and once as tensors. Anything larger is
    refused before it is allocated.
    """
    need = 2 * 8 * parameter_count(model) + (1 << 20)
    return _finite(path, load_torch_file(path, max_bytes=min(need, max_bytes)))


def _finite(path: Path, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A network with a NaN or infinite weight draws blank pages: refused at import, naming the tensor."""
    for name, array in state.items():
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise CheckpointFormatError(f"{path}: tensor {name[:80]!r} holds NaN or infinite values.")
    return state


def load_lpips_files(lin_path: str | Path, alexnet_path: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> LPIPS:
    """LPIPS from the published ``alex.pth`` heads and an AlexNet trunk.

    The trunk comes from torchvision's ``alexnet-owt-*.pth`` (``features.*``;
    the classifier is ignored) or from a Keras ``.weights.h5`` of
    ``keras_asym.objective.lpips.LPIPS`` saved earlier.
    """
    model = LPIPS()
    model.build((None, None, None, 3))
    if alexnet_path is not None:
        alexnet_path = Path(alexnet_path)
        if alexnet_path.name.endswith(".weights.h5"):
            model.load_weights(alexnet_path)
        else:
            # torchvision's file also holds the classifier (about 4/5 of its bytes), which is dropped.
            trunk = {k: v for k, v in load_torch_file(alexnet_path, max_bytes=max_bytes).items() if k.startswith("features.")}
            _finite(alexnet_path, trunk)
            official.load_lpips(model, trunk, trunk="torchvision", source=str(alexnet_path))
    official.load_lpips(model, _read_for(model, Path(lin_path), max_bytes), trunk="lin", source=str(lin_path))
    return model


def import_official(
    checkpoint_dir: str | Path,
    ngf: int = 64,
    ndf: int = 64,
    n_blocks: int = 9,
    model0_res: int = 0,
    image_size: int = 512,
    epoch: str = "latest",
    hed_path: str | Path | None = None,
    lpips_path: str | Path | None = None,
    alexnet_path: str | Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[dict[str, keras.Model], dict[str, str]]:
    """Builds every network whose checkpoint is present; G (``G_A``) is required.

    Returns ``(models, sources)`` with ``sources[name]`` the file it came from.
    No file may allocate more than its network needs, nor ``max_bytes``.
    """
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: checkpoint directory not found.")
    models, sources = {}, {}
    for name, net in NETWORKS.items():
        path = folder / f"{epoch}_net_{net}.pth"
        if not path.is_file():
            if name == "generator":
                raise FileNotFoundError(f"{path}: the style generator checkpoint (G_A) is required.")
            continue
        model, table = _build(name, ngf, ndf, n_blocks, model0_res, image_size)
        official.load_state_dict(model, _read_for(model, path, max_bytes), table, source=str(path))
        models[name], sources[name] = model, str(path)
    hed_path = Path(hed_path) if hed_path else folder / HED_FILE
    if hed_path.is_file():
        hed = HED()
        hed.build((None, None, None, 3))
        official.load_state_dict(hed, _read_for(hed, hed_path, max_bytes), official.hed_names(), source=str(hed_path))
        models["hed"], sources["hed"] = hed, str(hed_path)
    lpips_path = Path(lpips_path) if lpips_path else folder / LPIPS_FILE
    if lpips_path.is_file():
        models["lpips"] = load_lpips_files(lpips_path, alexnet_path, max_bytes)
        sources["lpips"] = str(lpips_path) + (f" + {alexnet_path}" if alexnet_path else " (AlexNet trunk not given)")
    return models, sources


def save_models(models: dict[str, keras.Model], output: str | Path, config: dict) -> list[Path]:
    """Writes ``<name>.keras`` per model and ``config.json``, each atomically."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in models.items():
        final = output / f"{name}.keras"
        save_keras_atomic(model, final)
        written.append(final)
    write_json_atomic(output / "config.json", config)
    written.append(output / "config.json")
    return written


def parameter_count(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights))
