"""The teacher's targets for the cached (photo, style) rows, computed once per run: its drawings and, for feature
hints, its bottleneck features, in one pass (the bottleneck is most of what a drawing costs the teacher)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.progress import Progress
from keras_asym.distillation.hints import bottleneck_layer, pooled, standardised


def targets(
    teacher: keras.Model,
    photos: np.ndarray,
    index: np.ndarray,
    styles: np.ndarray,
    drawings: bool = True,
    features: bool = False,
    batch: int = 4,
) -> dict:
    """``{"drawings": uint8 [rows, size, size], "features": float16 [rows, size / 8, size / 8, channels]}``, each
    present when asked: the teacher's drawing of ``photos[index[r]]`` in ``styles[r]``, and its standardised
    bottleneck pooled to the student's resolution."""
    if not (drawings or features):
        raise ValueError("targets: ask for drawings, features or both.")
    model = teacher  # drawings alone: the teacher as it is (any generator taking {"photo", "style"})
    if features:
        bottleneck = teacher.get_layer(bottleneck_layer(teacher)).output
        model = keras.Model(teacher.inputs, [teacher.output, bottleneck] if drawings else [bottleneck])
    run = tf.function(lambda p, s: model({"photo": p, "style": s}, training=False), jit_compile=True)
    size, drawn, hidden = photos.shape[1], [], []
    what = " and ".join(name for name, asked in (("drawings", drawings), ("features", features)) if asked)
    progress = Progress(len(index), f"distill: teacher {what}", unit="drawings" if drawings else "rows", interval=30.0)
    for i in range(0, len(index), batch):
        out = run(to_model(photos[index[i : i + batch]]), styles[i : i + batch])
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        if drawings:
            drawn.append(to_pixels(np.asarray(out.pop(0))[..., 0]))
        if features:
            hidden.append(pooled(np.asarray(out.pop(0), np.float32), size))
        progress.update(min(i + batch, len(index)))
    result = {"drawings": np.concatenate(drawn)} if drawings else {}
    return {**result, "features": standardised(np.concatenate(hidden))} if features else result


def teacher_features(teacher: keras.Model, photos: np.ndarray, index: np.ndarray, styles: np.ndarray, batch: int = 4) -> np.ndarray:
    """The features alone: for a cache whose drawings were made without them."""
    return targets(teacher, photos, index, styles, drawings=False, features=True, batch=batch)["features"]
