"""Procedural portraits: a seeded, offline stand-in for the paper's photo and drawing datasets.

Each face is a small set of parameters (shape, skin tone, hair, eyes, nose,
lips, clothing, pose shift, lighting) rendered two ways: as a shaded "photo"
on a textured background, and as a line drawing in one of three styles:

1. thin contour lines;
2. contour lines plus hatching on the hair and the shadowed side;
3. bold strokes with the hair and shadows filled dark.

The training set pairs photos of some faces with drawings of *other* faces
(unpaired, as the method needs); the test set keeps, for each test photo,
the drawing of the same face in every style, so outputs can be scored against
known answers. Part masks come from the exact 5 points with the same boxes
as real data (``keras_asym.face.masks``).

    python -m keras_asym.generate --output data/procedural --photos 200 --drawings 200 --test 20
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_demo.runtime.alignment import template
from edge_demo.runtime.styles import one_hot
from keras_asym.face.masks import part_masks
from keras_asym.utils.imageio import write_bytes_atomic, write_image_atomic, write_npy_atomic

STYLES = (1, 2, 3)


@dataclass
class FaceParams:
    """One procedural face, in units of the image size (resolution independent)."""

    shift: tuple[float, float]
    face_axes: tuple[float, float]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_volume: float
    hair_length: float
    eye_size: float
    iris: tuple[int, int, int]
    brow_tilt: float
    nose_length: float
    mouth_width: float
    lips: tuple[int, int, int]
    clothing: tuple[int, int, int]
    background: tuple[int, int, int]
    light: float
    texture_seed: int


def sample_face(rng: np.random.Generator) -> FaceParams:
    skin_tone = rng.uniform(0, 1)
    skin = tuple(int(v) for v in np.array([95, 65, 50]) + skin_tone * np.array([140, 140, 130]))
    hair_dark = rng.uniform(0, 1)
    hair = tuple(int(v) for v in np.array([20, 15, 10]) + (1 - hair_dark) ** 2 * np.array([150, 110, 60]))
    return FaceParams(
        shift=(float(rng.uniform(-0.02, 0.02)), float(rng.uniform(-0.02, 0.02))),
        face_axes=(float(rng.uniform(0.17, 0.21)), float(rng.uniform(0.23, 0.27))),
        skin=skin,
        hair=hair,
        hair_volume=float(rng.uniform(0.0, 1.0)),
        hair_length=float(rng.uniform(0.0, 1.0)),
        eye_size=float(rng.uniform(0.8, 1.2)),
        iris=tuple(int(v) for v in rng.integers(20, 140, 3)),
        brow_tilt=float(rng.uniform(-0.15, 0.15)),
        nose_length=float(rng.uniform(0.85, 1.15)),
        mouth_width=float(rng.uniform(0.85, 1.15)),
        lips=tuple(int(v) for v in (np.array(skin) * np.array([0.9, 0.55, 0.55])).clip(0, 255)),
        clothing=tuple(int(v) for v in rng.integers(20, 235, 3)),
        background=tuple(int(v) for v in rng.integers(90, 250, 3)),
        light=float(rng.uniform(-1, 1)),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _geometry(p: FaceParams, size: int) -> dict:
    """Pixel positions of every feature; the 5 points follow the official template."""
    t = template(size)
    offset = np.array(p.shift) * size
    iod = t[1, 0] - t[0, 0]
    eyes = t[:2] + offset
    nose = t[2] + offset + np.array([0.0, (p.nose_length - 1) * 0.25 * iod])
    mouth_center = t[3:5].mean(0) + offset
    half_mouth = (t[4, 0] - t[3, 0]) / 2 * p.mouth_width
    mouth = np.array([mouth_center - [half_mouth, 0], mouth_center + [half_mouth, 0]])
    center = np.array([size / 2, eyes[0, 1] + 0.05 * size]) + [offset[0], 0]
    axes = np.array(p.face_axes) * size
    return {
        "points": np.vstack([eyes, nose[None], mouth]),
        "center": center,
        "axes": axes,
        "iod": iod,
        "eye_radius": 0.13 * iod * p.eye_size,
    }


def _pt(v) -> tuple[int, int]:
    return int(round(v[0])), int(round(v[1]))


def _shade(image: np.ndarray, light: float) -> np.ndarray:
    """Side lighting: a horizontal brightness ramp."""
    w = image.shape[1]
    ramp = 1.0 + 0.18 * light * np.linspace(-1, 1, w)[None, :, None]
    return np.clip(image * ramp, 0, 255)


def render_photo(p: FaceParams, size: int, plain: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8 RGB photo, its 5 points).

    ``plain`` drops the background texture, the side lighting and the sensor
    noise: what a drawing cannot show is then a dozen flat colours, few enough
    bits that a strict cycle can be solved by hiding them (the hidden-information
    benchmark's setting).
    """
    g = _geometry(p, size)
    rng = np.random.default_rng(p.texture_seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), size / 40)
    noise /= np.abs(noise).max() + 1e-6
    texture = 0.0 if plain else 0.15
    image = np.array(p.background, np.float32)[None, None] * (1 + texture * noise[:, :, None])
    c, (ax, ay), s = g["center"], g["axes"], size
    body = np.array(
        [[c[0] - 0.42 * s, s], [c[0] - 0.2 * s, c[1] + 0.36 * s], [c[0] + 0.2 * s, c[1] + 0.36 * s], [c[0] + 0.42 * s, s]], np.int32
    )
    cv2.fillPoly(image, [body], p.clothing)
    cv2.rectangle(image, _pt(c + [-0.35 * ax, 0.6 * ay]), _pt(c + [0.35 * ax, 1.45 * ay]), [v * 0.9 for v in p.skin], -1)
    hair_axes = (ax * (1.12 + 0.2 * p.hair_volume), ay * (1.05 + 0.15 * p.hair_volume))
    if p.hair_length > 0.4:
        cv2.ellipse(image, _pt(c + [0, 0.25 * ay]), _pt(np.array(hair_axes) * [1.0, 0.95 + 0.3 * p.hair_length]), 0, 0, 360, p.hair, -1)
    cv2.ellipse(image, _pt(c - [0, 0.12 * ay]), _pt(hair_axes), 0, 180, 360, p.hair, -1)
    cv2.ellipse(image, _pt(c), _pt((ax, ay)), 0, 0, 360, p.skin, -1)
    cv2.ellipse(image, _pt(c - [0, 0.55 * ay]), _pt((ax * 0.98, ay * 0.5)), 0, 180, 360, p.hair, -1)
    points, r = g["points"], g["eye_radius"]
    for k, eye in enumerate(points[:2]):
        tilt = p.brow_tilt * (1 if k else -1)
        brow = [eye + [-1.3 * r, -1.6 * r + tilt * r], eye + [1.3 * r, -1.6 * r - tilt * r]]
        cv2.line(image, _pt(brow[0]), _pt(brow[1]), [v * 0.8 for v in p.hair], max(1, int(r * 0.35)))
        cv2.ellipse(image, _pt(eye), _pt((1.15 * r, 0.6 * r)), 0, 0, 360, (245, 245, 240), -1)
        cv2.circle(image, _pt(eye), max(1, int(0.5 * r)), p.iris, -1)
        cv2.circle(image, _pt(eye), max(1, int(0.22 * r)), (15, 10, 10), -1)
    nose = points[2]
    nose_dark = [v * 0.75 for v in p.skin]
    cv2.line(image, _pt(nose - [0.15 * r, 2.2 * r]), _pt(nose + [-0.1 * r, 0]), nose_dark, max(1, int(r * 0.2)))
    cv2.ellipse(image, _pt(nose + [0, 0.2 * r]), _pt((0.7 * r, 0.35 * r)), 0, 0, 180, nose_dark, max(1, int(r * 0.2)))
    left, right = points[3], points[4]
    mid = (left + right) / 2
    lips = np.array([left, mid - [0, 0.45 * r], right, mid + [0, 0.6 * r]], np.int32)
    cv2.fillPoly(image, [lips], p.lips)
    cv2.line(image, _pt(left), _pt(right), [v * 0.6 for v in p.lips], max(1, int(r * 0.15)))
    if not plain:
        image = _shade(image, p.light)
    image = cv2.GaussianBlur(image, (0, 0), 0.6) + rng.normal(0, 0 if plain else 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), points


