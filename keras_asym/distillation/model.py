"""Distilling a style generator into a small one: the student reproduces the teacher's drawings.

Objective per batch of (photo, style, teacher drawing):
``L1 + edge_weight * EdgeDistance + ssim_weight * (1 - SSIM)`` of student
against teacher. The edge term (multi-scale Sobel edges, L1 + SSIM) keeps
thin lines sharp where plain L1 would accept a blur; the SSIM term (the
standard 11x11 Gaussian one, as ``keras_asym.evaluation.metrics.ssim`` scores it) asks
for the teacher's local contrast and structure, which L1 trades for gray haze. With
``feature_weight``, ``+ feature_weight * MSE(head(student bottleneck), teacher bottleneck)``
(``hints.py``): the teacher's features as a second, denser target.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_asym.distillation.hints import STUDENT_STRIDE, bottleneck_layer, feature_model, feature_stride
from keras_asym.layers.basic import PACKAGE
from keras_asym.objective.distances import EdgeDistance


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    line = np.exp(-0.5 * ((np.arange(size) - size // 2) / sigma) ** 2)
    line /= line.sum()
    return np.outer(line, line).astype(np.float32)[:, :, None, None]


def ssim(prediction, target):
    """Per-sample mean SSIM of one-channel images in [-1, 1]: 11x11 Gaussian window (sigma 1.5),
    K1 0.01, K2 0.03 on the [0, 1] range, mirrored borders: ``keras_asym.evaluation.metrics.ssim``, differentiable."""
    a = ops.cast(prediction, "float32") * 0.5 + 0.5
    b = ops.cast(target, "float32") * 0.5 + 0.5
    window = ops.convert_to_tensor(_gaussian_window())
    pad = window.shape[0] // 2

    def blur(x):
        return ops.conv(ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="symmetric"), window, padding="valid")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    return ops.mean(value, axis=(1, 2, 3))


@keras.saving.register_keras_serializable(package=PACKAGE)
class DistillationModel(keras.Model):
    """Trains ``student`` on teacher drawings with ``fit``.

    Data: ``({"photo", "style"}, teacher_drawing)`` batches, images in [-1, 1]; with ``feature_weight``, the target
    is ``{"drawing", "features"}``, the features the teacher's standardised bottleneck at the student's.

    Args:
        student: a style generator (``{"photo", "style"}`` -> drawing).
        edge_weight: weight of the edge term.
        ssim_weight: weight of the SSIM dissimilarity.
        feature_weight: weight of the feature term (0: none).
        feature_channels: the teacher features' channels, which a 1x1 convolution (trained, not part of the
            student) maps the student's bottleneck to; a bottleneck finer than the features' 1/8 is then
            average-pooled to it.
    """

    def __init__(
        self,
        student: keras.Model,
        edge_weight: float = 1.0,
        ssim_weight: float = 1.0,
        feature_weight: float = 0.0,
        feature_channels: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator = student
        self.edge_weight = float(edge_weight)
        self.ssim_weight = float(ssim_weight)
        self.feature_weight = float(feature_weight)
        self.feature_channels = int(feature_channels)
        self.edge_distance = EdgeDistance(name="edge_distance")
        names = ("loss", "l1", "edge", "ssim") + (("feature",) if self.feature_weight else ())
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        if self.feature_weight:
            if self.feature_channels < 1:
                raise ValueError("feature_weight needs feature_channels, the teacher features' channel count.")
            layer = bottleneck_layer(student)
            self.hinted = feature_model(student, layer)  # the student's layers, with its bottleneck as a second output
            stride = feature_stride(student, layer)
            if STUDENT_STRIDE % stride:
                raise ValueError(f"{student.name}: a bottleneck at 1/{stride} cannot be pooled to the features' 1/{STUDENT_STRIDE}.")
            self.feature_pool = STUDENT_STRIDE // stride
            self.feature_head = keras.layers.Conv2D(self.feature_channels, 1, dtype="float32", name="feature_head")
            self.feature_head.build((None, None, None, self.hinted.output[1].shape[-1]))

    @property
    def trained_variables(self) -> list:
        """The student's, then the feature head's: the optimizer's order (older backups hold the student's alone)."""
        return self.generator.trainable_variables + (self.feature_head.trainable_variables if self.feature_weight else [])

    @property
    def metrics(self):
        return list(self.trackers.values())

    def build(self, input_shape=None):
        """Nothing to create: the student is built by its own graph, the edge distance has no weights."""
        self.built = True

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def losses_for(self, inputs, target, training: bool) -> dict:
        features = target.get("features") if isinstance(target, dict) else None
        target = target["drawing"] if isinstance(target, dict) else target
        if self.feature_weight:
            if features is None:
                raise ValueError("a DistillationModel with feature_weight needs {'drawing', 'features'} targets.")
            drawing, hidden = self.hinted(inputs, training=training)
        else:
            drawing = self.generator(inputs, training=training)
        target = ops.cast(target, drawing.dtype)
        l1 = ops.mean(ops.abs(drawing - target))
        edge = ops.mean(self.edge_distance([drawing], target)["distances"][0])
        similarity = ops.mean(ssim(drawing, target))
        loss = l1 + self.edge_weight * edge + self.ssim_weight * (1.0 - similarity)
        if not self.feature_weight:
            return {"loss": loss, "l1": l1, "edge": edge, "ssim": similarity}
        mapped = self.feature_head(ops.cast(hidden, "float32"))
        if self.feature_pool > 1:  # linear head: pooling its output is pooling the bottleneck
            mapped = ops.average_pool(mapped, self.feature_pool, self.feature_pool)
        hint = ops.mean(ops.square(mapped - ops.cast(features, "float32")))
        return {"loss": loss + self.feature_weight * hint, "l1": l1, "edge": edge, "ssim": similarity, "feature": hint}

    def train_step(self, data):
        inputs, target = data
        with tf.GradientTape() as tape:
            losses = self.losses_for(inputs, target, training=True)
        variables = self.trained_variables
        self.optimizer.apply_gradients(zip(tape.gradient(losses["loss"], variables), variables))
        return self._record(losses)

    def test_step(self, data):
        inputs, target = data
        return self._record(self.losses_for(inputs, target, training=False))

    def _record(self, losses: dict) -> dict:
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        return {
            **super().get_config(),
            "student": keras.saving.serialize_keras_object(self.generator),
            "edge_weight": self.edge_weight,
            "ssim_weight": self.ssim_weight,
            "feature_weight": self.feature_weight,
            "feature_channels": self.feature_channels,
        }

    @classmethod
    def from_config(cls, config):
        student = keras.saving.deserialize_keras_object(config.pop("student"))
        return cls(student, **config)
