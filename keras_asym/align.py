"""Align faces to the official 512x512 template (white fill), as the official MATLAB step does.

    python -m keras_asym.align --input photos/ --output aligned/ [--size 512] [--all_faces]

Writes ``<stem>.png`` per image (``<stem>_face<k>.png`` with ``--all_faces``)
and ``transforms.json`` with each 2x3 matrix (input pixels -> aligned
pixels) and the 5 points in both frames. Images
without a face or unreadable ones are reported and skipped; exit status 0 only
if every image was aligned.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.alignment import align, transform_points
from keras_asym.face.detector import faces_in_files, open_landmarker
from keras_asym.utils.imageio import list_images, write_bytes_atomic, write_image_atomic

_INPUT = flags.DEFINE_string("input", None, "An image file or a folder of images.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.", required=True)
_SIZE = flags.DEFINE_integer("size", 512, "Output side (the official template is 512).", lower_bound=32, upper_bound=4096)
_ALL_FACES = flags.DEFINE_boolean("all_faces", False, "Align every face, not only the largest.")
_MIN_SCORE = flags.DEFINE_float("min_score", 0.5, "Minimum detector confidence.", lower_bound=0.0, upper_bound=1.0)
_LANDMARKER_TASK = flags.DEFINE_string(
    "landmarker_task", None, "Official face_landmarker.task: use MediaPipe's FaceLandmarker instead of detector + mesh."
)


def main(argv):
    del argv

    try:
        files = list_images(_INPUT.value)
    except FileNotFoundError as err:
        cli.error("align", err)
        return 2
    landmarker = open_landmarker("align", _MIN_SCORE.value, _LANDMARKER_TASK.value)
    if landmarker is None:
        return 2
    output = Path(_OUTPUT.value)
    transforms, failures = {}, []
    with landmarker:
        for path, rgb, faces, error in faces_in_files(files, landmarker, _ALL_FACES.value):
            if error:
                failures.append(error)
                continue
            for k, face in enumerate(faces):
                name = f"{path.stem}_face{k}.png" if _ALL_FACES.value else f"{path.stem}.png"
                aligned, matrix = align(rgb, face.points, _SIZE.value)
                write_image_atomic(output / name, aligned)
                transforms[name] = {
                    "source": str(path),
                    "matrix": matrix.round(6).tolist(),
                    "points_source": face.points.round(2).tolist(),
                    "points_aligned": transform_points(matrix, face.points).round(2).tolist(),
                    "score": round(face.score, 4),
                }
    write_bytes_atomic(output / "transforms.json", json.dumps(transforms, indent=2).encode())
    for line in failures:
        cli.skipped(line)
    print(f"aligned {len(transforms)} face(s) from {len(files) - len(failures)} of {len(files)} images into {output}")
    return cli.batch_status(len(files) - len(failures), len(failures))


if __name__ == "__main__":
    cli.run(main)
