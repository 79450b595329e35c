"""The project's one hash: sha256 of bytes and of files (pinned assets, backups, shipped models, downloads).

In the TensorFlow-free runtime, the lowest layer, so the camera demo, the library and the benchmarks share it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """A file's sha256, read in 1 MiB blocks (a model file is never held in memory whole for it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
