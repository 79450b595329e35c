"""A float64 copy of a Keras generator: the reference float32 runs are judged against (``benchmarks.float_parity``).

Flag-free, so tests and other benchmarks can import it.
"""

from __future__ import annotations

import keras
import numpy as np


def float64_copy(generator: keras.Model) -> keras.Model:
    """The generator with every layer in float64 (the instance norms' statistics included) and its weights widened."""
    plain = keras.Model(generator.input, generator.output)
    copy = keras.models.clone_model(
        plain, clone_function=lambda layer: layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})
    )
    for layer in plain.layers:
        if layer.weights:
            copy.get_layer(layer.name).set_weights([w.astype(np.float64) for w in layer.get_weights()])
    return copy
