"""Reading user images robustly and writing outputs atomically.

Every reader error is an ``ImageReadError`` naming the file and the reason,
so batch jobs can skip the file and go on.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_PIXELS = 80_000_000  # ~ 9000 x 9000: larger files are treated as decompression bombs


class ImageReadError(ValueError):
    """An input file is not a usable image."""


def list_images(path: str | Path) -> list[Path]:
    """The image files of a folder (sorted, by suffix), or ``[path]`` for a file."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"{path}: no such file or folder.")


def read_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """HxWx3 uint8 RGB, EXIF orientation applied, alpha composited on white, 16-bit scaled."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageReadError(f"{path}: {width}x{height} exceeds the {max_pixels:,}-pixel limit (decompression bomb guard).")
            image = ImageOps.exif_transpose(image)
            image.load()
            return _to_rgb8(image, path)
    except ImageReadError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as err:
        raise ImageReadError(f"{path}: not a readable image ({err}).") from err


def _to_rgb8(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 if array.max() <= 1.0 else 1.0
        gray = np.clip(array * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    rgb = np.asarray(image.convert("RGB"))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ImageReadError(f"{path}: unsupported image layout {rgb.shape}.")
    return rgb


def fit_to_size(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre crop to the target aspect ratio, then resize (area filter when shrinking)."""
    h, w = rgb.shape[:2]
    if h * width > w * height:
        crop = round(w * height / width)
        top = (h - crop) // 2
        rgb = rgb[top : top + crop]
    elif h * width < w * height:
        crop = round(h * width / height)
        left = (w - crop) // 2
        rgb = rgb[:, left : left + crop]
    shrink = rgb.shape[0] > height
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def write_image_atomic(path: str | Path, image: np.ndarray) -> None:
    """PNG/JPEG by suffix; written to a temporary file, then renamed (no half-written files)."""
    path = Path(path)
    data = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix or ".png", data)
    if not ok:
        raise OSError(f"{path}: could not encode image.")
    write_bytes_atomic(path, encoded.tobytes())


def write_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes_atomic(path, buffer.getvalue())


PARTIAL_SUFFIX = ".partial"


def remove_stale_partials(folder: str | Path) -> int:
    """Deletes the temporary files a killed writer left under ``folder`` (``.<name>.*.partial``); returns how many."""
    folder = Path(folder)
    stale = [p for p in folder.rglob(f".*{PARTIAL_SUFFIX}") if p.is_file()] if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` would, for every thread)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """``data`` to ``path`` through a hidden temporary file renamed into place, with the permissions a plain
    ``open(path, "wb")`` would give (``mkstemp`` alone would leave it readable by its owner only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data) -> None:
    """``data`` as indented JSON, atomically (``write_bytes_atomic``)."""
    write_bytes_atomic(path, json.dumps(data, indent=2).encode())


def save_keras_atomic(model, path: str | Path) -> None:
    """``model.save(path)`` through a hidden ``.partial.keras`` beside it, renamed into place: never a half-written model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
