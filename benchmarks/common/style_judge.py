"""The independent style judge of the training benchmarks: a small CNN fitted on known drawings only.

It never sees a generator's drawing while it is fitted, so "the judge calls it style k" is evidence that G drew
style k. ``benchmarks.unpaired_drawer`` fits it on a dataset's training drawings, ``benchmarks.hidden_information``
on fresh procedural drawings.
"""

from __future__ import annotations

import keras
import numpy as np

from edge_demo.runtime.pixels import to_model


def fit(drawings: np.ndarray, labels: np.ndarray, seed: int = 7) -> keras.Model:
    """Fits the judge on uint8 drawings (N, H, W) with 0-based style labels (N,)."""
    size = drawings.shape[1]
    x = to_model(drawings[..., None])
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((size, drawings.shape[2], 1)),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu", padding="same"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu", padding="same"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu", padding="same"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, np.asarray(labels), epochs=15, batch_size=32, verbose=0, shuffle=True)
    return model


def accuracy(judge: keras.Model, drawings: dict) -> dict:
    """Per style k: the share of drawings (uint8, N, H, W) that the judge calls style k."""
    return {f"style{k}": float(np.mean(np.argmax(np.asarray(judge(to_model(d[..., None]))), -1) == k - 1)) for k, d in drawings.items()}
