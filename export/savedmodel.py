"""Keras generator -> SavedModel with serving signatures.

Contract (also written into every export's JSON sidecar): ``photo`` is NHWC
float32 RGB in [-1, 1] (``edge_demo.runtime.pixels.to_model``), ``style`` is (batch, 3)
float32 weights of style1..style3 summing to 1, ``drawing`` is NHWC float32
grayscale in [-1, 1]. Float in [-1, 1] rather than uint8 keeps the
SavedModel identical to the Keras model, so training code and serving agree
to the last bit; the quantized TFLite files take uint8/int8 pixels instead.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge_demo.runtime.styles import STYLE_COUNT


def _fixed_style(generator: keras.Model, k: int):
    one_hot = tf.constant(np.eye(STYLE_COUNT, dtype=np.float32)[k : k + 1])

    def fixed(photo):
        style = tf.tile(one_hot, [tf.shape(photo)[0], 1])
        return {"drawing": generator({"photo": photo, "style": style}, training=False)}

    return fixed


def export_archive(generator: keras.Model, height: int, width: int, batch: int | None = None) -> keras.export.ExportArchive:
    """``serving_default(photo, style)`` and, for serving (``batch=None``), ``style1..3(photo)`` endpoints.

    ``batch=1`` gives the fully static graph TFLite conversion wants (no
    Shape ops feeding the transpose convolutions). Such a graph is written for
    the converter, which takes ``serving_default`` alone, so it gets no style
    endpoints: each costs a trace of the generator (the three took a fifth of
    an export's time: 26.4 s against 21.1 s, measured).
    Keras' ``ExportArchive`` tracks the variables itself; a hand-made ``tf.Module``
    around a Keras 3 model leaves READ_VARIABLE ops that the TFLite calibrator cannot run.
    """
    archive = keras.export.ExportArchive()
    archive.track(generator)
    photo_spec = tf.TensorSpec((batch, height, width, 3), tf.float32, name="photo")
    style_spec = tf.TensorSpec((batch, STYLE_COUNT), tf.float32, name="style")
    archive.add_endpoint(
        "serving_default",
        lambda photo, style: {"drawing": generator({"photo": photo, "style": style}, training=False)},
        input_signature=[photo_spec, style_spec],
    )
    for k in range(STYLE_COUNT if batch is None else 0):
        archive.add_endpoint(f"style{k + 1}", _fixed_style(generator, k), input_signature=[photo_spec])
    return archive


def save_savedmodel(generator: keras.Model, path: str | Path, height: int, width: int, batch: int | None = None) -> Path:
    """Writes the SavedModel (``export_archive``) atomically (temp folder, then rename) and returns its path."""
    path = Path(path)
    archive = export_archive(generator, height, width, batch)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        archive.write_out(str(tmp), verbose=False)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path
