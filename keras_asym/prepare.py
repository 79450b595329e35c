"""Build a training dataset from raw photos and drawings in one command.

    python -m keras_asym.prepare --photos PHOTOS --drawings DRAWINGS --output DATASET
        [--size 512] [--style_model style.keras] [--drawing_landmarks points.json]
        [--whiten_background] [--force]

Photos: detect the largest face, align it to the official template, write
``A/<stem>.png`` and ``A_{eyes,nose,lips}/<stem>.png``. Drawings: the same
into ``B/`` (grayscale) and ``B_*``; faces in line drawings are often missed,
so a drawing without a detected face uses its entry in ``--drawing_landmarks``
(the JSON ``keras_asym.landmarks`` writes, points in the drawing's
frame) or, failing that, a centred square crop; the manifest says which.
Style features ``B_feat/<stem>.npy``: the softmax of ``--style_model`` (see
``python -m keras_asym.style``), else one-hot from ``style1/ style2/ style3/``
subfolders of ``DRAWINGS`` (stems then get the folder as prefix).

``DATASET/manifest.json`` records every file's status (``ok`` or ``error``
with the reason), the method, and the source's size and mtime: re-running
skips files already done with an unchanged source, ``--force`` redoes them.
Bad files are reported and skipped. Exit status 0 if every file was
prepared, 1 if some were skipped, 2 if the run could not start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.alignment import align, template, transform_points
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import STYLE_NAMES, one_hot
from keras_asym.face.detector import NoFaceError, open_landmarker
from keras_asym.face.masks import PARTS, part_masks
from keras_asym.face.segmentation import BackgroundWhitener
from keras_asym.utils.imageio import (
    ImageReadError,
    list_images,
    read_rgb,
    remove_stale_partials,
    write_bytes_atomic,
    write_image_atomic,
    write_npy_atomic,
)

_PHOTOS = flags.DEFINE_string("photos", None, "Folder of face photos.", required=True)
_DRAWINGS = flags.DEFINE_string("drawings", None, "Folder of drawings (optionally in style1/ style2/ style3/).", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Dataset folder to create or update.", required=True)
_SIZE = flags.DEFINE_integer("size", 512, "Aligned size.", lower_bound=32, upper_bound=4096)
_STYLE_MODEL = flags.DEFINE_string("style_model", None, "Style classifier .keras (python -m keras_asym.style) for B_feat.")
_DRAWING_LANDMARKS = flags.DEFINE_string("drawing_landmarks", None, "Points JSON (keras_asym.landmarks) for drawings.")
_WHITEN = flags.DEFINE_boolean("whiten_background", False, "Whiten photo backgrounds with the selfie segmentation model.")
_FORCE = flags.DEFINE_boolean("force", False, "Redo files the manifest lists as done.")
_LANDMARKER_TASK = flags.DEFINE_string(
    "landmarker_task", None, "Official face_landmarker.task: use MediaPipe's FaceLandmarker instead of detector + mesh."
)

STYLE_FOLDERS = STYLE_NAMES  # drawings/style1/ .. style3/


def _signature(path: Path) -> dict:
    stat = path.stat()
    return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _drawing_sources(folder: Path) -> list[tuple[Path, str, int | None]]:
    """(path, output stem, style label or None)."""
    if all((folder / name).is_dir() for name in STYLE_FOLDERS):
        return [(p, f"{name}_{p.stem}", k) for k, name in enumerate(STYLE_FOLDERS) for p in list_images(folder / name)]
    return [(p, p.stem, None) for p in list_images(folder)]


class Preparer:
    """Writes one dataset; each ``photo``/``drawing`` call handles one source file."""

    def __init__(self, output: Path, size: int, landmarker, whitener=None, style_model=None, drawing_points=None):
        self.output, self.size = output, size
        self.landmarker, self.whitener, self.style_model = landmarker, whitener, style_model
        self.drawing_points = drawing_points or {}
        for side in ("A", "B"):
            for sub in (side,) + tuple(f"{side}_{p}" for p in PARTS):
                (output / sub).mkdir(parents=True, exist_ok=True)
        (output / "B_feat").mkdir(parents=True, exist_ok=True)

    def _write(self, side: str, stem: str, image: np.ndarray, points: np.ndarray) -> None:
        for part, mask in part_masks(points, image.shape[:2]).items():
            write_image_atomic(self.output / f"{side}_{part}" / f"{stem}.png", mask * 255)
        write_image_atomic(self.output / side / f"{stem}.png", image)

    def photo(self, path: Path) -> dict:
        rgb = read_rgb(path)
        face = self.landmarker.largest(rgb, where=str(path))
        aligned, matrix = align(rgb, face.points, self.size)
        if self.whitener is not None:
            aligned = self.whitener(aligned)
        self._write("A", path.stem, aligned, transform_points(matrix, face.points))
        return {"method": "detected", "score": round(face.score, 4)}

    def drawing(self, path: Path, stem: str, label: int | None) -> dict:
        if self.style_model is None and label is None:
            raise ValueError(f"{path}: no style known; give --style_model or sort drawings into style1/ style2/ style3/.")
        rgb = read_rgb(path)
        try:
            points, method = self.landmarker.largest(rgb, where=str(path)).points, "detected"
        except NoFaceError:
            given = self.drawing_points.get(path.name)
            points, method = (np.asarray(given, np.float64), "landmarks_file") if given is not None else (None, "centred_crop")
        if points is not None:
            aligned, matrix = align(rgb, points, self.size)
            aligned_points = transform_points(matrix, points)
        else:
            side = min(rgb.shape[:2])
            top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
            aligned = cv2.resize(rgb[top : top + side, left : left + side], (self.size, self.size), interpolation=cv2.INTER_AREA)
            aligned_points = template(self.size)
        gray = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY)
        self._write("B", stem, gray, aligned_points)
        if self.style_model is not None:
            style = self.style_model(path)
            source = "classifier"
        else:
            style, source = one_hot(label + 1), f"folder {STYLE_FOLDERS[label]}"
        write_npy_atomic(self.output / "B_feat" / f"{stem}.npy", style)
        return {"method": method, "style": style.round(4).tolist(), "style_source": source}


def _outputs_exist(output: Path, side: str, stem: str) -> bool:
    paths = [output / side / f"{stem}.png"] + [output / f"{side}_{p}" / f"{stem}.png" for p in PARTS]
    if side == "B":
        paths.append(output / "B_feat" / f"{stem}.npy")
    return all(p.is_file() for p in paths)


def _load_points(path: str | None) -> dict:
    """``{image name: (5, 2) points}`` from a ``landmarks`` JSON; ValueError naming the file for anything else."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
        points = {}
        for name, entry in data["images"].items():
            if entry.get("faces"):
                array = np.asarray(entry["faces"][0]["points"], np.float64)
                if array.shape != (5, 2) or not np.isfinite(array).all():
                    raise ValueError(f"image {str(name)[:80]!r}: points must be 5 finite (x, y) pairs")
                points[name] = array.tolist()
        return points
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RecursionError) as err:  # JSON errors are ValueErrors
        raise ValueError(f"{path}: not a landmarks file ({cli.one_line(err, 160)}).") from err


