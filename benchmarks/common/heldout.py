"""The shared aligned photos split once into held-out (quality) and calibration/fitting halves.

Benchmarks score quantized models and fitted generators only on photos they
never saw: the split is a fixed permutation (seed 1), so every benchmark and
run agrees on it. Flag-free, so any benchmark can import it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common.shared_data import shared_dir
from keras_asym.utils.imageio import list_images


def photo_split(count: int, work: Path) -> tuple[Path | None, Path | None]:
    """(quality photos, calibration photos) folders: the shared aligned photos split in two, so
    quantized models are never scored on the photos they were calibrated on; (None, None) without them.

    Each folder holds exactly its half: links a split with another ``count`` left in ``work`` are removed
    (an earlier version only added links, so a call with count 2 put 8 held-out photos among the calibration
    photos of every later call)."""
    folder = shared_dir() / "data" / "aligned_photos" / "images"
    files = list_images(folder) if folder.is_dir() else []
    if len(files) < count + 4:
        return None, None
    order = np.random.default_rng(1).permutation(len(files))
    split = {"quality": [files[i] for i in order[:count]], "calibration": [files[i] for i in order[count:]]}
    for name, chosen in split.items():
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {path.name: path.resolve() for path in chosen}
        for entry in folder.iterdir():  # a split with another count left other photos here
            if entry.name not in wanted or not entry.is_symlink() or entry.resolve() != wanted[entry.name]:
                entry.unlink()
        for file_name, target in wanted.items():
            if not (folder / file_name).is_symlink():
                (folder / file_name).symlink_to(target)
    return work / "quality", work / "calibration"
