"""keras-asym: unpaired portrait drawing generation via asymmetric cycle mapping, in Keras 3."""

__version__ = "0.1.0"
