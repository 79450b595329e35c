"""Make the demo's pretrained drawer: the paper's G, small, fitted to procedural photos and their known drawings.

    python -m keras_asym.pretrained.fit                    # rewrites keras_asym/pretrained/demo_drawer.{keras,json}
    python -m keras_asym.pretrained.fit --output /tmp/d.keras --steps 50

A *paired* fit (each photo with the drawing of the same face in a random
style), which the paper's unpaired method never has; it exists so that the
first run of ``make demo`` shows clean drawings in three visibly different
styles at once (``keras_asym.pretrained.recipe``). The record (``.json``
beside the model) holds the command, the settings, the sha256 and the scores
on held-out faces against the bar.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf
from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.hashing import file_sha256
from keras_asym.evaluation.scoring import paired_metrics
from keras_asym.pretrained import DEMO_DRAWER
from keras_asym.pretrained.recipe import BAR, baselines, fit, held_out_faces, meets_bar
from keras_asym.utils.imageio import write_bytes_atomic

_OUTPUT = flags.DEFINE_string("output", str(DEMO_DRAWER), "The .keras to write (its record goes beside it as .json).")
_STEPS = flags.DEFINE_integer("steps", 1500, "Optimizer steps.", lower_bound=1)
_SIZE = flags.DEFINE_integer("size", 128, "Resolution (a multiple of 4).", lower_bound=32)
_BATCH = flags.DEFINE_integer("batch_size", 4, "Batch size.", lower_bound=1)
_NGF = flags.DEFINE_integer("ngf", 24, "Generator width.", lower_bound=1)
_BLOCKS = flags.DEFINE_integer("n_blocks", 6, "ResNet blocks.", lower_bound=1)
_EXAMPLES = flags.DEFINE_integer("examples", 600, "Procedural photo/drawing pairs.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the faces, the weights and the order.")
_HELD_OUT = flags.DEFINE_integer("held_out", 24, "Held-out faces scored in every style.", lower_bound=1)


def main(argv):
    del argv

    output = Path(_OUTPUT.value)
    settings = {
        "steps": _STEPS.value,
        "size": _SIZE.value,
        "batch_size": _BATCH.value,
        "ngf": _NGF.value,
        "n_blocks": _BLOCKS.value,
        "examples": _EXAMPLES.value,
        "seed": _SEED.value,
    }
    result = fit(output, **settings)
    photos, drawings = held_out_faces(_HELD_OUT.value, _SIZE.value)
    paired, _ = paired_metrics(result["generator"], photos, drawings)
    floors = baselines(drawings)

    summary = {
        "what": "the paper's generator architecture fitted to procedural photos and the known drawing of the same face "
        "(L1 on the pixels and after a Gaussian blur: a paired fit, not the paper's unpaired training)",
        "command": " ".join(["python -m keras_asym.pretrained.fit", *sys.argv[1:]]),
        "settings": settings,
        "final_loss": result["final_loss"],  # pixel L1 + blurred L1 (line_loss), the last batch
        "fit_seconds": result["seconds"],
        "held_out": {
            "faces": _HELD_OUT.value,
            "seed": 10_000,
            "paired": paired,
            "baselines": floors,
            "bar": BAR,
            "meets_bar": meets_bar(paired, floors),
        },
        "sha256": file_sha256(output),
        "bytes": output.stat().st_size,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "software": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
    }
    write_bytes_atomic(output.with_suffix(".json"), (json.dumps(summary, indent=1) + "\n").encode())
    for style, row in paired.items():
        wrong = floors[style]["wrong_face"]
        print(
            f"{style}: SSIM {row['ssim']:.3f} (wrong face {wrong['ssim']:.3f}, blank {floors[style]['blank_page_ssim']:.3f}), "
            f"edge-F1 {row['edge_f1']:.3f} (wrong face {wrong['edge_f1']:.3f}), Chamfer {row['chamfer_px']:.2f} px (wrong face {wrong['chamfer_px']:.2f})"
        )
    met = "met" if summary["held_out"]["meets_bar"] else "NOT met"
    print(f"{output}: {summary['bytes'] / 1e6:.1f} MB, sha256 {summary['sha256']}; the bar ({BAR}) is {met}")
    return cli.OK


if __name__ == "__main__":
    cli.run(main)
