"""Photos to drawings with a trained or imported style generator (Keras or TFLite).

``Drawer`` hides the model format: ``draw(photos, style)`` takes a batch of
uint8 RGB images of one size and returns uint8 grayscale drawings. Keras
models run through one ``tf.function`` per input shape (batches are padded to
a fixed size so a folder never re-traces); TFLite models through the LiteRT
interpreter at the size they were exported at (photos of another size are
resampled to it and the drawings back). Keras models are loaded and run by
``keras_generator``, imported only for them: drawing with a TFLite file loads no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edge_demo.runtime.generator import TFLiteGenerator, read_sidecar
from keras_asym.utils.keras_archive import MAX_CONFIG_BYTES


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
            from keras_asym.inference.keras_generator import KerasBackend  # lazy: TensorFlow, for .keras files only

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