def _load_manifest(path: Path) -> dict:
    """The manifest of earlier runs; a damaged one is set aside (everything is redone), never fatal."""
    if not path.is_file():
        return {"photos": {}, "drawings": {}}
    try:
        manifest = json.loads(path.read_text())
        if not (isinstance(manifest, dict) and all(isinstance(manifest.get(k, {}), dict) for k in ("photos", "drawings"))):
            raise ValueError("not a manifest object")
        for group in ("photos", "drawings"):
            manifest.setdefault(group, {})
            if not all(isinstance(entry, dict) for entry in manifest[group].values()):
                raise ValueError(f"a {group} entry is not an object")
        return manifest
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        aside = path.with_name("manifest.damaged.json")
        os.replace(path, aside)
        cli.error("prepare", f"{path}: damaged ({cli.one_line(err, 120)}); moved to {aside.name}, every file is redone.", word="warning")
        return {"photos": {}, "drawings": {}}


def _style_classifier(path: str):
    """A drawing file -> its style vector, by the classifier in ``path``; Keras (and TensorFlow, 3.5 s) is loaded
    only when a classifier is given: without one, preparing a dataset needs neither."""
    from keras_asym.models.style_classifier import load_classifier, load_drawing  # lazy: TensorFlow, only for --style_model

    model = load_classifier(path)
    return lambda drawing: np.asarray(model(load_drawing(drawing)[None]))[0].astype(np.float32)


def main(argv):
    del argv

    output = Path(_OUTPUT.value)
    try:
        photos = list_images(_PHOTOS.value)
        drawings = _drawing_sources(Path(_DRAWINGS.value))
        drawing_points = _load_points(_DRAWING_LANDMARKS.value)
        style_model = _style_classifier(_STYLE_MODEL.value) if _STYLE_MODEL.value else None
        cli.output_folder(output)
        remove_stale_partials(output)  # a killed earlier run's temporary files; finished items are kept
    except (FileNotFoundError, ValueError, OSError) as err:
        cli.error("prepare", err)
        return 2
    manifest_path = output / "manifest.json"
    manifest = _load_manifest(manifest_path)
    manifest["size"] = _SIZE.value

    whitener = None
    if _WHITEN.value:
        whitener = BackgroundWhitener()
    counts = {"done": 0, "skipped_unchanged": 0, "errors": 0}
    jobs = [("photos", "A", p, p.stem, None) for p in photos] + [("drawings", "B", p, s, k) for p, s, k in drawings]
    landmarker = open_landmarker("prepare", task_path=_LANDMARKER_TASK.value)
    if landmarker is None:
        return 2
    with landmarker:
        preparer = Preparer(output, _SIZE.value, landmarker, whitener, style_model, drawing_points)
        progress = Progress(len(jobs), "prepare", unit="images")
        for done, (group, side, path, stem, label) in enumerate(jobs):
            progress.update(done, note=path.name)
            entries = manifest[group]
            previous = entries.get(stem, {})
            signature = _signature(path)
            if (
                not _FORCE.value
                and previous.get("status") == "ok"
                and previous.get("source_signature") == signature
                and _outputs_exist(output, side, stem)
            ):
                counts["skipped_unchanged"] += 1
                continue
            try:
                detail = preparer.photo(path) if side == "A" else preparer.drawing(path, stem, label)
                entries[stem] = {"status": "ok", "source": str(path), "source_signature": signature, **detail}
                counts["done"] += 1
            except (ImageReadError, NoFaceError, ValueError) as err:
                entries[stem] = {"status": "error", "source": str(path), "reason": str(err)}
                counts["errors"] += 1
                cli.skipped(err)
            write_bytes_atomic(manifest_path, json.dumps(manifest, indent=2).encode())
        progress.update(len(jobs))
    write_bytes_atomic(manifest_path, json.dumps(manifest, indent=2).encode())
    methods = {}
    for entry in manifest["drawings"].values():
        if entry.get("status") == "ok":
            methods[entry["method"]] = methods.get(entry["method"], 0) + 1
    print(json.dumps({**counts, "drawing_alignment": methods, "manifest": str(manifest_path)}))
    return 1 if counts["errors"] else 0


if __name__ == "__main__":
    cli.run(main)
