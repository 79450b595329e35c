"""keras-asym: unpaired portrait drawing generation via asymmetric cycle mapping, in Keras 3.

    import keras_asym
    from edge_demo.runtime.styles import one_hot

    model = keras_asym.build_model(image_size=256)  # G, F, the discriminators and the paper's objective;
                                                    # compile and fit it, or run python -m keras_asym.train
    drawer = keras_asym.Drawer("generator.keras")   # a saved G, or any of its .tflite exports
    drawings = drawer.draw(photos, one_hot(1))      # (N, H, W, 3) uint8 photos -> (N, H, W) uint8, style 1

The package is layered; each layer imports only those below it
(``tests/test_layers_of_code.py`` checks this):

* ``edge_demo.runtime``: TensorFlow-free foundation (faces, alignment, TFLite runner, style vector).
* ``keras_asym.utils``, ``face``, ``data``, ``layers``, ``objective``, ``models``, ``training``,
  ``evaluation``, ``inference``, ``convert``, ``distillation``, ``pretrained``: the library.
* ``export``: Keras -> SavedModel -> TFLite.
* the modules at this package's root (``train``, ``draw``, ``evaluate``, ``demo``, ...), ``export.__main__``
  and ``edge_demo``'s camera app: the commands.

Importing the package registers every serializable layer and model, so ``keras.saving.load_model``
reads the ``.keras`` files this project writes. The project's own commands (``python -m keras_asym.<command>``,
``keras-asym``) skip that: each imports what it uses once its flags and files are checked, so a refusal or
``--help`` never waits for TensorFlow.
"""

from edge_demo.runtime import native_logs

native_logs.hide_for_commands()  # before TensorFlow is imported; a no-op outside the project's commands

# ruff: noqa: E402  (the imports below must follow the native-log filter)
import importlib

# public name -> the module that defines it
_HOMES = {
    "DistillationModel": "keras_asym.distillation.model",
    "DistillConfig": "keras_asym.distillation.config",
    "Drawer": "keras_asym.inference.drawer",
    "load_generator": "keras_asym.inference.keras_generator",
    "OFFICIAL_LOSS_NAMES": "keras_asym.models.cycle_gan",
    "AsymmetricCycleGAN": "keras_asym.models.cycle_gan",
    "build_model": "keras_asym.models.cycle_gan",
    "MobileStyleGenerator": "keras_asym.models.mobile",
    "PatchDiscriminator": "keras_asym.models.networks",
    "PhotoGenerator": "keras_asym.models.networks",
    "StyleDiscriminator": "keras_asym.models.networks",
    "StyleGenerator": "keras_asym.models.networks",
    "HistoryPool": "keras_asym.models.pool",
    "HED": "keras_asym.objective.hed",
    "LPIPS": "keras_asym.objective.lpips",
    "TrainConfig": "keras_asym.training.config",
    "run_training": "keras_asym.training.loop",
}
# Modules whose classes register themselves with Keras, beyond those that define public names.
_REGISTERING = ("keras_asym.layers.basic", "keras_asym.objective.distances")


def __getattr__(name: str):
    """A public name, imported from its module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'keras_asym' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def register_serializables() -> None:
    """Imports every module of the library that registers a Keras class, so ``keras.saving.load_model`` reads
    any ``.keras`` file the project writes. ``import keras_asym`` calls it, outside the project's commands."""
    for module in (*_REGISTERING, *sorted(set(_HOMES.values()))):
        importlib.import_module(module)


__version__ = "0.1.0"

__all__ = [
    "HED",
    "LPIPS",
    "OFFICIAL_LOSS_NAMES",
    "AsymmetricCycleGAN",
    "DistillConfig",
    "DistillationModel",
    "Drawer",
    "HistoryPool",
    "MobileStyleGenerator",
    "PatchDiscriminator",
    "PhotoGenerator",
    "StyleDiscriminator",
    "StyleGenerator",
    "TrainConfig",
    "build_model",
    "load_generator",
    "run_training",
]

if not native_logs.launched_as_command():  # a library user's import: every name bound, every class registered
    register_serializables()
    for _name in __all__:
        __getattr__(_name)
    del _name
