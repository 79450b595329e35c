"""HED edge detector (Xie & Tu 2015) as used by the relaxed forward cycle.

Same graph as the official ``HED`` module (the ``pytorch-hed`` port): VGG16
convolutions on Caffe-style BGR inputs with the ImageNet means subtracted,
five 1x1 side outputs upsampled bilinearly (half-pixel, no antialiasing) to the
input size, a 1x1 fuse and a sigmoid. Frozen during training.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_asym.layers.basic import PACKAGE, ResizeLike

# Caffe BGR means the HED weights were trained with, on a 0-255 scale.
BGR_MEANS = (104.00698793, 116.66876762, 122.67891434)
VGG_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


@keras.saving.register_keras_serializable(package=PACKAGE)
class HED(keras.Model):
    """Holistically-nested edge detection; RGB in [0, 1] -> edge probability in [0, 1].

    Input (B, H, W, 3) NHWC RGB, output (B, H, W, 1). Any size; sides that are
    not multiples of 16 are floored by the pools, as in PyTorch.
    """

    def __init__(self, name: str = "hed", **kwargs):
        super().__init__(name=name, **kwargs)
        self.stage_convs = []
        for stage, (filters, count) in enumerate(VGG_STAGES, start=1):
            self.stage_convs.append(
                [keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"vgg{stage}_conv{i + 1}") for i in range(count)]
            )
        self.pool = keras.layers.MaxPooling2D(2, 2, padding="valid", name="pool")
        self.scores = [keras.layers.Conv2D(1, 1, name=f"score{stage}") for stage in range(1, 6)]
        self.resize = ResizeLike(name="resize")
        self.combine = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="combine")

    def build(self, input_shape):
        shape = tuple(input_shape)
        channels = 3
        for stage, convs in enumerate(self.stage_convs):
            for conv in convs:
                conv.build(shape[:3] + (channels,))
                channels = conv.filters
            self.scores[stage].build(shape[:3] + (channels,))
        self.combine.build(shape[:3] + (5,))
        self.built = True

    def call(self, rgb):
        rgb = ops.cast(rgb, self.compute_dtype)
        bgr = ops.flip(rgb, axis=-1) * 255.0 - ops.convert_to_tensor(BGR_MEANS, dtype=self.compute_dtype)
        x = bgr
        sides = []
        for stage, convs in enumerate(self.stage_convs):
            if stage:
                x = self.pool(x)
            for conv in convs:
                x = conv(x)
            sides.append(self.resize(self.scores[stage](x), rgb))
        return self.combine(ops.concatenate(sides, axis=-1))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:3]) + (1,)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}


def hed_map(hed: keras.Model, image):
    """Edge map of an image in [-1, 1], rescaled to [-1, 1] (the official wiring)."""
    return (hed(image / 2.0 + 0.5) - 0.5) * 2.0
