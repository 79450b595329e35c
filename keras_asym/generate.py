"""Write a procedural portrait dataset (the built-in default; see ``keras_asym.data.procedural``).

    python -m keras_asym.generate --output data/procedural [--photos 200 --drawings 200 --test 20 --size 256 --seed 0]

Writes the ``prepare`` layout (``A/``, ``B/``, masks, ``B_feat/``) for
training, ``test/A`` with the same faces drawn in every style under
``test/B_style{1,2,3}`` for evaluation, and ``manifest.json``.
"""

from __future__ import annotations

import json

from absl import flags

from edge_demo.runtime import cli
from keras_asym.data.procedural import write_dataset

_OUTPUT = flags.DEFINE_string("output", None, "Dataset folder to write.", required=True)
# Every face is sampled before any is drawn, so the counts bound memory as well as time.
_PHOTOS = flags.DEFINE_integer("photos", 200, "Training photos.", lower_bound=0, upper_bound=100_000)
_DRAWINGS = flags.DEFINE_integer(
    "drawings", 200, "Training drawings (of other faces), styles drawn uniformly.", lower_bound=0, upper_bound=100_000
)
_TEST = flags.DEFINE_integer("test", 20, "Held-out faces with their drawing in every style.", lower_bound=0, upper_bound=100_000)
_SIZE = flags.DEFINE_integer("size", 256, "Image side in pixels.", lower_bound=16, upper_bound=4096)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0, upper_bound=2147483647)
_PLAIN = flags.DEFINE_boolean("plain_photos", False, "Flat-coloured photos: no texture, lighting or noise.")


def main(argv):
    del argv

    summary = write_dataset(_OUTPUT.value, _PHOTOS.value, _DRAWINGS.value, _TEST.value, _SIZE.value, _SEED.value, _PLAIN.value)
    print(json.dumps({k: v for k, v in summary.items() if k != "test_faces"}))
    return 0


if __name__ == "__main__":
    cli.run(main)
