"""Style features: a 3-class classifier of drawings and its softmax per drawing.

The official code trained a VGG19 classifier on drawings of the three styles
and fed its softmax to the generator as the style vector. Here:

    python -m keras_asym.style --drawings DRAWINGS --output style_model.keras [--epochs 10]
        [--vgg19_weights vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5]

``DRAWINGS`` holds ``style1/ style2/ style3/`` subfolders. With ImageNet VGG19
weights a classification head is trained on the frozen VGG19 trunk (the
official choice); without them a small CNN is trained from scratch, and the
command says which. ``--vgg19_weights``: ``auto`` (the Keras cache file
``~/.keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` if
present), ``imagenet`` (let Keras download it), a path, or ``none``.
``--predict DIR --features_dir OUT`` writes ``OUT/<stem>.npy`` softmax vectors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np
from absl import flags

from edge_demo.runtime import cli
from keras_asym.models.style_classifier import build_classifier, load_classifier, load_labelled, predict_features
from keras_asym.utils.imageio import save_keras_atomic

_DRAWINGS = flags.DEFINE_string("drawings", None, "Folder with style1/ style2/ style3/ subfolders (training).")
_OUTPUT = flags.DEFINE_string("output", None, "Classifier .keras path to write (training) or read (--predict).")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1, upper_bound=10000)
_VGG19_WEIGHTS = flags.DEFINE_string("vgg19_weights", "auto", "auto | imagenet | none | path to ImageNet VGG19 no-top weights .h5.")
_PREDICT = flags.DEFINE_string("predict", None, "Folder of drawings to classify with --output's model.")
_FEATURES_DIR = flags.DEFINE_string("features_dir", None, "Where --predict writes <stem>.npy softmax vectors.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0, upper_bound=2147483647)


def main(argv):
    del argv
    keras.utils.set_random_seed(_SEED.value)
    if _PREDICT.value:
        if not (_OUTPUT.value and _FEATURES_DIR.value):
            print("style: error: --predict needs --output (the classifier) and --features_dir.", file=sys.stderr)
            return 2
        try:
            model = load_classifier(_OUTPUT.value)
        except (FileNotFoundError, ValueError) as err:
            cli.error("style", err)
            return 2
        features = predict_features(model, Path(_PREDICT.value), Path(_FEATURES_DIR.value))
        print(json.dumps({"written": len(features), "features_dir": _FEATURES_DIR.value}))
        return 0
    if not (_DRAWINGS.value and _OUTPUT.value):
        print("style: error: training needs --drawings and --output.", file=sys.stderr)
        return 2
    try:
        images, labels, skipped = load_labelled(Path(_DRAWINGS.value))
    except FileNotFoundError as err:
        cli.error("style", err)
        return 2
    for line in skipped:
        cli.skipped(line)
    model, trunk = build_classifier(_VGG19_WEIGHTS.value)
    print(f"style: classifier trunk = {trunk} ({len(images)} drawings)")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3 if trunk == "small_cnn" else 1e-4),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    order = np.random.default_rng(_SEED.value).permutation(len(images))
    history = model.fit(
        images[order], labels[order], epochs=_EPOCHS.value, batch_size=8, validation_split=0.2 if len(images) >= 10 else 0.0, verbose=2
    )
    output = Path(_OUTPUT.value)
    output.parent.mkdir(parents=True, exist_ok=True)
    save_keras_atomic(model, output)
    summary = {"trunk": trunk, "drawings": int(len(images)), "final": {k: float(v[-1]) for k, v in history.history.items()}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    cli.run(main)
