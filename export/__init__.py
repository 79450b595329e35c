"""Deployable generators: SavedModel and TFLite (fp32, fp16, dynamic, int8, qat) with metadata.

``python -m export --model generator.keras --output exported`` writes every
variant; ``python -m benchmarks.export_variants`` measures them. The pieces:

- ``savedmodel``: serving signatures (photo + style, and one per fixed style);
- ``tflite``: conversion of each variant, calibration data, per-op int8 error;
- ``metadata``: TFLite metadata (MediaPipe schema) and the JSON sidecar;
- ``analyzer``: the GPU-delegate compatibility report;
- ``qat_sim``: the int8 simulation ``qat`` (quantization-aware fine-tuning) trains through; ``balance``: the
  norm inputs made representable in int8.
"""

from edge_demo.runtime import native_logs

native_logs.hide_for_commands()  # before TensorFlow is imported; a no-op outside the project's commands
