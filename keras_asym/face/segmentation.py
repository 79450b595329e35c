"""Background whitening with MediaPipe's selfie segmentation model (LiteRT).

The official training photos have white backgrounds (the authors' masks);
``whiten_background`` gives any aligned photo the same look.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_demo.runtime.assets import asset_path
from edge_demo.runtime.faces import make_interpreter

SEGMENTATION_SIZE = 256


class BackgroundWhitener:
    """Replaces everything but the person with white, softly at the border."""

    def __init__(self, threads: int = 2):
        self._interpreter = make_interpreter(asset_path("selfie_segmentation.tflite"), threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        """HxW float32 in [0, 1]: how likely each pixel belongs to the person."""
        small = cv2.resize(rgb, (SEGMENTATION_SIZE, SEGMENTATION_SIZE), interpolation=cv2.INTER_AREA)
        self._interpreter.set_tensor(self._input, (small.astype(np.float32) / 255.0)[None])
        self._interpreter.invoke()
        probability = self._interpreter.get_tensor(self._output)[0, :, :, 0]
        return cv2.resize(probability, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR).clip(0, 1)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        alpha = self.person_probability(rgb)[:, :, None]
        return np.clip(rgb.astype(np.float32) * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
