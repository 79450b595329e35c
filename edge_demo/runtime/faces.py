"""Faces and their 5 alignment points: MediaPipe BlazeFace + the 468-point face mesh.

Detection uses the MediaPipe Tasks ``FaceDetector`` (BlazeFace short range).
The mesh model (``face_landmark.tflite``) runs through the LiteRT interpreter
on a rotated square crop around each face, as MediaPipe's face-mesh graph
does (eyes levelled, 1.5x the face box), and once more on a crop re-centred
on the first mesh for accuracy. The 5 points, in the official order (image-left
eye first), are weighted means of mesh points fitted to the authors' points
(``five_points.json``, made by ``benchmarks/fit_five_points.py``).
"""

from __future__ import annotations

import functools
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from edge_demo.runtime.assets import asset_path
from edge_demo.runtime.system_libraries import explain, import_native

FIVE_POINT_MODEL = Path(__file__).with_name("five_points.json")
MESH_SIZE = 192
ROI_SCALE = 1.5


class NoFaceError(ValueError):
    """No face was found in an image."""


@dataclass
class Face:
    """One face: detector box (x, y, w, h) and score, 5 points and the mesh, in image pixels."""

    box: tuple[float, float, float, float]
    score: float
    points: np.ndarray
    mesh: np.ndarray

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def inter_ocular(self) -> float:
        return float(np.linalg.norm(self.points[1] - self.points[0]))


def make_interpreter(path, threads: int = 2):
    """A LiteRT interpreter (``ai_edge_litert``), tensors allocated."""
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def _five_point_model() -> list[tuple[list[int], np.ndarray]]:
    """Per official point, the mesh indices and weights fitted by ``benchmarks/fit_five_points.py``."""
    model = json.loads(FIVE_POINT_MODEL.read_text())
    return [(model[name]["indices"], np.asarray(model[name]["weights"], np.float64)) for name in model["order"]]


def points_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """The official 5 points (image-left eye, image-right eye, nose tip, mouth corners) from 468 mesh landmarks.

    Each is a fitted weighted mean of mesh points around it: the official points
    are MTCNN's, which sit apart from the mesh's eye-contour centres and lip
    corners (3.5% of the inter-ocular distance off on held-out photos with the
    plain centres, 2.7% fitted; ``docs/results/five_points.json``).
    """
    xy = np.asarray(mesh, np.float64)[:, :2]
    return np.stack([weights @ xy[indices] for indices, weights in _FIVE_POINTS])


_FIVE_POINTS = _five_point_model()


def _roi_matrix(center, size: float, angle: float) -> np.ndarray:
    """2x3 affine taking the rotated square ROI to a MESH_SIZE crop."""
    scale = MESH_SIZE / size
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    cx, cy = center
    half = MESH_SIZE / 2.0
    return np.array([[cos, sin, half - cos * cx - sin * cy], [-sin, cos, half + sin * cx - cos * cy]], np.float64)


def roi_from_mesh(mesh: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre, side, angle) of the mesh ROI around a previous mesh: how the mesh tracks a face."""
    xy = mesh[:, :2]
    angle = float(np.arctan2(*(xy[263] - xy[33])[::-1]))
    lo, hi = xy.min(0), xy.max(0)
    return (lo + hi) / 2.0, float(ROI_SCALE * max(hi - lo)), angle


_OPTIONAL_DEPENDENCIES = "mediapipe.tasks.python.core.optional_dependencies"


def _without_tensorflow_docs() -> None:
    """MediaPipe's Tasks import ``tensorflow.tools.docs`` for a documentation decorator when TensorFlow is
    installed (3.5 s and ~0.5 GB for a no-op) and fall back to a no-op when it is not, as on a Pi. The fallback,
    put in place first, keeps face detection TensorFlow-free wherever it runs (align, landmarks, prepare, draw; the
    camera app's entry point blocks TensorFlow's import outright); a process that has TensorFlow loaded already
    keeps MediaPipe's own module."""
    if sys.modules.get("tensorflow") is not None or _OPTIONAL_DEPENDENCIES in sys.modules:
        return
    stub = types.ModuleType(_OPTIONAL_DEPENDENCIES, "MediaPipe's optional dependencies, TensorFlow's docs decorator a no-op.")
    stub.doc_controls = types.SimpleNamespace(do_not_generate_docs=lambda obj: obj)
    sys.modules[_OPTIONAL_DEPENDENCIES] = stub


@functools.cache  # once per process: it is asked for at every detection
def _mediapipe():
    """``mediapipe`` (imported lazily: 0.6 s with its library; only detection needs it) with its native library loaded, or one line
    naming a missing system library (MediaPipe 1.2 loads ``libmediapipe.so`` at its first task, not at import)."""
    _without_tensorflow_docs()
    mediapipe = import_native("mediapipe", "MediaPipe")  # lazy: only detection needs it
    bindings = import_native("mediapipe.tasks.python.core.mediapipe_c_bindings", "MediaPipe")
    try:
        bindings.load_raw_library([])
    except OSError as err:
        explained = explain("MediaPipe", err)
        if explained is None:
            raise
        raise explained from err
    return mediapipe


