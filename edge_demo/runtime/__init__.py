"""The TensorFlow-free runtime: what the camera app and the ``keras_asym`` library both stand on.

Pinned MediaPipe assets (``assets``), face detection and the 468-point mesh (``faces``),
the official alignment template (``alignment``), the TFLite generator runner and LiteRT's
GPU accelerator (``generator``, ``gpu``), the style vector (``styles``), progress with an
ETA (``progress``), the exit-status convention (``cli``) and the native-log filter
(``native_logs``). Nothing here imports TensorFlow, Keras, ``keras_asym`` or ``export``
(``tests/test_layers_of_code.py`` checks it), so it installs on a Raspberry Pi.
"""
