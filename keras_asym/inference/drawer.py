"""Photos to drawings with a trained or imported style generator (Keras or TFLite).

``Drawer`` hides the model format: ``draw(photos, style)`` takes a batch of
uint8 RGB images of one size and returns uint8 grayscale drawings. Keras
models run through one ``tf.function`` per input shape (batches are padded to
a fixed size so a folder never re-traces); TFLite models through the LiteRT
interpreter, resized once per input shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.styles import STYLE_COUNT


def check_generator(generator, where: str) -> None:
    """Raises ``ValueError`` naming ``where`` unless ``generator`` maps {photo, style} to one image."""
    inputs = generator.input
    if not (isinstance(inputs, dict) and set(inputs) == {"photo", "style"}):
        raise ValueError(f"{where}: not a style generator (inputs must be 'photo' and 'style').")
    if generator.input["style"].shape[-1] != STYLE_COUNT:
        raise ValueError(f"{where}: style input has {generator.input['style'].shape[-1]} entries, expected {STYLE_COUNT}.")


def load_generator(path: str | Path):
    """A style generator from a ``.keras`` file, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such generator file.")
    try:
        generator = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001  (Keras raises many types for a bad archive)
        raise ValueError(f"{path}: not a readable .keras model ({type(err).__name__}: {err}).") from err
    check_generator(generator, str(path))
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
        self._fn = tf.function(lambda photo, style: self.model({"photo": photo, "style": style}, training=False), jit_compile=jit_compile)

    def __call__(self, photos: np.ndarray, style: np.ndarray) -> np.ndarray:
        n = len(photos)
        pad = (-n) % self.batch_size
        if pad:
            photos = np.concatenate([photos, np.repeat(photos[-1:], pad, axis=0)])
        styles = np.repeat(style[None], len(photos), axis=0)
        outs = [
            np.asarray(self._fn(photos[i : i + self.batch_size], styles[i : i + self.batch_size]))
            for i in range(0, len(photos), self.batch_size)
        ]
        return np.concatenate(outs)[:n]


class TFLiteBackend:
    """A TFLite generator (float or quantized) through ``edge_demo.runtime.generator``, one image at a time."""

    def __init__(self, path: Path, threads: int = 2):
        self.generator = TFLiteGenerator(path, threads=threads)

    def __call__(self, photos: np.ndarray, style: np.ndarray) -> np.ndarray:
        return np.stack([self.generator.run(photo, style) for photo in photos])


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
        sidecar = self.path.with_suffix(".json")
        self.metadata = json.loads(sidecar.read_text()) if sidecar.is_file() else {}

    def draw(self, photos: np.ndarray, style: np.ndarray) -> np.ndarray:
        """(N,H,W,3) uint8 RGB -> (N,H,W) uint8 drawings; H and W multiples of 4."""
        photos = np.asarray(photos)
        if photos.ndim != 4 or photos.shape[-1] != 3 or photos.shape[1] % 4 or photos.shape[2] % 4:
            raise ValueError(f"photos must be (N, H, W, 3) with H, W multiples of 4, got {photos.shape}.")
        x = photos.astype(np.float32) / 127.5 - 1.0
        y = self.backend(x, np.asarray(style, np.float32))
        return np.clip((y[..., 0] + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
