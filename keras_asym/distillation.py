"""Distilling a style generator into a small one: the student reproduces the teacher's drawings.

Objective per batch of (photo, style, teacher drawing):
``L1(student, teacher) + edge_weight * EdgeDistance(student, teacher)``, the
second term (multi-scale Sobel edges, L1 + SSIM) keeping thin lines sharp
where plain L1 would accept a blur.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_asym.distances import EdgeDistance
from keras_asym.layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class DistillationModel(keras.Model):
    """Trains ``student`` on teacher drawings with ``fit``.

    Data: ``({"photo", "style"}, teacher_drawing)`` batches, images in [-1, 1].

    Args:
        student: a style generator (``{"photo", "style"}`` -> drawing).
        edge_weight: weight of the edge term.
    """

    def __init__(self, student: keras.Model, edge_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.generator = student
        self.edge_weight = float(edge_weight)
        self.edge_distance = EdgeDistance(name="edge_distance")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "l1", "edge")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def build(self, input_shape=None):
        """Nothing to create: the student is built by its own graph, the edge distance has no weights."""
        self.built = True

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def losses_for(self, inputs, target, training: bool) -> dict:
        drawing = self.generator(inputs, training=training)
        target = ops.cast(target, drawing.dtype)
        l1 = ops.mean(ops.abs(drawing - target))
        edge = ops.mean(self.edge_distance([drawing], target)["distances"][0])
        return {"loss": l1 + self.edge_weight * edge, "l1": l1, "edge": edge}

    def train_step(self, data):
        import tensorflow as tf

        inputs, target = data
        with tf.GradientTape() as tape:
            losses = self.losses_for(inputs, target, training=True)
        variables = self.generator.trainable_variables
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
        }

    @classmethod
    def from_config(cls, config):
        student = keras.saving.deserialize_keras_object(config.pop("student"))
        return cls(student, **config)
