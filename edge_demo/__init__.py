"""keras-asym on the edge: live portrait drawing from a camera with a TFLite generator.

TensorFlow-free by design (LiteRT, MediaPipe, OpenCV, NumPy): it installs on
a Raspberry Pi with ``pip install ./edge_demo``. The same face detection,
alignment and TFLite runner (``edge_demo.runtime``) serve the ``keras_asym`` library;
the camera app itself is ``app``, ``camera`` and ``tracker``.

    python -m edge_demo --model drawing_int8.tflite --source 0
"""

from edge_demo.runtime import native_logs

native_logs.hide_for_commands()  # a no-op outside the project's commands

__version__ = "0.1.0"
