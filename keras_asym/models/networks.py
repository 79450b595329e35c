"""Generators and discriminators of the asymmetric cycle mapping, NHWC.

Names in this package against the paper and the official code
(``yiranran/Unpaired-Portrait-Drawing``):

=========================  ==================  ==========================
keras_asym                 paper               official
=========================  ==================  ==========================
``StyleGenerator``         G (photo→drawing)   ``netG_A`` ResnetStyle2Generator
``PhotoGenerator``         F (drawing→photo)   ``netG_B`` ResnetGenerator
``StyleDiscriminator``     D_A (+ style head)  ``netD_A`` NLayerDiscriminatorCls
``PatchDiscriminator``     D_B, local D's      ``netD_B``, ``netD_A_l/le/ll``
=========================  ==================  ==========================

Every model is a ``keras.Model`` whose functional graph is built in ``__init__``
and whose ``get_config`` lists the constructor arguments, so ``.keras`` files
round-trip. Layer names are stable: ``keras_asym.convert.official`` maps the
official state_dict names onto them.
"""

from __future__ import annotations

import keras

from keras_asym.layers.basic import (
    PACKAGE,
    ConcatenateStyle,
    InstanceNormalization,
    ReflectionPadding2D,
    normal_init,
)


class _ConfiguredModel(keras.Model):
    """Functional model whose config is its constructor arguments (``CONFIG_KEYS``)."""

    CONFIG_KEYS: tuple[str, ...] = ()

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update({key: getattr(self, key) for key in self.CONFIG_KEYS})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _conv(filters: int, kernel: int, stride: int = 1, name: str | None = None, use_bias=True):
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="valid",
        use_bias=use_bias,
        kernel_initializer=normal_init(),
        bias_initializer="zeros",
        name=name,
    )


def _conv_norm_relu(x, filters: int, kernel: int, stride: int, pad: int, reflect: bool, name: str):
    """Padding, conv, instance norm, ReLU: the unit every official generator repeats."""
    if pad:
        pad_layer = ReflectionPadding2D if reflect else keras.layers.ZeroPadding2D
        x = pad_layer(pad, name=f"{name}_pad")(x)
    x = _conv(filters, kernel, stride, name=f"{name}_conv")(x)
    x = InstanceNormalization(name=f"{name}_norm")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _resnet_block(x, filters: int, name: str):
    """Reflect-pad, conv3, IN, ReLU, reflect-pad, conv3, IN, plus the skip."""
    y = ReflectionPadding2D(1, name=f"{name}_pad1")(x)
    y = _conv(filters, 3, name=f"{name}_conv1")(y)
    y = InstanceNormalization(name=f"{name}_norm1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu")(y)
    y = ReflectionPadding2D(1, name=f"{name}_pad2")(y)
    y = _conv(filters, 3, name=f"{name}_conv2")(y)
    y = InstanceNormalization(name=f"{name}_norm2")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def _upsample(x, filters: int, name: str):
    """``ConvTranspose2d(k=3, s=2, padding=1, output_padding=1)`` exactly.

    A 'valid' transpose conv gives 2H+1 rows; PyTorch's padding=1 drops the
    first row and output_padding=1 keeps the last, so crop one row and column
    at the top-left. Keras' 'same' padding would shift the output by a pixel.
    """
    x = keras.layers.Conv2DTranspose(
        filters,
        3,
        strides=2,
        padding="valid",
        kernel_initializer=normal_init(),
        bias_initializer="zeros",
        name=f"{name}_deconv",
    )(x)
    x = keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_crop")(x)
    x = InstanceNormalization(name=f"{name}_norm")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _head(x, channels: int):
    x = ReflectionPadding2D(3, name="head_pad")(x)
    x = _conv(channels, 7, name="head_conv")(x)
    return keras.layers.Activation("tanh", dtype="float32", name="head_tanh")(x)


