"""keras-asym: unpaired portrait drawing generation via asymmetric cycle mapping, in Keras 3.

Importing the package registers every serializable layer and model, so
``keras.saving.load_model`` can read the ``.keras`` files this project writes.
"""

from edge_demo.runtime import native_logs

native_logs.hide_for_commands()  # before TensorFlow is imported; a no-op outside the project's commands

from keras_asym import distances, distillation, hed, layers, lpips, mobile, model, networks, pool  # noqa: E402, F401  (registration)

__version__ = "0.1.0"
