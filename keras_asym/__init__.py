"""keras-asym: unpaired portrait drawing generation via asymmetric cycle mapping, in Keras 3.

Importing the package registers every serializable layer and model, so
``keras.saving.load_model`` can read the ``.keras`` files this project writes.
"""

from keras_asym import distances, distillation, hed, layers, lpips, mobile, model, networks, pool  # noqa: F401  (registration)

__version__ = "0.1.0"
