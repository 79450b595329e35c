"""A small style-conditioned generator for real-time drawing on phones and single-board computers.

Same interface as the paper's G (``{"photo", "style"}`` -> drawing in [-1, 1])
at about 1/100 of its cost: three stride-2 3x3 convolutions down to 1/8
resolution (two, to 1/4, with ``bottleneck_stride=4``), the style vector tiled and fused there by a 1x1 convolution (as
the paper inserts it at the bottleneck), MobileNetV2 inverted-residual blocks
(1x1 expand, 3x3 depthwise, 1x1 project), and bilinear-resize + 3x3
convolution upsampling with U-Net skip additions from the encoder, then a
3x3 tanh head. A thin full-resolution stem feeds the last upsampling: the
teacher's lines are one or two pixels wide and sit on the photo's edges,
which upsampled 1/2-resolution features can only draw blurred.

Every op is int8- and GPU-delegate-friendly: zero "same" padding, batch norm
(folded into the convolutions by the TFLite converter), ReLU, ADD,
RESIZE_BILINEAR (TRANSPOSE_CONV with ``transposed_up``), CONCATENATION (PAD and STRIDED_SLICE with ``teacher_grid``); ``global_context`` adds MEAN, LOGISTIC and MUL,
``context_everywhere`` SUB as well (their int8 exports keep no float op; GPU coverage not measured). No
reflection padding. ``instance_norm`` replaces batch norm by the teacher's instance norm in the encoder, decoder and
blocks' expansions (int8 through the exporter's balanced norms, as the paper's G).
"""

from __future__ import annotations

import keras

from keras_asym.layers.basic import PACKAGE, ConcatenateStyle, InstanceNormalization
from keras_asym.models.networks import _check_size, _ConfiguredModel


def _scaled(channels: int, alpha: float) -> int:
    return max(8, int(round(channels * alpha / 8)) * 8)


def _conv_bn_relu(x, filters: int, kernel: int, stride: int, name: str, context: bool = False, instance: bool = False, grid: bool = False):
    """Convolution, norm, ReLU. ``instance``: the teacher's instance norm (no affine) after a convolution with a bias,
    the form the exporter balances for int8 (``export.balance``), instead of a batch norm the converter folds.
    ``grid``: a strided convolution samples where PyTorch's ``padding=1`` does (output i centred on input
    ``stride * i``); Keras' "same" pads only after the image, centring it one pixel later."""
    padding = "same"
    if grid and stride > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=instance, name=f"{name}_conv")(x)
    return _norm_relu(x, name, context, instance)


def _norm_relu(x, name: str, context: bool = False, instance: bool = False):
    norm = InstanceNormalization(name=f"{name}_in") if instance else keras.layers.BatchNormalization(name=f"{name}_bn")
    x = keras.layers.ReLU(name=f"{name}_relu")(norm(x))
    return _global_context(x, f"{name}_context", moments=True) if context else x