# Instance norm over fewer positions than this leaves (almost) nothing of its input: a 1x1 map normalises to
# zero, so only the next layer's bias is left (measured: the 32x32 style head gave identical logits for every
# drawing); a 2x2 map keeps 3 numbers per channel. 4x4 is the smallest map the official 512 layout ever
# normalises at 128 (its style head's last block), and where that head is measured to learn.
MIN_NORM_POSITIONS = 16


def discriminator_layers_for(image_size: int, official: int = 3) -> int:
    """The most stride-2 discriminator layers, up to the official 3, whose style head keeps a 4x4 map at
    ``image_size`` (3 from 128 px, 2 at 64, 1 at 32)."""
    layers = official
    while layers > 1 and image_size < 2 ** (layers + 4):
        layers -= 1
    return layers


def instance_norm_maps(model: keras.Model, inputs) -> list[tuple[str, int, int]]:
    """``(layer name, height, width)`` of every instance-normalised map of ``model`` on ``inputs`` (KerasTensors)."""
    norms = [layer for layer in model.layers if isinstance(layer, InstanceNormalization)]
    if not norms:
        return []
    specs = keras.Model(model.inputs, [layer.input for layer in norms]).compute_output_spec(inputs)
    return [(layer.name, int(spec.shape[1]), int(spec.shape[2])) for layer, spec in zip(norms, specs)]


def check_norm_maps(model: keras.Model, inputs, what: str) -> None:
    """Refuses a network whose smallest instance-normalised map has fewer than ``MIN_NORM_POSITIONS`` positions."""
    for name, height, width in instance_norm_maps(model, inputs):
        if height * width < MIN_NORM_POSITIONS:
            raise ValueError(
                f"{what}: {name} normalises a {height}x{width} map, too small for instance-norm statistics "
                f"(at least {MIN_NORM_POSITIONS} positions): use a larger image size or fewer discriminator layers."
            )


def _check_size(height: int | None, width: int | None, multiple: int, what: str):
    for side in (height, width):
        if side is not None and side % multiple:
            raise ValueError(f"{what}: image sides must be multiples of {multiple}, got {height}x{width}.")


@keras.saving.register_keras_serializable(package=PACKAGE)
class StyleGenerator(_ConfiguredModel):
    """G: photo to line drawing, conditioned on a 3-dim style vector.

    Stem (reflect-pad 3, conv7), two stride-2 downsamplings, ``model0_res``
    ResNet blocks, then the style vector tiled over the bottleneck and fused by
    a conv3, the remaining blocks, two transpose-conv upsamplings and a
    reflect-pad-3 conv7 + tanh head.

    Args:
        ngf: int. Filters of the stem; the bottleneck has ``4 * ngf``. Defaults to 64.
        n_blocks: int. ResNet blocks in total. Defaults to 9.
        model0_res: int. Blocks before the style is inserted. Defaults to 0.
        style_dim: int. Length of the style vector. Defaults to 3.
        input_channels: int. Defaults to 3 (RGB photo in [-1, 1]).
        output_channels: int. Defaults to 1 (grayscale drawing in [-1, 1]).
        height, width: optional fixed input size (multiples of 4); ``None`` for any.

    Example:
        >>> g = StyleGenerator(ngf=8, n_blocks=2)
        >>> g({"photo": np.zeros((1, 64, 64, 3)), "style": [[1.0, 0.0, 0.0]]}).shape
        TensorShape([1, 64, 64, 1])

    Reference: Yi et al., "Unpaired Portrait Drawing Generation via Asymmetric
    Cycle Mapping", CVPR 2020.
    """

    CONFIG_KEYS = ("ngf", "n_blocks", "model0_res", "style_dim", "input_channels", "output_channels", "height", "width")

    def __init__(
        self,
        ngf: int = 64,
        n_blocks: int = 9,
        model0_res: int = 0,
        style_dim: int = 3,
        input_channels: int = 3,
        output_channels: int = 1,
        height: int | None = None,
        width: int | None = None,
        name: str = "style_generator",
        **kwargs,
    ):
        if not 0 <= model0_res <= n_blocks:
            raise ValueError(f"model0_res must be in [0, n_blocks={n_blocks}], got {model0_res}.")
        _check_size(height, width, 4, "StyleGenerator")
        # === Functional Model ===
        photo = keras.Input((height, width, input_channels), name="photo")
        style = keras.Input((style_dim,), name="style")
        x = _conv_norm_relu(photo, ngf, 7, 1, 3, True, "stem")
        x = _conv_norm_relu(x, ngf * 2, 3, 2, 1, False, "down1")
        x = _conv_norm_relu(x, ngf * 4, 3, 2, 1, False, "down2")
        for i in range(model0_res):
            x = _resnet_block(x, ngf * 4, f"block{i + 1}")
        x = ConcatenateStyle(name="style_concat")(x, style)
        x = _conv_norm_relu(x, ngf * 4, 3, 1, 1, False, "style")
        for i in range(model0_res, n_blocks):
            x = _resnet_block(x, ngf * 4, f"block{i + 1}")
        x = _upsample(x, ngf * 2, "up1")
        x = _upsample(x, ngf, "up2")
        drawing = _head(x, output_channels)
        super().__init__(inputs={"photo": photo, "style": style}, outputs=drawing, name=name, **kwargs)
        # === Config ===
        self.ngf, self.n_blocks, self.model0_res = ngf, n_blocks, model0_res
        self.style_dim, self.input_channels, self.output_channels = style_dim, input_channels, output_channels
        self.height, self.width = height, width


