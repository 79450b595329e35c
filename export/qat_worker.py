"""Child process of ``export.qat`` (run with ``TF_USE_LEGACY_KERAS=1``): QAT in ``tf_keras``.

    python -m export.qat_worker WORK_DIR

Reads ``spec.json``/``weights.npz``/``photos.npy``/``options.json`` from
WORK_DIR, writes ``model.tflite`` and ``record.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from ai_edge_litert.interpreter import Interpreter

from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS, cycling

QUANTIZED_LAYERS = ("Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "Add")


class ReflectionPadding2D(tf_keras.layers.Layer):
    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, x):
        p = self.padding
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


class InstanceNormalization(tf_keras.layers.Layer):
    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        centered = x - mean
        variance = tf.reduce_mean(tf.square(centered), axis=(1, 2), keepdims=True)
        return centered * tf.math.rsqrt(variance + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


class ConcatenateStyle(tf_keras.layers.Layer):
    def call(self, features, style):
        shape = tf.shape(features)
        tiled = tf.broadcast_to(style[:, None, None, :], (shape[0], shape[1], shape[2], tf.shape(style)[-1]))
        return tf.concat([features, tiled], axis=-1)


class ResizeLike(tf_keras.layers.Layer):
    def call(self, x, reference):
        shape = tf.shape(reference)
        return tf.image.resize(x, (shape[1], shape[2]), method="bilinear")


CUSTOM = {cls.__name__: cls for cls in (ReflectionPadding2D, InstanceNormalization, ConcatenateStyle, ResizeLike)}


def rebuild(spec: dict, weights) -> tf_keras.Model:
    """The Keras 3 graph in ``spec`` as a ``tf_keras`` functional model with the same weights."""
    tensors = {}
    inputs = {}
    for name, entry in spec["inputs"].items():
        inputs[name] = tf_keras.Input(tuple(None if s is None else s for s in entry["shape"]), name=name)
        tensors[entry["id"]] = inputs[name]
    built = []
    for entry in spec["layers"]:
        cls = CUSTOM.get(entry["class"]) or getattr(tf_keras.layers, entry["class"])
        layer = cls(name=entry["name"], **entry["config"])
        args = [tensors[i] for i in entry["inputs"]]
        if entry["class"] in ("Add", "Concatenate", "Multiply"):
            tensors[entry["output"]] = layer(args)
        else:
            tensors[entry["output"]] = layer(*args)
        built.append(layer)
    model = tf_keras.Model(inputs=inputs, outputs=tensors[spec["output"]], name="generator")
    for layer in built:
        values = [weights[f"{layer.name}/{i}"] for i in range(len(layer.weights))]
        if values:
            layer.set_weights(values)
    return model


def quantize(model: tf_keras.Model) -> tf_keras.Model:
    """Fake quantization on the conv/add layers (tfmot's 8-bit scheme); custom layers stay float."""
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        return annotate(layer) if type(layer).__name__ in QUANTIZED_LAYERS else layer.__class__.from_config(layer.get_config())

    annotated = tf_keras.models.clone_model(model, clone_function=clone)
    annotated.set_weights(model.get_weights())
    with tfmot.quantization.keras.quantize_scope(CUSTOM):
        return tfmot.quantization.keras.quantize_apply(annotated)


def main(work: Path) -> None:
    spec = json.loads((work / "spec.json").read_text())
    options = json.loads((work / "options.json").read_text())
    photos = np.load(work / "photos.npy")
    with np.load(work / "weights.npz") as data:
        weights = dict(data)
    teacher = rebuild(spec, weights)
    student = quantize(teacher)

    size = options["train_size"]
    x = tf.image.resize(to_model(photos), (size, size), method="area").numpy()
    styles = cycling(len(x))
    x = np.concatenate([x, x[:, :, ::-1]])
    styles = np.concatenate([styles, np.roll(styles, 1, axis=0)])
    targets = np.concatenate([teacher.predict({"photo": x[i : i + 1], "style": styles[i : i + 1]}, verbose=0) for i in range(len(x))])

    dataset = (
        tf.data.Dataset.from_tensor_slices(({"photo": x, "style": styles}, targets))
        .shuffle(len(x), seed=0)
        .repeat()
        .batch(options["batch_size"])
    )
    student.compile(optimizer=tf_keras.optimizers.Adam(options["learning_rate"]), loss="mae")
    first = float(student.evaluate({"photo": x, "style": styles}, targets, batch_size=options["batch_size"], verbose=0))
    steps = Progress(options["steps"], "qat", unit="steps", stream=sys.stdout)  # the parent shows these lines
    progress = tf_keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: steps.update(batch + 1, note=f"L1 {logs['loss']:.4f}"))
    student.fit(dataset, steps_per_epoch=options["steps"], epochs=1, verbose=0, callbacks=[progress])
    last = float(student.evaluate({"photo": x, "style": styles}, targets, batch_size=options["batch_size"], verbose=0))

    height, width = options["height"], options["width"]

    fixed = {
        "photo": tf_keras.Input((height, width, 3), batch_size=1, name="photo"),
        "style": tf_keras.Input((3,), batch_size=1, name="style"),
    }
    # From the Keras model, not a SavedModel: tfmot's quantized Conv2DTranspose
    # captures a kernel that SavedModel export cannot serialise.
    deployable = tf_keras.Model(fixed, student(fixed))
    full = [tf.image.resize(p[None].astype(np.float32), (height, width), method="area").numpy()[0] for p in photos]

    # Float norms: without calibration data the ops that carry no fake
    # quantization stay float; the convolutions use the learned int8 ranges.
    converter = tf.lite.TFLiteConverter.from_keras_model(deployable)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    float_norm = converter.convert()
    (work / "model_float_norm.tflite").write_bytes(float_norm)
    # A Keras-built converter has no signature: samples go by position, and the
    # position depends on the graph (G takes the photo first, the mobile
    # generator the style), so read it off the converted model: the photo is 4-D.

    order = ["photo" if len(d["shape"]) == 4 else "style" for d in Interpreter(model_content=float_norm).get_input_details()]

    def representative():
        for i, p in enumerate(full):
            sample = {"photo": to_model(p, np.float64)[None].astype(np.float32), "style": ONE_HOTS[i % 3][None]}
            yield [sample[name] for name in order]

    # Full integer: the ops without fake quantization (instance norm, padding)
    # are calibrated on the photos, like post-training int8.
    converter = tf.lite.TFLiteConverter.from_keras_model(deployable)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = {"uint8": tf.uint8, "int8": tf.int8}[options["io_type"]]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    (work / "model.tflite").write_bytes(converter.convert())
    (work / "record.json").write_text(json.dumps({"loss_first": first, "loss_last": last, "quantized_layers": list(QUANTIZED_LAYERS)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
