"""A ``.keras`` file read as what it declares, before Keras builds anything from it.

Keras checks a ``.keras`` zip against 4 GiB, so a 2 GiB ``config.json`` or a weights entry declared larger than the
file would be read (or trusted) whole. ``read_config`` holds the archive to what a keras-asym model needs and
returns its parsed ``config.json`` for the caller's own checks (``inference/keras_generator.check_keras_archive``
for generators); every problem is a ``ValueError`` naming the file, in one line.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

from edge_demo.runtime import cli

MAX_CONFIG_BYTES = 1 << 20  # a keras-asym model's config.json is a few kilobytes; Keras itself allows 4 GiB


def read_config(path: Path) -> tuple[object, zipfile.ZipInfo]:
    """(the parsed config.json, the weights entry) of the ``.keras`` archive ``path``, checked: the config is
    bounded and the weights are stored as Keras stores them, within the file."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            config_info, weights_info = entries.get("config.json"), entries.get("model.weights.h5")
            if config_info is None or weights_info is None:
                raise ValueError(f"{path}: not a .keras model (no config.json and model.weights.h5).")
            if config_info.file_size > MAX_CONFIG_BYTES:
                raise ValueError(
                    f"{path}: config.json declares {config_info.file_size:,} bytes (a keras-asym model's is under {MAX_CONFIG_BYTES:,})."
                )
            # Keras stores the weights uncompressed: then the declared size is the bytes really in the file,
            # and a deflated (or lying zip64) entry cannot pass a small file off as large weights
            weights_end = weights_info.header_offset + weights_info.compress_size  # its local header adds more
            if weights_info.compress_type != zipfile.ZIP_STORED or weights_info.compress_size != weights_info.file_size:
                raise ValueError(f"{path}: model.weights.h5 is compressed; Keras stores it as it is.")
            if weights_end > path.stat().st_size:
                raise ValueError(f"{path}: model.weights.h5 declares {weights_info.file_size:,} bytes the file does not hold.")
            raw = archive.read(config_info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error, OSError) as err:
        raise ValueError(f"{path}: not a readable .keras archive ({type(err).__name__}: {cli.one_line(err, 120)}).") from err
    try:
        return json.loads(raw), weights_info
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{path}: config.json is not readable JSON ({type(err).__name__}: {cli.one_line(err, 120)}).") from err


def load_checked(path: str | Path, registered: tuple[str, ...], what: str):
    """The model in ``path`` if the archive passes ``read_config`` and holds one of the ``registered`` classes
    (fixed architectures whose config has no size to inflate), else a ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file.")
    record, _ = read_config(path)
    name = record.get("registered_name") if isinstance(record, dict) else None
    if name not in registered:
        raise ValueError(f"{path}: holds a {cli.one_line(name, 60)}, not {what} ({', '.join(registered)}).")
    import keras  # lazy: reading an archive needs no Keras, only building its model does (TFLite drawing needs neither)

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001  (Keras raises many types for a bad archive)
        raise ValueError(f"{path}: not a readable {what} ({type(err).__name__}: {cli.one_line(err, 200)}).") from err


def load_weights_checked(model, path: str | Path, what: str):
    """``model`` (built from code) with the weights of the ``.keras`` file ``path``: the file's config is never
    built, so a config declaring huge layers costs nothing; weights that do not fit are a ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file.")
    read_config(path)
    try:
        model.load_weights(path)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: its weights do not fit {what} ({type(err).__name__}: {cli.one_line(err, 200)}).") from err
    return model