def render_drawing(p: FaceParams, size: int, style: int) -> tuple[np.ndarray, np.ndarray]:
    """(HxW uint8 drawing, black lines on white, its 5 points) in style 1, 2 or 3."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style}.")
    g = _geometry(p, size)
    c, (ax, ay), points, r = g["center"], g["axes"], g["points"], g["eye_radius"]
    thin = max(1, int(round(size / 256)))
    stroke = {1: thin, 2: thin, 3: max(2, int(round(size / 90)))}[style]
    ink = 0
    image = np.full((size, size), 255, np.uint8)
    hair_axes = (ax * (1.12 + 0.2 * p.hair_volume), ay * (1.05 + 0.15 * p.hair_volume))
    hair_mask = np.zeros((size, size), np.uint8)
    if p.hair_length > 0.4:
        cv2.ellipse(hair_mask, _pt(c + [0, 0.25 * ay]), _pt(np.array(hair_axes) * [1.0, 0.95 + 0.3 * p.hair_length]), 0, 0, 360, 1, -1)
    cv2.ellipse(hair_mask, _pt(c - [0, 0.12 * ay]), _pt(hair_axes), 0, 180, 360, 1, -1)
    face_mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(face_mask, _pt(c), _pt((ax, ay)), 0, 0, 360, 1, -1)
    fringe = np.zeros((size, size), np.uint8)
    cv2.ellipse(fringe, _pt(c - [0, 0.55 * ay]), _pt((ax * 0.98, ay * 0.5)), 0, 180, 360, 1, -1)
    hair_mask = np.clip(hair_mask * (1 - face_mask) + fringe, 0, 1)
    if style == 3:
        image[hair_mask > 0] = ink
        shadow_side = np.zeros((size, size), np.uint8)
        side = 1 if p.light < 0 else -1
        cv2.ellipse(shadow_side, _pt(c + [side * 0.75 * ax, 0.1 * ay]), _pt((0.3 * ax, 0.75 * ay)), 0, 0, 360, 1, -1)
        image[(shadow_side > 0) & (face_mask > 0) & (fringe == 0)] = 90
    if style == 2:
        yy, xx = np.mgrid[0:size, 0:size]
        spacing = max(3, size // 48)
        hatch = ((xx + yy) % spacing) < max(1, spacing // 4)
        image[(hair_mask > 0) & hatch] = ink
        side = np.where(p.light < 0, xx > c[0] + 0.35 * ax, xx < c[0] - 0.35 * ax)
        image[(face_mask > 0) & side & (((xx - yy) % spacing) == 0) & (fringe == 0)] = ink
    outline = cv2.morphologyEx(hair_mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    image[outline > 0] = ink
    cv2.ellipse(image, _pt(c), _pt((ax, ay)), 0, -10, 190, ink, stroke)
    cv2.line(image, _pt(c + [-0.35 * ax, 0.93 * ay]), _pt(c + [-0.35 * ax, 1.45 * ay]), ink, stroke)
    cv2.line(image, _pt(c + [0.35 * ax, 0.93 * ay]), _pt(c + [0.35 * ax, 1.45 * ay]), ink, stroke)
    for k, eye in enumerate(points[:2]):
        tilt = p.brow_tilt * (1 if k else -1)
        brow = [eye + [-1.3 * r, -1.6 * r + tilt * r], eye + [1.3 * r, -1.6 * r - tilt * r]]
        cv2.line(image, _pt(brow[0]), _pt(brow[1]), ink, stroke + (1 if style == 3 else 0))
        cv2.ellipse(image, _pt(eye), _pt((1.15 * r, 0.6 * r)), 0, 0, 360, ink, stroke)
        cv2.circle(image, _pt(eye), max(1, int(0.35 * r)), ink, -1)
    nose = points[2]
    cv2.line(image, _pt(nose - [0.15 * r, 2.2 * r]), _pt(nose + [-0.1 * r, 0]), ink, thin)
    cv2.ellipse(image, _pt(nose + [0, 0.2 * r]), _pt((0.7 * r, 0.35 * r)), 0, 0, 180, ink, stroke)
    left, right = points[3], points[4]
    mid = (left + right) / 2
    lips = np.array([left, mid - [0, 0.45 * r], right, mid + [0, 0.6 * r]], np.int32)
    if style == 3:
        cv2.fillPoly(image, [lips], 60)
    cv2.polylines(image, [lips], True, ink, stroke)
    cv2.line(image, _pt(left), _pt(right), ink, stroke)
    return image, points


def _write(root: Path, side: str, stem: str, image: np.ndarray, points: np.ndarray) -> None:
    write_image_atomic(root / side / f"{stem}.png", image)
    for part, mask in part_masks(points, image.shape[:2]).items():
        write_image_atomic(root / f"{side}_{part}" / f"{stem}.png", mask * 255)


def write_dataset(
    output: str | Path, photos: int = 200, drawings: int = 200, test: int = 20, size: int = 256, seed: int = 0, plain: bool = False
) -> dict:
    """Writes the ``prepare`` layout (train) and ``test/`` with paired drawings per style; returns a summary.

    Training photos, training drawings and test faces are all different faces.
    ``test/A/<stem>.png`` has its drawings in ``test/B_style{1,2,3}/<stem>.png``.
    ``plain`` renders photos without texture, lighting or noise (``render_photo``).
    """
    root = Path(output)
    rng = np.random.default_rng(seed)
    faces = [sample_face(rng) for _ in range(photos + drawings + test)]
    styles = rng.integers(1, 4, drawings)
    for i in range(photos):
        image, points = render_photo(faces[i], size, plain)
        _write(root, "A", f"photo_{i:05d}", image, points)
    for j in range(drawings):
        image, points = render_drawing(faces[photos + j], size, int(styles[j]))
        stem = f"drawing_{j:05d}"
        _write(root, "B", stem, image, points)
        write_npy_atomic(root / "B_feat" / f"{stem}.npy", one_hot(int(styles[j])))
    for k in range(test):
        face = faces[photos + drawings + k]
        stem = f"test_{k:05d}"
        image, points = render_photo(face, size, plain)
        _write(root / "test", "A", stem, image, points)
        for style in STYLES:
            drawing, _ = render_drawing(face, size, style)
            write_image_atomic(root / "test" / f"B_style{style}" / f"{stem}.png", drawing)
    summary = {
        "generator": "keras_asym.data.procedural",
        "seed": seed,
        "size": size,
        "plain_photos": plain,
        "photos": photos,
        "drawings": drawings,
        "drawings_per_style": {str(s): int((styles == s).sum()) for s in STYLES},
        "test": test,
        "test_faces": [asdict(faces[photos + drawings + k]) for k in range(test)],
    }
    write_bytes_atomic(root / "manifest.json", json.dumps(summary, indent=1).encode())
    return summary


def paired_examples(count: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` photos with the drawing of the same face in a random style: (photos, one-hot styles, drawings).

    Paired data the method itself never trains on; it gives benchmarks and
    distillation tests a generator with realistic weights in minutes.
    """
    rng = np.random.default_rng(seed)
    photos, styles, drawings = [], [], []
    for _ in range(count):
        face = sample_face(rng)
        style = int(rng.integers(1, 4))
        photos.append(render_photo(face, size)[0])
        drawings.append(render_drawing(face, size, style)[0])
        styles.append(one_hot(style))
    return np.stack(photos), np.stack(styles), np.stack(drawings)