def _global_context(y, name: str, moments: bool = False):
    """Every channel scaled and shifted by the whole image's mean features, as the teacher's instance norm makes
    each of its pixels depend on its image's statistics (a convolutional student sees only its receptive field).
    ``moments`` adds each channel's spread, so the scale can follow it as a norm's division does: the mean of
    relu(y - mean), half the mean absolute deviation, which grows with the features as they do (a mean square,
    growing with their square at every context, overflowed to NaN in inference on a student with one after every
    convolution)."""
    channels = y.shape[-1]
    g = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(y)
    if moments:
        above = keras.layers.ReLU(name=f"{name}_above")(keras.layers.Subtract(name=f"{name}_centred")([y, g]))
        spread = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool2")(above)
        g = keras.layers.Concatenate(name=f"{name}_moments")([g, spread])
    g = keras.layers.Conv2D(max(8, channels // 4), 1, activation="relu", name=f"{name}_reduce")(g)
    # Zero kernels: a new network starts as the plain one (every scale 0.5, no shift) and learns what the mean says,
    # instead of starting with a random shift per channel and image, noise the next convolution must first undo.
    scale = keras.layers.Conv2D(channels, 1, activation="sigmoid", kernel_initializer="zeros", name=f"{name}_scale")(g)
    shift = keras.layers.Conv2D(channels, 1, kernel_initializer="zeros", name=f"{name}_shift")(g)
    return keras.layers.Add(name=f"{name}_shifted")([keras.layers.Multiply(name=f"{name}_scaled")([y, scale]), shift])


def _inverted_residual(
    x, channels: int, expansion: int, name: str, global_context: bool = False, moments: bool = False, instance: bool = False
):
    y = _conv_bn_relu(x, channels * expansion, 1, 1, f"{name}_expand", instance=instance)
    y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_dw_bn")(y)
    y = keras.layers.ReLU(name=f"{name}_dw_relu")(y)
    if global_context:
        y = _global_context(y, f"{name}_context", moments)
    y = keras.layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_project_conv")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_project_bn")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def _up(
    x,
    skip,
    filters: int,
    name: str,
    conv_first: bool = False,
    context: bool = False,
    instance: bool = False,
    transposed: bool = False,
    grid: bool = False,
):
    if transposed:  # the teacher's upsampling: a 3x3 kernel of its own for each output pixel phase
        padding = "valid" if grid else "same"
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding=padding, use_bias=instance, name=f"{name}_deconv")(x)
        if grid:  # PyTorch's padding=1, output_padding=1: input i writes outputs 2i-1..2i+1 (Keras' "same": 2i..2i+2)
            x = keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_crop")(x)
        x = _norm_relu(x, name, context, instance)
    elif conv_first:
        x = _conv_bn_relu(x, filters, 3, 1, name, context, instance)
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
    else:
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
        x = _conv_bn_relu(x, filters, 3, 1, name, context, instance)
    return x if skip is None else keras.layers.Add(name=f"{name}_skip")([x, skip])


