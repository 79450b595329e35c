"""Short synthetic videos of faces moving over a background, for the edge demo's tests and benchmarks.

Each face image is scaled, rotated a little and moved along a smooth path
(a Lissajous curve) over a textured background, so detection, tracking,
smoothing and paste-back all get exercised; faces change every
``frames_per_face`` frames.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 1, (height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(60 + 120 * smooth, 0, 255).astype(np.uint8)


def render_frames(
    faces: list[np.ndarray],
    frames: int,
    width: int = 640,
    height: int = 480,
    face_size: int = 300,
    frames_per_face: int = 60,
    seed: int = 0,
):
    """Yields BGR frames; ``faces`` are RGB images (any size, face roughly centred)."""
    if not faces:
        raise ValueError("need at least one face image.")
    base = background(width, height, seed)
    sprites = [cv2.cvtColor(cv2.resize(f, (face_size, face_size), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR) for f in faces]
    mask = np.zeros((face_size, face_size), np.uint8)
    cv2.ellipse(mask, (face_size // 2, face_size // 2), (int(face_size * 0.47), int(face_size * 0.49)), 0, 0, 360, 255, -1)
    room_x, room_y = (width - face_size) / 2, (height - face_size) / 2
    for t in range(frames):
        sprite = sprites[(t // frames_per_face) % len(sprites)]
        phase = t / 40.0
        cx = width / 2 + 0.8 * room_x * np.sin(phase)
        cy = height / 2 + 0.8 * room_y * np.sin(1.7 * phase + 0.5)
        angle = 8.0 * np.sin(0.6 * phase)
        scale = 1.0 + 0.08 * np.sin(0.9 * phase)
        matrix = cv2.getRotationMatrix2D((face_size / 2, face_size / 2), angle, scale)
        matrix[:, 2] += (cx - face_size / 2, cy - face_size / 2)
        frame = base.copy()
        warped = cv2.warpAffine(sprite, matrix, (width, height))
        alpha = cv2.warpAffine(mask, matrix, (width, height))
        np.copyto(frame, warped, where=alpha[:, :, None] > 127)
        yield frame


def write_clip(path: str | Path, faces: list[np.ndarray], frames: int = 120, fps: float = 25.0, **kwargs) -> Path:
    """Writes an MJPG ``.avi`` (or ``mp4v`` ``.mp4``) clip; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = kwargs.get("width", 640), kwargs.get("height", 480)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"{path}: cannot open a video writer.")
    try:
        for frame in render_frames(faces, frames, **kwargs):
            writer.write(frame)
    finally:
        writer.release()
    return path
