"""Face tracking for video: BlazeFace every N frames, the face mesh in between, smoothed alignment.

Between detections the mesh runs on the ROI of its own previous result (as
MediaPipe's face-mesh graph tracks), which costs one mesh inference per
frame; a low face-presence score drops the track and forces a detection.
The alignment transform (scale, rotation, translation) goes through a
One-Euro filter: still faces stop jittering, moving faces are followed
without lag.
"""

from __future__ import annotations

import math

import numpy as np

from edge_demo.runtime.alignment import similarity_matrix
from edge_demo.runtime.faces import ROI_SCALE, FaceLandmarker, points_from_mesh, roi_from_mesh

PRESENCE_THRESHOLD = 0.5


class OneEuroFilter:
    """Casiez et al. (CHI 2012): a low-pass filter whose cut-off rises with speed."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._value = None
        self._derivative = None
        self._time = None

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def reset(self) -> None:
        self._value = None

    def __call__(self, value: np.ndarray, timestamp: float) -> np.ndarray:
        value = np.asarray(value, np.float64)
        if self._value is None:
            self._value, self._derivative, self._time = value, np.zeros_like(value), timestamp
            return value
        dt = max(timestamp - self._time, 1e-3)
        self._time = timestamp
        derivative = (value - self._value) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._derivative = a_d * derivative + (1 - a_d) * self._derivative
        cutoff = self.min_cutoff + self.beta * np.abs(self._derivative)
        a = np.array([self._alpha(c, dt) for c in np.ravel(cutoff)]).reshape(np.shape(value))
        self._value = a * value + (1 - a) * self._value
        return self._value


class FaceTracker:
    """Alignment transforms for a video stream of the largest face.

    Args:
        landmarker: a ``FaceLandmarker`` (its detector and mesh are reused).
        template: the 5 target points of the model's input.
        detect_every: run BlazeFace at least every this many frames.
        smoothing: One-Euro ``min_cutoff`` in Hz (lower = steadier); 0 disables.
    """

    def __init__(self, landmarker: FaceLandmarker, template: np.ndarray, detect_every: int = 10, smoothing: float = 1.5):
        self.landmarker = landmarker
        self.template = np.asarray(template, np.float64)
        self.detect_every = max(1, detect_every)
        self._filter = OneEuroFilter(min_cutoff=smoothing, beta=0.02) if smoothing > 0 else None
        self._roi = None
        self._since_detection = 0
        self.detections = 0
        self.points = None

    def _detect(self, rgb: np.ndarray):
        self.detections += 1
        self._since_detection = 0
        found = self.landmarker.detections(rgb)
        if not found:
            return None
        box, keypoints, _ = max(found, key=lambda f: f[0][2] * f[0][3])
        angle = float(np.arctan2(keypoints[1][1] - keypoints[0][1], keypoints[1][0] - keypoints[0][0]))
        return (np.array([box[0] + box[2] / 2, box[1] + box[3] / 2]), ROI_SCALE * max(box[2], box[3]), angle)

    def update(self, rgb: np.ndarray, timestamp: float) -> np.ndarray | None:
        """The 2x3 alignment matrix for this frame, or ``None`` when no face is in view."""
        self._since_detection += 1
        if self._roi is None or self._since_detection >= self.detect_every:
            roi = self._detect(rgb)
            if roi is None:
                self._roi = None
                self.points = None
                if self._filter:
                    self._filter.reset()
                return None
            self._roi = roi
        mesh, presence = self.landmarker.mesh_in_roi(rgb, *self._roi)
        if presence < PRESENCE_THRESHOLD:
            self._roi = None
            return self.update(rgb, timestamp) if self._since_detection else None
        self._roi = roi_from_mesh(mesh)
        self.points = points_from_mesh(mesh)
        matrix = similarity_matrix(self.points, self.template)
        if self._filter is None:
            return matrix
        a, b, tx, ty = self._filter(np.array([matrix[0, 0], matrix[1, 0], matrix[0, 2], matrix[1, 2]]), timestamp)
        return np.array([[a, -b, tx], [b, a, ty]])
