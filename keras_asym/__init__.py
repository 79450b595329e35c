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
reads the ``.keras`` files this project writes.
"""

from edge_demo.runtime import native_logs

native_logs.hide_for_commands()  # before TensorFlow is imported; a no-op outside the project's commands

# ruff: noqa: E402  (the imports below must follow the native-log filter)
from keras_asym.distillation.model import DistillationModel
from keras_asym.distillation.recipe import DistillConfig
from keras_asym.inference.drawer import Drawer, load_generator
from keras_asym.layers import basic as _basic_layers  # noqa: F401  (registration)
from keras_asym.models.cycle_gan import OFFICIAL_LOSS_NAMES, AsymmetricCycleGAN, build_model
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.models.networks import PatchDiscriminator, PhotoGenerator, StyleDiscriminator, StyleGenerator
from keras_asym.models.pool import HistoryPool
from keras_asym.objective import distances as _distances  # noqa: F401  (registration)
from keras_asym.objective.hed import HED
from keras_asym.objective.lpips import LPIPS
from keras_asym.training.loop import TrainConfig, run_training

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