@keras.saving.register_keras_serializable(package=PACKAGE)
class MobileStyleGenerator(_ConfiguredModel):
    """Student generator for distillation from the paper's G (``keras_asym.distill``).

    Args:
        alpha: float. Width multiplier (channels 16/32/64 x alpha, multiples of 8). Defaults to 1.0.
        n_blocks: int. Inverted-residual blocks at 1/8 resolution. Defaults to 6.
        expansion: int. Inverted-residual expansion factor. Defaults to 4.
        full_res_skip: bool. Add a full-resolution 3x3 stem to the last upsampling. Defaults to True.
        full_res_conv: bool. The last upsampling's 3x3 convolution runs after its resize, at full resolution; False
            runs it before, at half resolution, for a quarter of its cost (the full-resolution stem still adds the
            photo's edges after it): for 512² inputs, where it is the largest single layer. Defaults to True.
        global_context: bool. Each block's expanded features scaled and shifted by their image-wide mean, for a
            teacher whose instance norms make every pixel depend on the whole image. Defaults to False.
        context_everywhere: bool. The same after every convolution of the encoder and decoder and in every block
            (``global_context`` implied), each from its features' mean and spread, as the teacher normalises
            after each of its convolutions. Defaults to False.
        instance_norm: bool. Instance norm (no affine, as the teacher's) instead of batch norm after the stem, the
            strided and upsampling convolutions and each block's expansion, so every pixel depends on its image's
            statistics as the teacher's do; the style fusion keeps batch norm (an instance norm would remove the
            tiled style, a constant per channel) and so do the depthwise and projection convolutions. Defaults to False.
        transposed_up: bool. Upsample by stride-2 3x3 transposed convolutions, as the teacher does, instead of bilinear
            resize + 3x3 convolution: a kernel of its own for each output pixel phase, where a resize's phases differ
            only by its fixed interpolation weights (the teacher's strokes follow its pixel phase), at a quarter of the
            multiply-adds; refused with ``full_res_conv=False``, which has no resize to move its convolution before.
            Defaults to False.
        bottleneck_stride: int. 8: the style fusion and blocks at 1/8 resolution, behind three stride-2 convolutions; 4:
            at 1/4 behind two, where the teacher's residual blocks run (its strokes follow its 4-pixel grid, which a
            1/8 bottleneck only reaches through the skip from 1/4), at four times the blocks' multiply-adds.
            Defaults to 8.
        teacher_grid: bool. Strided and transposed convolutions sample on the teacher's pixel grid (PyTorch's
            ``padding=1``: a stride-2 output centred on an even input pixel, a transposed convolution's single-tap
            outputs on even pixels) instead of Keras' "same", which puts both one pixel later: the teacher's strokes
            follow its grid, and a student on another grid must learn them shifted. Defaults to False.
        style_dim: int. Defaults to 3.
        height, width: optional fixed input size (multiples of 8).

    Example:
        >>> g = MobileStyleGenerator(alpha=0.5)
        >>> g({"photo": np.zeros((1, 64, 64, 3)), "style": [[1.0, 0.0, 0.0]]}).shape
        TensorShape([1, 64, 64, 1])
    """

    CONFIG_KEYS = (
        "alpha",
        "n_blocks",
        "expansion",
        "full_res_skip",
        "full_res_conv",
        "global_context",
        "context_everywhere",
        "instance_norm",
        "transposed_up",
        "teacher_grid",
        "bottleneck_stride",
        "style_dim",
        "height",
        "width",
    )

    def __init__(
        self,
        alpha: float = 1.0,
        n_blocks: int = 6,
        expansion: int = 4,
        full_res_skip: bool = True,
        full_res_conv: bool = True,
        global_context: bool = False,
        context_everywhere: bool = False,
        instance_norm: bool = False,
        transposed_up: bool = False,
        teacher_grid: bool = False,
        bottleneck_stride: int = 8,
        style_dim: int = 3,
        height: int | None = None,
        width: int | None = None,
        name: str = "mobile_style_generator",
        **kwargs,
    ):
        _check_size(height, width, 8, "MobileStyleGenerator")
        if transposed_up and not full_res_conv:
            raise ValueError("MobileStyleGenerator: full_res_conv=False moves a resize's convolution; transposed_up has no resize.")
        if bottleneck_stride not in (4, 8):
            raise ValueError(f"MobileStyleGenerator: bottleneck_stride must be 4 or 8, not {bottleneck_stride}.")
        c1, c2, c3 = (_scaled(c, alpha) for c in (16, 32, 64))
        # === Functional Model ===
        photo = keras.Input((height, width, 3), name="photo")
        style = keras.Input((style_dim,), name="style")
        every, inorm, transposed, grid = bool(context_everywhere), bool(instance_norm), bool(transposed_up), bool(teacher_grid)
        e0 = _conv_bn_relu(photo, max(8, c1 // 2), 3, 1, "stem", every, inorm) if full_res_skip else None
        e1 = _conv_bn_relu(photo, c1, 3, 2, "down1", every, inorm, grid)
        e2 = _conv_bn_relu(e1, c2, 3, 2, "down2", every, inorm, grid)
        x = _conv_bn_relu(e2, c3, 3, 2, "down3", every, inorm, grid) if bottleneck_stride == 8 else e2
        x = ConcatenateStyle(name="style_concat")(x, style)
        x = _conv_bn_relu(x, c3, 1, 1, "style", every)
        for i in range(n_blocks):
            x = _inverted_residual(x, c3, expansion, f"block{i + 1}", global_context or every, every, inorm)
        if bottleneck_stride == 8:
            x = _up(x, e2, c2, "up1", context=every, instance=inorm, transposed=transposed, grid=grid)
        x = _up(x, e1, c1, "up2", context=every, instance=inorm, transposed=transposed, grid=grid)
        x = _up(x, e0, max(8, c1 // 2), "up3", not full_res_conv, every, inorm, transposed, grid)
        x = keras.layers.Conv2D(1, 3, padding="same", name="head_conv")(x)
        drawing = keras.layers.Activation("tanh", dtype="float32", name="head_tanh")(x)
        super().__init__(inputs={"photo": photo, "style": style}, outputs=drawing, name=name, **kwargs)
        # === Config ===
        self.alpha, self.n_blocks, self.expansion, self.style_dim = alpha, n_blocks, expansion, style_dim
        self.full_res_skip, self.full_res_conv, self.global_context = bool(full_res_skip), bool(full_res_conv), bool(global_context)
        self.context_everywhere, self.instance_norm, self.transposed_up, self.teacher_grid = every, inorm, transposed, grid
        self.bottleneck_stride = int(bottleneck_stride)
        self.height, self.width = height, width
