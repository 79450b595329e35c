"""Training schedules: progress, cycle/truncation weights and the linear LR decay.

All are functions of the epoch so that a resumed run lands on exactly the same
values; ``keras_asym.training.callbacks.EpochSchedule`` applies them to a model at the start of each epoch.
"""

from __future__ import annotations

from keras import ops


def training_progress(epoch: int, niter: int, niter_decay: int) -> float:
    """Official ``update_process``: (epoch - 1) / (niter + niter_decay), epoch 1-based.

    ``epoch`` here is Keras' 0-based epoch index, so progress is epoch / total.
    """
    total = niter + niter_decay
    if total <= 0:
        raise ValueError(f"niter + niter_decay must be positive, got {niter} + {niter_decay}.")
    return float(epoch) / float(total)


def cycle_weights(progress, lambda_cycle: float, lambda_truncation: float):
    """``(lambda_cycle * (1 - 0.9 p), lambda_truncation * 0.9 p)``.

    The relaxed cycle through the plain drawing fades while the cycle through
    its 6-bit truncation takes over, so information hidden in invisible
    low-amplitude signals stops paying off.
    """
    p = ops.cast(progress, "float32")
    return lambda_cycle * (1.0 - 0.9 * p), lambda_truncation * 0.9 * p


def learning_rate_factor(epoch: int, niter: int, niter_decay: int) -> float:
    """Official ``lr_policy='linear'``: constant for ``niter`` epochs, then linear towards 0.

    ``1 - max(0, epoch + 1 - niter) / (niter_decay + 1)`` with 0-based ``epoch``
    (the official scheduler starts at 0 with ``epoch_count=1``).
    """
    return 1.0 - max(0, epoch + 1 - niter) / float(niter_decay + 1)
