"""Faces in image files for the CLIs; the detector itself lives in ``edge_demo.runtime.faces``.

``edge_demo`` holds the TensorFlow-free runtime (MediaPipe detector, face
mesh, alignment, TFLite generator) so that the camera demo installs on a
device without TensorFlow; the library re-exports it here.
"""

from __future__ import annotations

from edge_demo.runtime import cli
from edge_demo.runtime.faces import Face, FaceLandmarker, NoFaceError, make_interpreter, points_from_mesh
from keras_asym.utils.imageio import ImageReadError, read_rgb

__all__ = ["Face", "FaceLandmarker", "NoFaceError", "faces_in_files", "make_interpreter", "open_landmarker", "points_from_mesh"]


def faces_in_files(files, landmarker: FaceLandmarker, all_faces: bool = False):
    """Yields ``(path, rgb, faces, error)`` per file: the largest face (or all), or why there is none.

    ``error`` is a one-line reason naming the file (unreadable, or no face);
    ``faces`` is then empty and ``rgb`` may be ``None``.
    """
    for path in files:
        try:
            rgb = read_rgb(path)
        except ImageReadError as err:
            yield path, None, [], str(err)
            continue
        faces = landmarker.detect(rgb)
        if not faces:
            yield path, rgb, [], f"{path}: no face found."
            continue
        yield path, rgb, faces if all_faces else faces[:1], None


def open_landmarker(program: str, min_score: float = 0.5, task_path: str | None = None, threads: int = 2) -> FaceLandmarker | None:
    """A landmarker for a CLI, or ``None`` after printing why it could not start."""
    try:
        return FaceLandmarker(min_score=min_score, threads=threads, task_path=task_path)
    except (FileNotFoundError, RuntimeError) as err:
        cli.error(program, err)
        return None
