"""Where the shared real data lives: ``$KERAS_ASYM_SHARED``, default ``../shared`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    return Path(os.environ.get("KERAS_ASYM_SHARED", Path(__file__).resolve().parents[3] / "shared"))
