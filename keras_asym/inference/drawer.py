"""Photos to drawings with a trained or imported style generator (Keras or TFLite).

``Drawer`` hides the model format: ``draw(photos, style)`` takes a batch of
uint8 RGB images of one size and returns uint8 grayscale drawings. Keras
models run through one ``tf.function`` per input shape (batches are padded to
a fixed size so a folder never re-traces); TFLite models through the LiteRT
interpreter at the size they were exported at (photos of another size are
resampled to it and the drawings back).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from edge_demo.runtime import cli
from edge_demo.runtime.generator import TFLiteGenerator, read_sidecar
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import STYLE_COUNT
from keras_asym.models.mobile import _scaled
from keras_asym.utils.keras_archive import MAX_CONFIG_BYTES, read_config


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


def resolve_model_path(model: str | Path) -> Path:
    """A ``.keras``/``.tflite`` file, or an ``import_official``/``train`` folder holding ``generator.keras``."""
    path = Path(model)
    if path.is_dir():
        candidate = path / "generator.keras"
        if not candidate.is_file():
            raise FileNotFoundError(f"{path}: folder has no generator.keras.")
        return candidate
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file.")
    if path.suffix not in (".keras", ".tflite"):
        raise ValueError(f"{path}: expected a .keras or .tflite generator, or a folder with generator.keras.")
    return path


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


class TFLiteBackend:
    """A TFLite generator (float or quantized) through ``edge_demo.runtime.generator``, one image at a time.

    An export runs at its own size only: a photo of another size is resampled to it, and the drawing back.
    """

    def __init__(self, path: Path, threads: int = 2):
        self.generator = TFLiteGenerator(path, threads=threads)
        self.size = (self.generator.height, self.generator.width)

    def _one(self, photo: np.ndarray, style: np.ndarray) -> np.ndarray:
        shape = photo.shape[:2]
        if shape == self.size:
            return self.generator.draw(photo, style)
        fitted = cv2.resize(photo, self.size[::-1], interpolation=cv2.INTER_AREA if shape[0] > self.size[0] else cv2.INTER_LINEAR)
        return cv2.resize(self.generator.draw(fitted, style), shape[::-1], interpolation=cv2.INTER_LINEAR)

    def __call__(self, photos: np.ndarray, style: np.ndarray) -> np.ndarray:
        """uint8 photos -> uint8 drawings, as the runtime draws them (lookup tables, no float round trip)."""
        return np.stack([self._one(photo, style) for photo in photos])


class Drawer:
    """Draws batches of same-sized uint8 RGB photos in a given style.

    Args:
        model: ``.keras`` or ``.tflite`` generator, or a folder with ``generator.keras``.
        batch_size: Keras batch size (TFLite runs one image at a time).
        threads: TFLite interpreter threads.
        jit_compile: run Keras models with XLA (faster; ``--nojit_compile`` in ``draw`` turns it off).
    """

    def __init__(self, model: str | Path, batch_size: int = 4, threads: int = 2, jit_compile: bool = True):
        self.path = resolve_model_path(model)
        if self.path.suffix == ".tflite":
            self.backend = TFLiteBackend(self.path, threads)
        else:
            self.backend = KerasBackend(self.path, batch_size, jit_compile)
        self.metadata = read_sidecar(self.path)  # a TFLite export's packed record, or the JSON beside the model

    @property
    def native_size(self) -> tuple[int, int] | None:
        """The size the model runs at: a TFLite export's, a Keras model's if it was saved with one, else ``None`` (any)."""
        return self.backend.size

    @property
    def trained_size(self) -> int | None:
        """The size to draw at when none is asked for: the native size, else the size the model was trained or
        fitted at, from its record (``settings.size``) or its folder's ``config.json`` (``image_size``; an
        ``import_official`` or ``train`` folder); ``None`` when nothing says."""
        if self.native_size:
            return max(self.native_size)
        size = (self.metadata.get("settings") or {}).get("size") if isinstance(self.metadata.get("settings"), dict) else None
        for config in (self.path.parent / "config.json", self.path.parent.parent / "config.json"):
            if size is None and config.is_file() and config.stat().st_size < MAX_CONFIG_BYTES:
                try:
                    size = json.loads(config.read_text()).get("image_size")
                except (ValueError, AttributeError, RecursionError):
                    size = None
        return int(size) if isinstance(size, int) and 16 <= size <= 4096 else None

    def draw(self, photos: np.ndarray, style: np.ndarray) -> np.ndarray:
        """(N,H,W,3) uint8 RGB -> (N,H,W) uint8 drawings; H and W multiples of 4."""
        photos = np.asarray(photos)
        if photos.ndim != 4 or photos.shape[-1] != 3 or photos.shape[1] % 4 or photos.shape[2] % 4:
            raise ValueError(f"photos must be (N, H, W, 3) with H, W multiples of 4, got {photos.shape}.")
        return self.backend(photos.astype(np.uint8, copy=False), np.asarray(style, np.float32))
