"""Where the shared real data lives: ``$KERAS_ASYM_SHARED``, default ``../shared`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    return Path(os.environ.get("KERAS_ASYM_SHARED", Path(__file__).resolve().parents[3] / "shared"))


def clip_faces() -> tuple[list, str]:
    """Six faces for a demo clip: the shared aligned photos when present, else procedural portraits; and where from."""
    import numpy as np

    from keras_asym.utils.imageio import list_images, read_rgb

    folder = shared_dir() / "data" / "aligned_photos" / "images"
    if folder.is_dir():
        return [read_rgb(p) for p in list_images(folder)[:6]], str(folder)
    from keras_asym.data.procedural import render_photo, sample_face

    rng = np.random.default_rng(0)
    return [render_photo(sample_face(rng), 256)[0] for _ in range(6)], "procedural portraits"