@keras.saving.register_keras_serializable(package=PACKAGE)
class PhotoGenerator(_ConfiguredModel):
    """F: drawing to photo, the plain CycleGAN ResNet generator.

    Args:
        ngf: int. Defaults to 64.
        n_blocks: int. Defaults to 9.
        input_channels: int. Defaults to 1 (drawing).
        output_channels: int. Defaults to 3 (RGB photo).
        height, width: optional fixed input size (multiples of 4).
    """

    CONFIG_KEYS = ("ngf", "n_blocks", "input_channels", "output_channels", "height", "width")

    def __init__(
        self,
        ngf: int = 64,
        n_blocks: int = 9,
        input_channels: int = 1,
        output_channels: int = 3,
        height: int | None = None,
        width: int | None = None,
        name: str = "photo_generator",
        **kwargs,
    ):
        _check_size(height, width, 4, "PhotoGenerator")
        # === Functional Model ===
        drawing = keras.Input((height, width, input_channels), name="drawing")
        x = _conv_norm_relu(drawing, ngf, 7, 1, 3, True, "stem")
        x = _conv_norm_relu(x, ngf * 2, 3, 2, 1, False, "down1")
        x = _conv_norm_relu(x, ngf * 4, 3, 2, 1, False, "down2")
        for i in range(n_blocks):
            x = _resnet_block(x, ngf * 4, f"block{i + 1}")
        x = _upsample(x, ngf * 2, "up1")
        x = _upsample(x, ngf, "up2")
        photo = _head(x, output_channels)
        super().__init__(inputs=drawing, outputs=photo, name=name, **kwargs)
        # === Config ===
        self.ngf, self.n_blocks = ngf, n_blocks
        self.input_channels, self.output_channels = input_channels, output_channels
        self.height, self.width = height, width


def _down_block(x, filters: int, stride: int, norm: bool, name: str):
    """Zero-pad 1, conv4 (bias), optional IN, LeakyReLU(0.2): a PatchGAN layer."""
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = _conv(filters, 4, stride, name=f"{name}_conv")(x)
    if norm:
        x = InstanceNormalization(name=f"{name}_norm")(x)
    return keras.layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)


def _patch_trunk(x, ndf: int, n_layers: int):
    x = _down_block(x, ndf, 2, False, "layer1")
    for n in range(1, n_layers):
        x = _down_block(x, ndf * min(2**n, 8), 2, True, f"layer{n + 1}")
    return x


