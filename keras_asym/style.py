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

import numpy as np
from absl import flags

from edge_demo.runtime import cli
from keras_asym.imageio import save_keras_atomic

INPUT_SIZE = 224
STYLE_FOLDERS = ("style1", "style2", "style3")

_DRAWINGS = flags.DEFINE_string("drawings", None, "Folder with style1/ style2/ style3/ subfolders (training).")
_OUTPUT = flags.DEFINE_string("output", None, "Classifier .keras path to write (training) or read (--predict).")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs.")
_VGG19_WEIGHTS = flags.DEFINE_string("vgg19_weights", "auto", "auto | imagenet | none | path to ImageNet VGG19 no-top weights .h5.")
VGG19_CACHE = Path.home() / ".keras" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
_PREDICT = flags.DEFINE_string("predict", None, "Folder of drawings to classify with --output's model.")
_FEATURES_DIR = flags.DEFINE_string("features_dir", None, "Where --predict writes <stem>.npy softmax vectors.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")


def build_classifier(vgg19_weights: str = "auto"):
    """(model, trunk name). VGG19 + a small head with ImageNet weights if obtainable, else a small CNN."""
    import keras

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="drawing_rgb")  # [0, 255]
    trunk_name = "small_cnn"
    trunk = None
    if vgg19_weights == "auto":
        vgg19_weights = str(VGG19_CACHE) if VGG19_CACHE.is_file() else "none"
    if vgg19_weights != "none":
        try:
            weights = vgg19_weights
            trunk = keras.applications.VGG19(include_top=False, weights=weights, input_shape=(INPUT_SIZE, INPUT_SIZE, 3))
            trunk.trainable = False
            trunk_name = "vgg19_imagenet"
        except Exception as err:  # noqa: BLE001 - any download/file failure means: fall back
            print(f"style: VGG19 ImageNet weights unavailable ({type(err).__name__}: {err}); training a small CNN.", file=sys.stderr)
            trunk = None
    if trunk is not None:
        x = keras.applications.vgg19.preprocess_input(inputs)
        x = keras.layers.GlobalAveragePooling2D()(trunk(x, training=False))
    else:
        x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
        for filters in (32, 64, 128, 128):
            x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="style_probabilities")(x)
    return keras.Model(inputs, outputs, name=f"style_classifier_{trunk_name}"), trunk_name


def load_drawing(path: Path) -> np.ndarray:
    """A drawing as 224x224x3 float32 in [0, 255] (grayscale repeated)."""
    import cv2

    from keras_asym.imageio import read_rgb

    gray = cv2.cvtColor(read_rgb(path), cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)


def load_labelled(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from keras_asym.imageio import ImageReadError, list_images

    images, labels, skipped = [], [], []
    for label, name in enumerate(STYLE_FOLDERS):
        sub = folder / name
        if not sub.is_dir():
            raise FileNotFoundError(f"{sub}: missing; drawings must be sorted into {', '.join(STYLE_FOLDERS)}.")
        for path in list_images(sub):
            try:
                images.append(load_drawing(path))
                labels.append(label)
            except ImageReadError as err:
                skipped.append(str(err))
    if not images:
        raise FileNotFoundError(f"{folder}: no drawings found.")
    return np.stack(images), np.array(labels), skipped


def predict_features(model, folder: Path, features_dir: Path) -> dict[str, list[float]]:
    from keras_asym.imageio import ImageReadError, list_images, write_npy_atomic

    features_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for path in list_images(folder):
        try:
            probabilities = np.asarray(model(load_drawing(path)[None]))[0]
        except ImageReadError as err:
            print(f"skipped: {err}", file=sys.stderr)
            continue
        write_npy_atomic(features_dir / f"{path.stem}.npy", probabilities.astype(np.float32))
        out[path.stem] = probabilities.round(4).tolist()
    return out


def main(argv):
    del argv
    import keras

    keras.utils.set_random_seed(_SEED.value)
    if _PREDICT.value:
        if not (_OUTPUT.value and _FEATURES_DIR.value):
            print("style: error: --predict needs --output (the classifier) and --features_dir.", file=sys.stderr)
            return 2
        model = keras.saving.load_model(_OUTPUT.value)
        features = predict_features(model, Path(_PREDICT.value), Path(_FEATURES_DIR.value))
        print(json.dumps({"written": len(features), "features_dir": _FEATURES_DIR.value}))
        return 0
    if not (_DRAWINGS.value and _OUTPUT.value):
        print("style: error: training needs --drawings and --output.", file=sys.stderr)
        return 2
    try:
        images, labels, skipped = load_labelled(Path(_DRAWINGS.value))
    except FileNotFoundError as err:
        print(f"style: error: {err}", file=sys.stderr)
        return 2
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
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
