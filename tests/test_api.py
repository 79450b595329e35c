"""The package's public names (``keras_asym.__all__``) exist and the example in its docstring works."""

from __future__ import annotations

import keras
import numpy as np

import keras_asym
from edge_demo.runtime.styles import one_hot


def test_every_public_name_exists_and_nothing_private_is_exported():
    for name in keras_asym.__all__:
        assert not name.startswith("_") and getattr(keras_asym, name) is not None, name


def test_the_docstring_example_builds_a_model_and_draws_with_a_saved_generator(tmp_path):
    model = keras_asym.build_model(image_size=32, ngf=4, ndf=4, n_blocks=1, n_layers_d=1)
    assert isinstance(model, keras_asym.AsymmetricCycleGAN) and isinstance(model.generator, keras_asym.StyleGenerator)
    path = tmp_path / "generator.keras"
    model.generator.save(path)
    drawer = keras_asym.Drawer(path, jit_compile=False)
    photos = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    drawings = drawer.draw(photos, one_hot(1))
    assert drawings.shape == (3, 32, 32) and drawings.dtype == np.uint8
    again = keras.saving.load_model(path)  # the registered classes load without naming them
    assert type(again) is keras_asym.StyleGenerator