def _patch_head(x, ndf: int, n_layers: int, dtype_out="float32"):
    x = _down_block(x, ndf * min(2**n_layers, 8), 1, True, "patch1")
    x = keras.layers.ZeroPadding2D(1, name="patch_out_pad")(x)
    x = _conv(1, 4, name="patch_out_conv")(x)
    return keras.layers.Activation("linear", dtype=dtype_out, name="patch")(x)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchDiscriminator(_ConfiguredModel):
    """70x70 PatchGAN (``n_layers=3``) with instance norm: D_B and the local D's.

    The local discriminators take 2 channels: the drawing whitened outside the
    part mask, and the mask (official ``mask_type=3``).

    Args:
        input_channels: int. 3 for photos, 1 for drawings, 2 for local parts.
        ndf: int. Defaults to 64.
        n_layers: int. Defaults to 3.
    """

    CONFIG_KEYS = ("input_channels", "ndf", "n_layers")

    def __init__(self, input_channels: int = 3, ndf: int = 64, n_layers: int = 3, name="patch_discriminator", **kwargs):
        # === Functional Model ===
        image = keras.Input((None, None, input_channels), name="image")
        x = _patch_trunk(image, ndf, n_layers)
        patch = _patch_head(x, ndf, n_layers)
        super().__init__(inputs=image, outputs=patch, name=name, **kwargs)
        # === Config ===
        self.input_channels, self.ndf, self.n_layers = input_channels, ndf, n_layers


@keras.saving.register_keras_serializable(package=PACKAGE)
class StyleDiscriminator(_ConfiguredModel):
    """D_A: PatchGAN on drawings plus a 3-way style classification head.

    The trunk (``n_layers`` stride-2 layers) feeds the PatchGAN head and the
    class head (two more stride-2 layers, then one conv covering the whole
    remaining feature map). The official class conv has a 16x16 kernel, which
    only fits 512x512 inputs; here its kernel is ``image_size / 2**(n_layers+2)``,
    i.e. exactly the official 16x16 layer at 512 (weights map one to one) and
    the same "one linear classifier over the whole map" at 256 (8x8), 128 (4x4).
    The input size is therefore fixed at construction, and must leave the class head's last
    instance norm a map of at least 4x4 (``MIN_NORM_POSITIONS``): 128 px with 3 trunk layers,
    64 with 2, 32 with 1. Below that the head gives the same logits for every drawing, and is refused.

    Args:
        image_size: int. Training crop size, a multiple of ``2**(n_layers+2)``.
            Defaults to 512.
        input_channels: int. Defaults to 1.
        ndf: int. Defaults to 64.
        n_layers: int. Defaults to 3.
        n_classes: int. Defaults to 3.

    Outputs ``[patch_logits (B, h, w, 1), style_logits (B, n_classes)]``.
    """

    CONFIG_KEYS = ("image_size", "input_channels", "ndf", "n_layers", "n_classes")

    def __init__(
        self,
        image_size: int = 512,
        input_channels: int = 1,
        ndf: int = 64,
        n_layers: int = 3,
        n_classes: int = 3,
        name="style_discriminator",
        **kwargs,
    ):
        reduction = 2 ** (n_layers + 2)
        if image_size % reduction or image_size < reduction:
            raise ValueError(f"StyleDiscriminator: image_size must be a positive multiple of {reduction}, got {image_size}.")
        # === Functional Model ===
        image = keras.Input((image_size, image_size, input_channels), name="image")
        features = _patch_trunk(image, ndf, n_layers)
        patch = _patch_head(features, ndf, n_layers)
        wide = ndf * min(2**n_layers, 8)
        x = _down_block(features, wide, 2, True, "cls1")
        x = _down_block(x, wide, 2, True, "cls2")
        x = _conv(n_classes, image_size // reduction, name="cls_out_conv")(x)
        logits = keras.layers.Reshape((n_classes,), dtype="float32", name="style_logits")(x)
        super().__init__(inputs=image, outputs=[patch, logits], name=name, **kwargs)
        check_norm_maps(self, keras.KerasTensor((1, image_size, image_size, input_channels)), f"StyleDiscriminator at {image_size} px")
        # === Config ===
        self.image_size, self.input_channels = image_size, input_channels
        self.ndf, self.n_layers, self.n_classes = ndf, n_layers, n_classes
