"""The package's public names (``keras_asym.__all__``) exist and the example in its docstring works."""

from __future__ import annotations

import keras
import numpy as np

import keras_asym
from edge_demo.runtime.styles import one_hot


def test_every_public_name_is_the_packages_own_and_every_registered_model_is_public():
    """What __all__ lists is defined in the package (not a re-exported dependency), and every keras.Model the
    package registers for serialization is public (its layers are building blocks and need not be)."""
    assert len(set(keras_asym.__all__)) == len(keras_asym.__all__)
    for name in keras_asym.__all__:
        value = getattr(keras_asym, name)
        assert not name.startswith("_"), name
        if callable(value):
            assert value.__module__.startswith("keras_asym."), (name, value.__module__)
    registered = {key.split(">")[1]: value for key, value in keras.saving.get_custom_objects().items() if key.startswith("keras_asym>")}
    models = {name for name, value in registered.items() if isinstance(value, type) and issubclass(value, keras.Model)}
    assert {"StyleGenerator", "AsymmetricCycleGAN", "MobileStyleGenerator"} <= models
    assert models <= set(keras_asym.__all__), models - set(keras_asym.__all__)


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
