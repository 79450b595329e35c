"""A ``.keras`` style generator: refused before Keras builds it if the archive is not one (or declares more than
it holds), loaded, checked to draw, and run in fixed-size batches by ``KerasBackend`` for ``drawer.Drawer``."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge_demo.runtime import cli
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import STYLE_COUNT
from keras_asym.models.mobile import _scaled
from keras_asym.models.networks import StyleGenerator  # noqa: F401  (registers the classes GENERATORS names, also in a command)
from keras_asym.utils.keras_archive import read_config


def check_generator(generator, where: str) -> None:
    """Raises ``ValueError`` naming ``where`` unless ``generator`` maps {photo, style} to one image."""
    inputs = generator.input
    if not (isinstance(inputs, dict) and set(inputs) == {"photo", "style"}):
        raise ValueError(f"{where}: not a style generator (inputs must be 'photo' and 'style').")
    if generator.input["style"].shape[-1] != STYLE_COUNT:
        raise ValueError(f"{where}: style input has {generator.input['style'].shape[-1]} entries, expected {STYLE_COUNT}.")


GENERATORS = ("keras_asym>StyleGenerator", "keras_asym>MobileStyleGenerator")


def _least_parameters(name: str, config: dict) -> int:
    """A lower bound on the parameters a generator config builds (its residual blocks alone)."""
    if name == "keras_asym>StyleGenerator":
        return int(config.get("n_blocks", 9)) * 2 * 9 * (4 * int(config.get("ngf", 64))) ** 2
    return int(config.get("n_blocks", 6)) * 2 * int(config.get("expansion", 4)) * _scaled(64, float(config.get("alpha", 1.0))) ** 2


def check_keras_archive(path: Path) -> None:
    """Refuses, before Keras builds anything, a ``.keras`` file that is not a keras-asym generator or whose
    config declares more than its weights can hold (a 2 GiB config, or ``ngf: 1500`` beside a small weights file,
    would otherwise allocate gigabytes)."""
    record, weights_info = read_config(path)
    name = record.get("registered_name") if isinstance(record, dict) else None
    config = record.get("config") if isinstance(record, dict) else None
    if name not in GENERATORS or not isinstance(config, dict):
        raise ValueError(f"{path}: holds a {str(name)[:60]}, not a keras-asym generator ({', '.join(GENERATORS)}).")
    try:
        least = _least_parameters(name, config)
        channels = (config.get("input_channels", 3), config.get("output_channels", 1), config.get("style_dim", STYLE_COUNT))
    except (TypeError, ValueError, OverflowError) as err:  # OverflowError: int(Infinity), which JSON may hold
        raise ValueError(f"{path}: config.json has a malformed setting ({cli.one_line(err, 120)}).") from err
    if channels != (3, 1, STYLE_COUNT):
        raise ValueError(
            f"{path}: maps {channels[0]} channels and a {channels[2]}-style vector to {channels[1]}; a generator maps RGB and 3 styles to 1."
        )
    if least * 4 > weights_info.file_size:
        raise ValueError(
            f"{path}: config.json declares at least {least:,} parameters, more than its {weights_info.file_size:,}-byte weights file holds."
        )


def load_generator(path: str | Path):
    """A style generator from a ``.keras`` file, with a clear error for anything else, checked to run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such generator file.")
    check_keras_archive(path)
    try:
        generator = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001  (Keras raises many types for a bad archive)
        raise ValueError(f"{path}: not a readable .keras model ({type(err).__name__}: {cli.one_line(err, 200)}).") from err
    check_generator(generator, str(path))
    shape = generator.input["photo"].shape
    size = (shape[1] or 32, shape[2] or 32)
    try:  # a generator that loads can still fail on a photo: find out here, not in the middle of a job
        out = generator({"photo": np.zeros((1, *size, 3), np.float32), "style": np.full((1, STYLE_COUNT), 1 / 3, np.float32)})
    except Exception as err:  # noqa: BLE001  (any failure of a loaded model's first call is the file's)
        raise ValueError(
            f"{path}: the model does not run on a {size[0]}x{size[1]} photo ({type(err).__name__}: {cli.one_line(err, 200)})."
        ) from err
    if tuple(out.shape) != (1, *size, 1):
        raise ValueError(
            f"{path}: draws a {tuple(out.shape)} image for a (1, {size[0]}, {size[1]}, 3) photo; a generator draws (1, H, W, 1)."
        )
    if not np.isfinite(np.asarray(out)).all():
        raise ValueError(f"{path}: draws non-finite values (its weights hold NaN or infinity).")
    return generator


class KerasBackend:
    """A ``.keras`` generator in fixed-size batches, one traced function per input size.

    ``jit_compile``: XLA. It draws about 20% faster than a plain ``tf.function``;
    its first call at a size compiles (``docs/results/inference.json``,
    ``first_call_s``: 1.6 s against 1.1 s for tracing at 256², 3.0 s against
    2.6 s at 512², on the 2-core Xeon of 2026-12-02).
    """

    def __init__(self, path: Path, batch_size: int, jit_compile: bool = True):
        self.model = load_generator(path)
        self.batch_size = batch_size
        shape = self.model.input["photo"].shape
        self.size = (int(shape[1]), int(shape[2])) if shape[1] and shape[2] else None  # a generator saved with a fixed size
        self._fn = tf.function(lambda photo, style: self.model({"photo": photo, "style": style}, training=False), jit_compile=jit_compile)

    def __call__(self, photos: np.ndarray, style: np.ndarray) -> np.ndarray:
        """uint8 photos -> uint8 drawings."""
        photos = to_model(photos)
        n = len(photos)
        pad = (-n) % self.batch_size
        if pad:
            photos = np.concatenate([photos, np.repeat(photos[-1:], pad, axis=0)])
        styles = np.repeat(style[None], len(photos), axis=0)
        try:
            outs = [
                np.asarray(self._fn(photos[i : i + self.batch_size], styles[i : i + self.batch_size]))
                for i in range(0, len(photos), self.batch_size)
            ]
        except (tf.errors.OpError, ValueError) as err:  # a size the model cannot take, or memory: the items', not a bug
            detail = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise ValueError(
                f"the generator cannot draw {photos.shape[1]}x{photos.shape[2]} photos ({cli.one_line(detail, 200)})."
            ) from err
        drawings = np.concatenate(outs)[:n, ..., 0]
        return to_pixels(drawings)