class FaceLandmarker:
    """Finds faces and their alignment points in RGB uint8 images.

    Args:
        min_score: minimum BlazeFace confidence. Defaults to 0.5.
        threads: interpreter threads.
        refine: run the mesh a second time on a crop centred on the first
            mesh (more accurate, twice the mesh cost).
        task_path: the official ``face_landmarker.task``; when given, the
            Tasks ``FaceLandmarker`` finds faces and meshes instead (it
            reports no detection score: ``score`` is then 1.0).
    """

    def __init__(self, min_score: float = 0.5, threads: int = 2, refine: bool = True, task_path: str | None = None):
        mp = _mediapipe()
        BaseOptions, vision = mp.tasks.BaseOptions, mp.tasks.vision  # noqa: N806  (MediaPipe's class names)

        self._task = None
        if task_path is not None:
            if not Path(task_path).is_file():
                raise FileNotFoundError(f"{task_path}: no such face_landmarker.task file.")
            self._task = vision.FaceLandmarker.create_from_options(
                vision.FaceLandmarkerOptions(
                    base_options=BaseOptions(model_asset_path=str(task_path)),
                    num_faces=8,
                    min_face_detection_confidence=min_score,
                )
            )

        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(asset_path("face_detection_short_range.tflite"))),
            min_detection_confidence=min_score,
        )
        self._detector = vision.FaceDetector.create_from_options(options)
        self._mesh = make_interpreter(asset_path("face_landmark.tflite"), threads)
        self._mesh_input = self._mesh.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self._mesh.get_output_details()}
        self._mesh_points, self._mesh_flag = outputs["conv2d_21"], outputs["conv2d_31"]
        self.refine = refine

    def close(self) -> None:
        for name in ("_detector", "_task"):
            handle = getattr(self, name)
            if handle is not None:
                handle.close()
                setattr(self, name, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def mesh_in_roi(self, rgb: np.ndarray, center, size: float, angle: float) -> tuple[np.ndarray, float]:
        """The 468-point mesh (image pixels) in a rotated square ROI, and the model's face-presence score."""
        matrix = _roi_matrix(center, size, angle)
        crop = cv2.warpAffine(rgb, matrix, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        self._mesh.set_tensor(self._mesh_input, (crop.astype(np.float32) / 255.0)[None])
        self._mesh.invoke()
        points = self._mesh.get_tensor(self._mesh_points).reshape(468, 3).astype(np.float64)
        flag = float(1.0 / (1.0 + np.exp(-self._mesh.get_tensor(self._mesh_flag).ravel()[0])))
        inverse = cv2.invertAffineTransform(matrix)
        xy = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        return np.concatenate([xy, points[:, 2:] * size / MESH_SIZE], axis=1), flag

    def detections(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], np.ndarray, float]]:
        """BlazeFace alone: (box x, y, w, h; 6 keypoints in pixels; score) per face."""
        mp = _mediapipe()

        height, width = rgb.shape[:2]
        result = self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        found = []
        for detection in result.detections:
            box = detection.bounding_box
            keypoints = np.array([[k.x * width, k.y * height] for k in detection.keypoints], np.float64)
            found.append(
                (
                    (float(box.origin_x), float(box.origin_y), float(box.width), float(box.height)),
                    keypoints,
                    float(detection.categories[0].score),
                )
            )
        return found

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces, largest first. ``rgb`` is HxWx3 uint8."""
        mp = _mediapipe()

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}.")
        rgb = np.ascontiguousarray(rgb)
        height, width = rgb.shape[:2]
        if self._task is not None:
            return self._detect_with_task(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), width, height)
        faces = []
        for box, keypoints, score in self.detections(rgb):
            eye_a, eye_b = keypoints[0], keypoints[1]
            angle = np.arctan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])
            center = (box[0] + box[2] / 2.0, box[1] + box[3] / 2.0)
            mesh, _ = self.mesh_in_roi(rgb, center, ROI_SCALE * max(box[2], box[3]), angle)
            if self.refine:
                mesh, _ = self.mesh_in_roi(rgb, *roi_from_mesh(mesh))
            faces.append(Face(box=box, score=score, points=points_from_mesh(mesh), mesh=mesh))
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _detect_with_task(self, image, width: int, height: int) -> list[Face]:
        faces = []
        for landmarks in self._task.detect(image).face_landmarks:
            mesh = np.array([[p.x * width, p.y * height, p.z * width] for p in landmarks[:468]], np.float64)
            lo, hi = mesh[:, :2].min(0), mesh[:, :2].max(0)
            box = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
            faces.append(Face(box=box, score=1.0, points=points_from_mesh(mesh), mesh=mesh))
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def largest(self, rgb: np.ndarray, where: str = "image") -> Face:
        faces = self.detect(rgb)
        if not faces:
            raise NoFaceError(f"{where}: no face found.")
        return faces[0]
