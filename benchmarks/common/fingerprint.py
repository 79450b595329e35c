"""What a cached export was made by: an export is reused only by the same weights through the same exporter code."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPORTER_SOURCES = ("export", "keras_asym/layers")  # the converter's input graph is built from these


def source_sha256(folders=EXPORTER_SOURCES, root: Path = ROOT) -> str:
    """sha256 over the names and bytes of every ``.py`` file in ``folders`` (relative to ``root``), sorted."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((root / folder).glob("*.py")):
            digest.update(f"{folder}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
