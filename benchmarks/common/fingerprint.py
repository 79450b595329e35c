"""What a cached export was made by: an export is reused only from the same weights, exporter code and options."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXPORTER_SOURCES = ("export", "keras_asym/layers")  # the converter's input graph is built from these
STAMP = "weights.sha256"  # the file in an export folder holding what it was made from


def source_sha256(folders=EXPORTER_SOURCES, root: Path = ROOT) -> str:
    """sha256 over the names and bytes of every ``.py`` file in ``folders`` (relative to ``root``), sorted."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((root / folder).glob("*.py")):
            digest.update(f"{folder}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def weights_sha256(model) -> str:
    """sha256 over a Keras model's weights, in order: the same for the same weights however the file was saved."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def export_fingerprint(weights: str, options: dict) -> str:
    """What an export folder is made from: the weights' digest, the exporter's code and the export options."""
    return f"{weights} {source_sha256()} {json.dumps(options, sort_keys=True, default=str)}"


def is_current(folder: Path, fingerprint: str) -> bool:
    """Whether ``folder`` holds an export stamped with ``fingerprint`` (see ``stamp``)."""
    path = folder / STAMP
    return path.is_file() and path.read_text() == fingerprint


def stamp(folder: Path, fingerprint: str) -> None:
    """Marks ``folder``'s export as made from ``fingerprint``; written last, so an interrupted export is redone."""
    (folder / STAMP).write_text(fingerprint)


def cached_export(model_path: Path, folder: Path, size: tuple[int, int], variants, log=print, **options) -> dict[str, Path]:
    """``{variant: .tflite}`` of ``model_path`` exported into ``folder`` by ``export.exporter.export_generator`` with
    ``options``; a folder made from other weights, exporter code or options is emptied and exported again, and only
    missing variants of a current one are exported."""
    from export import exporter  # lazy: TensorFlow, for the benchmarks that export
    from keras_asym.inference.keras_generator import load_generator  # lazy: as above

    fingerprint = export_fingerprint(weights_sha256(load_generator(model_path)), options)
    if not is_current(folder, fingerprint):
        shutil.rmtree(folder, ignore_errors=True)
    missing = [v for v in variants if not (folder / f"drawing_{v}.tflite").is_file()]
    if missing:
        log(f"exporting {', '.join(missing)} of {model_path} at {size[0]}x{size[1]} into {folder} (minutes)")
        exporter.export_generator(model_path, folder, size, tuple(missing), log=log, **options)
        stamp(folder, fingerprint)
    return {v: folder / f"drawing_{v}.tflite" for v in variants}
