"""The drawing-style classifier: a 3-class model of drawings whose softmax is the style vector.

The official code trained a VGG19 classifier on drawings of the three styles
and fed its softmax to the generator as the style vector. With ImageNet VGG19
weights a classification head sits on the frozen VGG19 trunk (the official
choice); without them a small CNN is trained from scratch. ``python -m
keras_asym.style`` trains one and writes the vectors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import keras
import numpy as np

from edge_demo.runtime import cli
from edge_demo.runtime.pixels import OFFSET, SCALE
from keras_asym.utils.imageio import ImageReadError, list_images, read_rgb, write_npy_atomic
from keras_asym.utils.keras_archive import load_weights_checked, read_config

INPUT_SIZE = 224
STYLE_FOLDERS = ("style1", "style2", "style3")

VGG19_CACHE = Path.home() / ".keras" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


def build_classifier(vgg19_weights: str = "auto"):
    """(model, trunk name). VGG19 + a small head with ImageNet weights if obtainable, else a small CNN."""
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
        x = keras.layers.Rescaling(1 / SCALE, offset=OFFSET)(inputs)
        for filters in (32, 64, 128, 128):
            x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="style_probabilities")(x)
    return keras.Model(inputs, outputs, name=f"style_classifier_{trunk_name}"), trunk_name


def load_classifier(path: str | Path):
    """A classifier saved by ``build_classifier``'s model: the architecture is built from this code (the trunk its
    saved name says) and only the weights are read from the file, so a config declaring huge layers costs nothing."""
    record, _ = read_config(Path(path))
    name = (record.get("config") or {}).get("name") if isinstance(record, dict) else None
    vgg = name == "style_classifier_vgg19_imagenet"
    model, _ = build_classifier(None if vgg else "none")  # None: VGG19's architecture without its download
    return load_weights_checked(model, path, "a style classifier")


def load_drawing(path: Path) -> np.ndarray:
    """A drawing as 224x224x3 float32 in [0, 255] (grayscale repeated)."""
    gray = cv2.cvtColor(read_rgb(path), cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)


def load_labelled(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
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
    features_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for path in list_images(folder):
        try:
            probabilities = np.asarray(model(load_drawing(path)[None]))[0]
        except ImageReadError as err:
            cli.skipped(err)
            continue
        write_npy_atomic(features_dir / f"{path.stem}.npy", probabilities.astype(np.float32))
        out[path.stem] = probabilities.round(4).tolist()
    return out
