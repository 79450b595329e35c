"""Import the official PyTorch checkpoints (no torch needed) as Keras models.

    python -m keras_asym.import_official --checkpoint_dir checkpoints/pretrained --output models/official

Reads ``<epoch>_net_G_A.pth`` (required) and, when present, ``G_B``, ``D_A``,
``D_B``, ``D_A_l/le/ll``, ``network-bsds500.pytorch`` (HED) and ``alex.pth``
(LPIPS heads; pass ``--alexnet`` for the trunk). Writes ``generator.keras``,
``photo_generator.keras``, the discriminators, ``hed.keras``, ``lpips.keras``
and ``config.json`` into ``--output``. Files are unpickled by a restricted
reader: a checkpoint that names anything but tensors, or that would allocate
more than its network needs, is refused. Exit status 0 done, 2 a checkpoint
was refused or does not fit the architecture (nothing is written).
"""

from __future__ import annotations

from pathlib import Path

from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.styles import STYLE_NAMES
from keras_asym.convert.checkpoints import import_official, parameter_count, save_models
from keras_asym.convert.official import OfficialWeightsError
from keras_asym.convert.torch_pickle import CheckpointFormatError, UnsafeCheckpointError

_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None, "Folder of official .pth files.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Folder for the .keras files and config.json.", required=True)
_NGF = flags.DEFINE_integer("ngf", 64, "Generator width (official 64).", lower_bound=1, upper_bound=256)
_NDF = flags.DEFINE_integer("ndf", 64, "Discriminator width (official 64).", lower_bound=1, upper_bound=256)
_N_BLOCKS = flags.DEFINE_integer("n_blocks", 9, "ResNet blocks per generator (official 9).", lower_bound=0, upper_bound=64)
_MODEL0_RES = flags.DEFINE_integer(
    "model0_res", 0, "Blocks before the style vector is inserted (official 0).", lower_bound=0, upper_bound=64
)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 512, "Training size of D_A's class head (official 512).", lower_bound=32, upper_bound=2048)
_EPOCH = flags.DEFINE_string("epoch", "latest", "Checkpoint prefix: <epoch>_net_G_A.pth.")
_HED = flags.DEFINE_string("hed", None, "HED weights (default: <checkpoint_dir>/network-bsds500.pytorch).")
_LPIPS = flags.DEFINE_string("lpips", None, "LPIPS v0.1 alex heads (default: <checkpoint_dir>/alex.pth).")


def _names_a_file(path: str | None) -> bool:
    """A path the OS cannot even look up (too long, a NUL byte) names no file: refused as one, not raised."""
    try:
        return path is None or Path(path).is_file()
    except (OSError, ValueError):
        return False


for _name in ("hed", "lpips"):  # named files must exist; an unnamed one is looked for in --checkpoint_dir
    flags.register_validator(_name, _names_a_file, message="names no readable file")
_ALEXNET = flags.DEFINE_string("alexnet", None, "AlexNet trunk for LPIPS: torchvision alexnet .pth or LPIPS .weights.h5.")
_MAX_MB = flags.DEFINE_integer(
    "max_checkpoint_mb",
    2048,
    "Refuse to allocate more than this for one file's tensors (each file is also held to what its network needs).",
    lower_bound=1,
    upper_bound=65536,
)


def main(argv):
    del argv

    config = {
        "ngf": _NGF.value,
        "ndf": _NDF.value,
        "n_blocks": _N_BLOCKS.value,
        "model0_res": _MODEL0_RES.value,
        "image_size": _IMAGE_SIZE.value,
        "style_names": list(STYLE_NAMES),
        "input_range": [-1.0, 1.0],
    }
    try:
        cli.output_folder(_OUTPUT.value, create=False)  # before minutes of reading, and nothing left if the import fails
        models, sources = import_official(
            _CHECKPOINT_DIR.value,
            ngf=_NGF.value,
            ndf=_NDF.value,
            n_blocks=_N_BLOCKS.value,
            model0_res=_MODEL0_RES.value,
            image_size=_IMAGE_SIZE.value,
            epoch=_EPOCH.value,
            hed_path=_HED.value,
            lpips_path=_LPIPS.value,
            alexnet_path=_ALEXNET.value,
            max_bytes=_MAX_MB.value << 20,
        )
    except (FileNotFoundError, OfficialWeightsError, CheckpointFormatError, UnsafeCheckpointError, ValueError) as err:
        cli.error("import_official", err)
        return cli.BAD_INPUT
    config["sources"] = sources
    written = save_models(models, _OUTPUT.value, config)
    print(f"{'network':<24}{'parameters':>12}  source")
    for name, model in models.items():
        print(f"{name:<24}{parameter_count(model):>12,}  {sources[name]}")
    print(f"wrote {len(written)} files to {_OUTPUT.value}")
    return 0


if __name__ == "__main__":
    cli.run(main)
