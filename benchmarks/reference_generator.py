"""A full-size style generator with realistic weights, for export/quantization benchmarks.

No trained weights can be downloaded here, and a randomly initialised
generator is a poor proxy for quantization error (its activations are
noise). This fits the paper's G (ngf 64, 9 blocks) with L1 for a few minutes
on CPU (``--steps``) to two kinds of pairs: procedural photos with their
known drawings, and real aligned photos (``--photos``, when given) with line
maps made from them (Canny edges, thickened), so its activations see real
skin, hair and backgrounds. Then it caches it:

    python benchmarks/reference_generator.py --output benchmarks/results/reference_generator.keras
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from absl import app, flags

from edge_demo.runtime.styles import cycling
from keras_asym.data.procedural import paired_examples
from keras_asym.pretrained.recipe import fit_paired
from keras_asym.utils.imageio import ImageReadError, fit_to_size, list_images, read_rgb

_OUTPUT = flags.DEFINE_string("output", "benchmarks/results/reference_generator.keras", "Where to write the generator.")
_STEPS = flags.DEFINE_integer("steps", 300, "Training steps.")
_SIZE = flags.DEFINE_integer("size", 128, "Training resolution.")
_BATCH = flags.DEFINE_integer("batch_size", 4, "Batch size.")
_NGF = flags.DEFINE_integer("ngf", 64, "Generator width (64 = paper).")
_BLOCKS = flags.DEFINE_integer("n_blocks", 9, "ResNet blocks (9 = paper).")
_PHOTOS = flags.DEFINE_string("photos", None, "Folder of real aligned photos to fit as well (line-map targets).")


def line_map(rgb, size: int):
    """A photo and a plausible line drawing of it, both ``size``x``size`` uint8: thickened Canny edges, black on white."""
    photo = fit_to_size(rgb, size, size)
    gray = cv2.GaussianBlur(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    edges = cv2.dilate(cv2.Canny(gray, 40, 110), np.ones((2, 2), np.uint8))
    return photo, cv2.GaussianBlur(255 - edges, (3, 3), 0.6)


def real_pairs(folder, size: int, count: int, seed: int):
    """Up to ``count`` (photos, one-hot styles, line maps) from a folder of aligned photos."""
    files = list_images(folder)
    np.random.default_rng(seed).shuffle(files)
    photos, drawings = [], []
    for path in files[:count]:
        try:
            photo, drawing = line_map(read_rgb(path), size)
        except ImageReadError:
            continue
        photos.append(photo)
        drawings.append(drawing)
    styles = cycling(len(photos))
    return np.stack(photos), styles, np.stack(drawings)


def fit_reference(
    output: str | Path,
    steps: int = 300,
    size: int = 128,
    batch_size: int = 4,
    ngf: int = 64,
    n_blocks: int = 9,
    examples: int = 240,
    seed: int = 0,
    photos_dir: str | Path | None = None,
) -> dict:
    """Procedural pairs (and real photos' line maps) fitted with plain L1 by the library's paired fit."""
    photos, styles, drawings = paired_examples(examples, size, seed)
    if photos_dir is not None:
        real = real_pairs(photos_dir, size, examples, seed)
        photos, styles, drawings = (np.concatenate([a, b]) for a, b in zip((photos, styles, drawings), real))
    return fit_paired(
        photos,
        styles,
        drawings,
        Path(output),
        steps=steps,
        batch_size=batch_size,
        ngf=ngf,
        n_blocks=n_blocks,
        seed=seed,
        loss="mae",
        label="reference generator",
    )


def main(argv):
    del argv
    result = fit_reference(_OUTPUT.value, _STEPS.value, _SIZE.value, _BATCH.value, _NGF.value, _BLOCKS.value, photos_dir=_PHOTOS.value)
    print(f"reference generator: {_OUTPUT.value} (final L1 {result['final_loss']:.4f}, {result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
