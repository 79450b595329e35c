"""The paper's objective as pure functions of tensors.

Each returns a scalar averaged over the batch (or per-sample values where the
caller weights them), in float32. Official names: ``criterionGAN`` (LSGAN),
``criterionCycle`` (L1), ``truncate``, ``criterionCls2`` weighted by the soft
style vector, ``BaseModel.masked`` with ``mask_type=3``.
"""

from __future__ import annotations

from keras import ops

TRUNCATION_LEVELS = 31.875  # official trunc_a: 64 levels over [-1, 1], i.e. 6 bits


def _f32(x):
    return ops.cast(x, "float32")


def lsgan_loss(prediction, target_is_real: bool):
    """Least-squares GAN loss: mean((D(x) - 1)^2) for real, mean(D(x)^2) for fake."""
    target = 1.0 if target_is_real else 0.0
    return ops.mean(ops.square(_f32(prediction) - target))


def discriminator_loss(prediction_real, prediction_fake):
    """Official ``backward_D_basic``: the mean of the real and fake LSGAN terms."""
    return 0.5 * (lsgan_loss(prediction_real, True) + lsgan_loss(prediction_fake, False))


def l1_loss(a, b):
    return ops.mean(ops.abs(_f32(a) - _f32(b)))


def truncate(drawing, levels: float = TRUNCATION_LEVELS):
    """Quantize a drawing in [-1, 1] to ``floor((y + 1) * levels) / levels - 1``.

    The official code rounds with ``.int()``, a cast that autograd does not
    differentiate: no gradient reaches G through the truncated drawing, only F
    learns from the truncation loss. ``stop_gradient`` reproduces that exactly
    (it is *not* a straight-through estimator). For y in (-1, 1] the argument
    is non-negative, so floor equals PyTorch's truncation toward zero.
    """
    y = ops.stop_gradient(_f32(drawing))
    return ops.floor((y + 1.0) * levels) / levels - 1.0


def style_classification_loss(logits, style_weights):
    """Cross-entropy against every class, weighted by the soft style vector.

    ``mean_b sum_c w[b, c] * CE(logits[b], c)``: the official
    ``style_loss_with_weight=1`` form. With a one-hot ``w`` this is plain
    cross-entropy with the argmax label.
    """
    log_probs = ops.log_softmax(_f32(logits), axis=-1)
    return ops.mean(-ops.sum(_f32(style_weights) * log_probs, axis=-1))


def masked_part(drawing, mask):
    """Input of a local discriminator: drawing whitened outside the mask, plus the mask.

    Official ``mask_type=3``: ``((y / 2 + 0.5) * m + 1 - m) * 2 - 1`` concatenated
    with ``m`` on the channel axis.
    """
    drawing, mask = _f32(drawing), _f32(mask)
    whitened = ((drawing / 2.0 + 0.5) * mask + 1.0 - mask) * 2.0 - 1.0
    return ops.concatenate([whitened, mask], axis=-1)
