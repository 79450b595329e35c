"""How far the float32 drawings of Keras and of the fp32 TFLite file lie from a float64 run of the same weights:
the floor under the exporter's parity check (``export.exporter.check_parity``).

    python -m benchmarks.float_parity                   # the reference generator and benchmarks.unpaired_drawer's G, 256 and 512
    python -m benchmarks.float_parity --models g.keras --sizes 512

For each generator and size, on the photos the exporter checks parity on (the first 6 of its 32 calibration
photos): the Keras drawing (float32), the fp32 TFLite drawing (XNNPACK, as the exporter checks it) and the drawing of
a float64 copy of the generator (every layer, the instance norms' statistics included). Each pair: PSNR, the worst
pixel and the share of pixels off by more than one 8-bit level. Where the error starts: the first instance norm's
statistics of the same float32 input, computed by TensorFlow and by TFLite's MEAN, against float64, as a share of
each channel's spread (mean) and of its variance (variance), the worst channel of any photo.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import flags
from ai_edge_litert.interpreter import Interpreter

from benchmarks.common import results
from benchmarks.common.float64 import float64_copy
from benchmarks.common.heldout import photo_split
from benchmarks.common.reference import models_or_defaults
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.hashing import file_sha256
from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.styles import ONE_HOTS
from export import savedmodel, tflite
from export.exporter import PARITY_LEVEL, share_over_one_level
from keras_asym.evaluation.metrics import psnr
from keras_asym.inference.keras_generator import load_generator
from keras_asym.layers.basic import InstanceNormalization

_MODELS = flags.DEFINE_list(
    "models", None, "Generator .keras files (default: the benchmarks' reference generator and benchmarks.unpaired_drawer's shipped G)."
)
_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square sizes.")
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/float_parity.json).")


def _compare(a: list[np.ndarray], b: list[np.ndarray]) -> dict:
    diffs = [np.abs(x.astype(np.float64) - y) for x, y in zip(a, b)]
    return {
        "psnr_db": float(np.mean([psnr(x, y, peak=2.0) for x, y in zip(a, b)])),
        "worst_levels": float(max(d.max() for d in diffs) / PARITY_LEVEL),
        "share_over_one_level": share_over_one_level(diffs),
    }


def _tflite_statistic(shape, variance: bool):
    """A float32 TFLite model of the first norm's mean over H and W, or of its mean squared deviation."""

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def statistic(x):
        mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        return tf.reduce_mean((x - mean) * (x - mean), axis=(1, 2), keepdims=True) if variance else mean

    interpreter = Interpreter(model_content=tf.lite.TFLiteConverter.from_concrete_functions([statistic.get_concrete_function()]).convert())
    interpreter.allocate_tensors()

    def run(x):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    return run


def norm_statistics(generator: keras.Model, photos: list[np.ndarray]) -> dict:
    """Worst error of the first instance norm's mean (share of the channel's spread) and variance (share of it)."""
    norm = next(layer for layer in generator.layers if isinstance(layer, InstanceNormalization))
    probe = keras.Model(generator.input, norm.input)
    worst = {"tensorflow": [0.0, 0.0], "tflite": [0.0, 0.0]}
    lite = None
    for i, photo in enumerate(photos):
        x = np.asarray(probe({"photo": to_model(photo)[None], "style": ONE_HOTS[i % 3][None]}), np.float32)
        wide = x.astype(np.float64)
        mean = wide.mean(axis=(1, 2), keepdims=True)
        variance = ((wide - mean) ** 2).mean(axis=(1, 2), keepdims=True)
        tf_mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        tf_variance = tf.reduce_mean(tf.square(x - tf_mean), axis=(1, 2), keepdims=True)
        lite = lite or [_tflite_statistic(x.shape, variance=False), _tflite_statistic(x.shape, variance=True)]
        lite_mean, lite_variance = lite[0](x), lite[1](x)
        for name, (m, v) in {"tensorflow": (tf_mean.numpy(), tf_variance.numpy()), "tflite": (lite_mean, lite_variance)}.items():
            worst[name][0] = max(worst[name][0], float((np.abs(m - mean) / np.sqrt(variance)).max()))
            worst[name][1] = max(worst[name][1], float((np.abs(v - variance) / variance).max()))
    return {
        "norm": norm.name,
        **{f"{k}_mean_error_of_spread": v[0] for k, v in worst.items()},
        **{f"{k}_variance_error": v[1] for k, v in worst.items()},
    }


def analyse(model_path: Path, size: int, calibration_dir: Path | None, work: Path) -> dict:
    started = time.perf_counter()
    photos, source = tflite.calibration_photos(calibration_dir, size, size, 32)
    photos = photos[:6]  # the exporter's parity photos
    generator = load_generator(model_path)
    keras32 = tflite.keras_drawings(generator, photos)
    wide = float64_copy(generator)
    keras64 = [
        np.asarray(wide({"photo": to_model(p)[None].astype(np.float64), "style": ONE_HOTS[i % 3][None].astype(np.float64)}))[0]
        for i, p in enumerate(photos)
    ]
    work.mkdir(parents=True, exist_ok=True)
    path = work / "fp32.tflite"
    path.write_bytes(tflite.convert(savedmodel.save_savedmodel(generator, work / "saved", size, size, batch=1), "fp32"))
    runner = TFLiteGenerator(path, threads=2, probe=False)
    lite = [runner.run(to_model(p), ONE_HOTS[i % 3]) for i, p in enumerate(photos)]
    row = {
        "model": results.model_name(model_path),
        "model_sha256": file_sha256(model_path),
        "size": size,
        "photos": f"the exporter's 6 parity photos of {source}",
        "tflite_vs_keras": _compare(lite, keras32),
        "keras_vs_float64": _compare(keras32, keras64),
        "tflite_vs_float64": _compare(lite, keras64),
        "first_norm": norm_statistics(generator, photos),
        "seconds": time.perf_counter() - started,
    }
    print(
        f"[{model_path.name} {size}] worst pixel, 8-bit levels: TFLite vs Keras {row['tflite_vs_keras']['worst_levels']:.2f}, "
        f"Keras vs float64 {row['keras_vs_float64']['worst_levels']:.2f}, TFLite vs float64 {row['tflite_vs_float64']['worst_levels']:.2f}",
        flush=True,
    )
    return row


def main(argv):
    del argv
    _, calibration_dir = photo_split(10, Path("benchmarks/results/photo_split"))
    models = models_or_defaults(_MODELS.value, calibration_dir)
    record = {**results.header("float_parity", 2), "rows": []}
    path = Path(_OUTPUT.value) if _OUTPUT.value else results.RESULTS / "float_parity.json"
    results.write_rows(record, path, models, [int(s) for s in _SIZES.value], analyse, calibration_dir)
    from benchmarks import report  # lazy: the report module reads every results file; only needed to print

    print(report.render_float_parity(record))
    return 0


if __name__ == "__main__":
    from edge_demo.runtime import cli

    cli.run(main)
