"""Print the 5 alignment points of every face in images, as JSON.

    python -m keras_asym.landmarks --input photos/ --output points.json [--all_faces]

Per image: ``{"faces": [{"points": [[x, y] x 5], "score": s, "box": [x, y, w, h]}]}``
with points in the input frame, ordered image-left eye, image-right eye, nose
tip, mouth-left, mouth-right; or ``{"faces": null, "error": reason}`` when the
file is unreadable or has no face. Exit status 0 if every image had a face.
"""

from __future__ import annotations

import json

from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.alignment import POINT_NAMES
from keras_asym.face.detector import faces_in_files, open_landmarker
from keras_asym.utils.imageio import list_images, write_bytes_atomic

_INPUT = flags.DEFINE_string("input", None, "An image file or a folder of images.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "JSON file to write.", required=True)
_ALL_FACES = flags.DEFINE_boolean("all_faces", False, "Report every face (largest first), not only the largest.")
_MIN_SCORE = flags.DEFINE_float("min_score", 0.5, "Minimum detector confidence.", lower_bound=0.0, upper_bound=1.0)
_LANDMARKER_TASK = flags.DEFINE_string(
    "landmarker_task", None, "Official face_landmarker.task: use MediaPipe's FaceLandmarker instead of detector + mesh."
)


def main(argv):
    del argv

    try:
        files = list_images(_INPUT.value)
    except FileNotFoundError as err:
        cli.error("landmarks", err)
        return 2
    landmarker = open_landmarker("landmarks", _MIN_SCORE.value, _LANDMARKER_TASK.value)
    if landmarker is None:
        return 2
    results, failed = {"point_order": list(POINT_NAMES), "images": {}}, 0
    with landmarker:
        for path, _, faces, error in faces_in_files(files, landmarker, _ALL_FACES.value):
            if error:
                results["images"][path.name] = {"faces": None, "error": error}
                failed += 1
                continue
            results["images"][path.name] = {
                "faces": [
                    {"points": face.points.round(2).tolist(), "score": round(face.score, 4), "box": [round(v, 1) for v in face.box]}
                    for face in faces
                ]
            }
    write_bytes_atomic(_OUTPUT.value, json.dumps(results, indent=2).encode())
    print(f"{len(files) - failed} of {len(files)} images with a face; wrote {_OUTPUT.value}")
    return cli.batch_status(len(files) - failed, failed)


if __name__ == "__main__":
    cli.run(main)
