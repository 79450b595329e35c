"""Fit the map from MediaPipe's 468-point mesh to the official 5 alignment points, and measure it on held-out photos.

    python -m benchmarks.fit_five_points        # writes edge_demo/runtime/five_points.json and docs/results/five_points.json

The official points come from MTCNN, whose eye points are not the centres of
the eye contours, nor its mouth points the mesh's lip corners. Each of the 5
points is modelled as a weighted mean of a few mesh points around it (weights
summing to one, shared by x and y, so the map commutes with any similarity
transform of the photo), fitted by ridge-regularised least squares towards the
plain mean, in units of the inter-ocular distance. It is fitted on the shared
aligned photos of the calibration half (``benchmarks.common.heldout``) and scored on the
held-out half and on the alignment example, which it never saw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from absl import flags

from edge_demo.runtime import cli

_RIDGE = flags.DEFINE_float("ridge", 0.02, "Pull of each point's weights towards the plain mean (per photo, in IOD^2 units).")
_MODEL_OUT = flags.DEFINE_string("model_output", "edge_demo/runtime/five_points.json", "Where the shipped weights go.")
_OUTPUT = flags.DEFINE_string("output", "docs/results/five_points.json", "Where the measurement goes.")

# Candidate mesh points per official point: the eye contours (and the upper lid and brow-side corners
# MTCNN leans to), the nose tip and its neighbours, the mouth corners and the lip points beside them.
CANDIDATES = {
    "left_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173, 130, 243, 27, 23),
    "right_eye": (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398, 359, 463, 257, 253),
    "nose": (4, 1, 5, 195, 19, 94, 44, 274, 45, 275, 220, 440),
    "mouth_left": (61, 76, 62, 78, 191, 95, 146, 185, 40, 91, 57, 43),
    "mouth_right": (291, 306, 292, 308, 415, 324, 375, 409, 270, 321, 287, 273),
}
# The map before fitting: eye-contour centres, nose tip, mouth corners.
START = {
    "left_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173),
    "right_eye": (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398),
    "nose": (4,),
    "mouth_left": (61,),
    "mouth_right": (291,),
}


def start_weights(name: str) -> np.ndarray:
    chosen = set(START[name])
    w = np.array([1.0 if i in chosen else 0.0 for i in CANDIDATES[name]])
    return w / w.sum()


def fit_point(meshes: list[np.ndarray], targets: np.ndarray, iods: np.ndarray, name: str, ridge: float) -> np.ndarray:
    """Weights w (sum 1) minimising sum_photos |sum_i w_i m_i - t|^2 / iod^2 + ridge * n * |w - w0|^2."""
    index = list(CANDIDATES[name])
    w0 = start_weights(name)
    rows, rhs = [], []
    for mesh, target, iod in zip(meshes, targets, iods):
        points = mesh[index, :2] / iod  # (k, 2)
        rows += [points[:, 0], points[:, 1]]
        rhs += [target[0] / iod, target[1] / iod]
    a, b = np.array(rows), np.array(rhs)
    k = len(index)
    lam = ridge * len(meshes)
    # KKT system of the equality-constrained ridge least squares.
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = a.T @ a + lam * np.eye(k)
    kkt[:k, k] = kkt[k, :k] = 1.0
    solution = np.linalg.solve(kkt, np.concatenate([a.T @ b + lam * w0, [1.0]]))
    return solution[:k]


def apply(mesh: np.ndarray, model: dict) -> np.ndarray:
    xy = np.asarray(mesh)[:, :2]
    return np.stack([np.asarray(model[name]["weights"]) @ xy[list(model[name]["indices"])] for name in CANDIDATES])


def errors(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points - reference, axis=1) / np.linalg.norm(reference[1] - reference[0])


def collect(files: list[Path], landmarker) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    from keras_asym.utils.imageio import read_rgb

    meshes, references, names = [], [], []
    for image in files:
        reference = np.loadtxt(image.parent.parent / "landmarks5" / f"{image.stem}.txt")
        meshes.append(landmarker.largest(read_rgb(image), where=str(image)).mesh)
        references.append(reference)
        names.append(image.name)
    return meshes, references, names


def summary(rows: np.ndarray) -> dict:
    return {
        "mean": float(rows.mean()),
        "worst_photo": float(rows.mean(axis=1).max()),
        "worst_point": float(rows.max()),
        "per_point_mean": rows.mean(axis=0).round(4).tolist(),
        "photos": len(rows),
    }


def main(argv):
    del argv
    from benchmarks.common.heldout import photo_split
    from benchmarks.common.shared_data import shared_dir
    from keras_asym.face.detector import FaceLandmarker
    from keras_asym.utils.imageio import list_images, read_rgb, write_bytes_atomic

    work = Path("benchmarks/results/five_points")
    held_dir, fit_dir = photo_split(10, work / "photo_split")
    if held_dir is None:
        print(f"fit_five_points: error: {shared_dir() / 'data' / 'aligned_photos'}: the shared aligned photos are needed.", file=sys.stderr)
        return cli.BAD_INPUT
    with FaceLandmarker() as landmarker:
        fit_meshes, fit_refs, _ = collect([p.resolve() for p in list_images(fit_dir)], landmarker)
        held_meshes, held_refs, held_names = collect([p.resolve() for p in list_images(held_dir)], landmarker)
        example = shared_dir() / "data" / "alignment_example"
        example_mesh = landmarker.largest(read_rgb(example / "photo.jpg"), where="alignment example").mesh
    example_ref = np.loadtxt(example / "landmarks5.txt")
    iods = np.array([np.linalg.norm(r[1] - r[0]) for r in fit_refs])
    model = {}
    for k, name in enumerate(CANDIDATES):
        weights = fit_point(fit_meshes, np.array([r[k] for r in fit_refs]), iods, name, _RIDGE.value)
        model[name] = {"indices": list(CANDIDATES[name]), "weights": [round(float(w), 6) for w in weights]}
    start = {name: {"indices": list(CANDIDATES[name]), "weights": start_weights(name).tolist()} for name in CANDIDATES}
    result = {
        "benchmark": "five_points",
        "command": " ".join(["python", "-m", "benchmarks.fit_five_points", *sys.argv[1:]]),
        "ridge": _RIDGE.value,
        "fitted_on": len(fit_meshes),
        "held_out": held_names,
    }
    for label, chosen in (("before", start), ("fitted", model)):
        result[label] = {
            "held_out": summary(np.array([errors(apply(m, chosen), r) for m, r in zip(held_meshes, held_refs)])),
            "fit_photos": summary(np.array([errors(apply(m, chosen), r) for m, r in zip(fit_meshes, fit_refs)])),
            "alignment_example": float(errors(apply(example_mesh, chosen), example_ref).mean()),
        }
        print(
            f"{label}: held-out mean {result[label]['held_out']['mean']:.2%}, worst photo {result[label]['held_out']['worst_photo']:.2%}; "
            f"fit photos mean {result[label]['fit_photos']['mean']:.2%}; alignment example {result[label]['alignment_example']:.2%}"
        )
    shipped = {
        "about": "weighted means of face-mesh points giving the official 5 points; made by python -m benchmarks.fit_five_points",
        "order": list(CANDIDATES),
        **model,
    }
    write_bytes_atomic(_MODEL_OUT.value, (json.dumps(shipped, indent=1) + "\n").encode())
    write_bytes_atomic(_OUTPUT.value, json.dumps(result, indent=1).encode())
    print(f"wrote {_MODEL_OUT.value} and {_OUTPUT.value}")
    return cli.OK


if __name__ == "__main__":
    cli.run(main)
