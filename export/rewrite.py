"""Functional copies of a generator with some layers replaced by others that compute the same function.

The export's speed rewrites (``export.winograd``) change how a layer computes, never what: each replacement
carries the original's name and weights transformed into its own form, so names that other steps look up (norms,
convolutions) still resolve in the copy.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

# layer -> None (kept as it is) or (the layer that replaces it, a function from its weights to the new layer's)
Replacement = Callable[[keras.layers.Layer], "tuple[keras.layers.Layer, Callable[[list[np.ndarray]], list[np.ndarray]]] | None"]


def replace_layers(model: keras.Model, replacement: Replacement, suffix: str) -> tuple[keras.Model, list[str]]:
    """(a functional copy of ``model`` named ``<name>_<suffix>``, in which every layer ``replacement`` gives a new
    layer for is replaced, the names of those layers)."""
    plain = keras.Model(model.input, model.output, name=model.name)
    replaced: dict[str, Callable] = {}

    def clone(layer):
        chosen = replacement(layer)
        if chosen is None:
            return layer.__class__.from_config(layer.get_config())
        new_layer, transform = chosen
        replaced[layer.name] = transform
        return new_layer

    copy = keras.models.clone_model(plain, clone_function=clone)
    for layer in plain.layers:
        if not layer.weights:  # inputs among them, which clone_model may rename
            continue
        target = copy.get_layer(layer.name)
        transform = replaced.get(layer.name)
        target.set_weights(transform(layer.get_weights()) if transform else layer.get_weights())
    return keras.Model(copy.input, copy.output, name=f"{model.name}_{suffix}"), list(replaced)
