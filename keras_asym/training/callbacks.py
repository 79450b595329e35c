"""The callbacks of a training run: the epoch schedule, checkpoints and exports, the non-finite stop, the time
budget, TensorBoard image grids and extra scalars, and progress with an ETA (``StepBackup`` lives with its
store in ``backup``)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge_demo.runtime.progress import Progress
from keras_asym.objective.schedules import learning_rate_factor, training_progress
from keras_asym.utils.imageio import save_keras_atomic, write_json_atomic


class EpochSchedule(keras.callbacks.Callback):
    """Sets the model's training progress and both optimizers' learning rates each epoch.

    Args:
        base_learning_rate: float. The official ``--lr`` (2e-4).
        niter: int. Epochs at the base learning rate.
        niter_decay: int. Epochs of linear decay.
    """

    def __init__(self, base_learning_rate: float, niter: int, niter_decay: int):
        super().__init__()
        self.base_learning_rate = base_learning_rate
        self.niter, self.niter_decay = niter, niter_decay

    def on_epoch_begin(self, epoch, logs=None):
        self.model.progress.assign(training_progress(epoch, self.niter, self.niter_decay))
        rate = self.base_learning_rate * learning_rate_factor(epoch, self.niter, self.niter_decay)
        for optimizer in (self.model.g_optimizer, self.model.d_optimizer):
            optimizer.learning_rate.assign(rate)


def _save_weights_atomic(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.partial.weights.h5")
    model.save_weights(tmp, overwrite=True)
    os.replace(tmp, path)


class EpochCheckpoint(keras.callbacks.Callback):
    """End-of-epoch checkpoints of every network and optimizer, and periodic generator exports."""

    def __init__(self, run: Path, keep: int = 3, export_every: int = 10):
        super().__init__()
        self.run, self.keep, self.export_every = Path(run), keep, export_every

    def on_epoch_end(self, epoch, logs=None):
        folder = self.run / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"epoch-{epoch + 1:04d}.weights.h5"
        _save_weights_atomic(self.model, path)
        optimizer = getattr(self.model, "g_optimizer", None) or self.model.optimizer
        meta = {
            "epoch": epoch + 1,
            "iterations": int(keras.ops.convert_to_numpy(optimizer.iterations)),
            "logs": {k: float(v) for k, v in (logs or {}).items()},
        }
        if hasattr(self.model, "progress"):
            meta["progress"] = float(self.model.progress.numpy())
        write_json_atomic(path.with_suffix("").with_suffix(".json"), meta)
        for old in sorted(folder.glob("epoch-*.weights.h5"))[: -self.keep]:
            old.unlink(missing_ok=True)
            old.with_suffix("").with_suffix(".json").unlink(missing_ok=True)
        if self.export_every and (epoch + 1) % self.export_every == 0:
            export = self.run / "generators" / f"generator-epoch-{epoch + 1:04d}.keras"
            save_keras_atomic(self.model.generator, export)


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops at the first non-finite loss term, before any backup of the broken state.

    Place it first in the callback list: it raises from ``on_train_batch_end``,
    so the backup callbacks after it never save the NaN weights.
    """

    def on_train_batch_end(self, batch, logs=None):
        bad = sorted(name for name, value in (logs or {}).items() if not np.isfinite(float(value)))
        if bad:
            raise NonFiniteLossError(
                f"loss term(s) {', '.join(bad)} became non-finite at epoch {getattr(self, 'epoch', '?')}, batch {batch}; "
                "training stopped, the last good backup and checkpoints are kept."
            )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


class TimeBudget(keras.callbacks.Callback):
    """Stops training after ``seconds`` of wall time (checked after every batch); for demos and benchmarks.

    The clock runs across the several ``fit`` calls of one run, and, once ``attach``ed to a run folder,
    across resumed sessions: the time spent is kept in the folder, so a resumed run gets what is left.
    """

    LEDGER = "time_budget.json"

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = float(seconds)
        self.stopped_early = False
        self.spent_before, self.ledger = 0.0, None
        self._start = self._written = None

    def attach(self, run_dir: Path, resume: bool) -> None:
        """Keeps the time spent in ``run_dir``; a resumed run starts from what it records."""
        self.ledger = Path(run_dir) / self.LEDGER
        self.spent_before = 0.0
        if resume and self.ledger.is_file():
            try:
                self.spent_before = max(0.0, float(json.loads(self.ledger.read_text())["seconds"]))
            except (ValueError, KeyError, TypeError, OSError):
                print(f"train: {self.ledger}: unreadable; the time budget starts again.", file=sys.stderr)

    @property
    def spent(self) -> float:
        return self.spent_before + (time.monotonic() - self._start if self._start is not None else 0.0)

    def _record(self) -> None:
        if self.ledger is not None:
            write_json_atomic(self.ledger, {"seconds": round(self.spent, 3), "budget": self.seconds})
            self._written = time.monotonic()

    def on_train_begin(self, logs=None):
        if self._start is None:  # fit_resumable calls fit twice on a resume: one clock
            self._start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self._written is None or time.monotonic() - self._written > 5.0:
            self._record()
        if self.spent > self.seconds:
            self.model.stop_training = True
            self.stopped_early = True

    def on_train_end(self, logs=None):
        self._record()


class ImageGrids(keras.callbacks.Callback):
    """TensorBoard image grids on a fixed batch: photo, the three styles, reconstructions, edges, parts."""

    def __init__(self, log_dir: Path, batch: dict, every: int = 1):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(Path(log_dir) / "images"))
        self.batch, self.every = batch, every

    def on_epoch_end(self, epoch, logs=None):
        if not self.every or (epoch + 1) % self.every:
            return
        to_unit = lambda x: (tf.cast(x, tf.float32) + 1.0) / 2.0  # noqa: E731
        rgb = lambda x: tf.image.grayscale_to_rgb(x) if x.shape[-1] == 1 else x  # noqa: E731
        batch = self.batch
        _, images = self.model.compute_losses(batch)
        styles = [
            self.model.generator({"photo": batch["photo"], "style": tf.one_hot(tf.fill([tf.shape(batch["photo"])[0]], k), 3)})
            for k in range(3)
        ]
        columns = [batch["photo"]] + styles + [images["fake_drawing"], images["reconstructed_photo"]]
        if "reconstructed_photo_truncated" in images:
            columns.append(images["reconstructed_photo_truncated"])
        columns += [images["photo_edges"], images["reconstructed_photo_edges"], batch["drawing"], images["fake_photo"]]
        grid = tf.concat([rgb(to_unit(c)) for c in columns], axis=2)
        with self.writer.as_default():
            tf.summary.image(
                "photo | style1 | style2 | style3 | G(x,s) | F(G) | F(trunc G) | edges x | edges F(G) | y | F(y)",
                grid,
                step=epoch,
                max_outputs=4,
            )
            for part in self.model.parts:
                crop = tf.concat(
                    [
                        batch["photo_masks"][part] * to_unit(images["fake_drawing"]),
                        batch["drawing_masks"][part] * to_unit(batch["drawing"]),
                    ],
                    axis=2,
                )
                tf.summary.image(f"local/{part}: G(x) | y", rgb(crop), step=epoch, max_outputs=2)
        self.writer.flush()


class ScalarExtras(keras.callbacks.Callback):
    """Learning rate and training progress into the epoch logs (TensorBoard picks them up)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.g_optimizer.learning_rate))
            logs["progress"] = float(self.model.progress.numpy())


class ProgressCallback(keras.callbacks.Callback):
    """``Progress`` over every batch of a ``fit``; the note shows the first logged losses."""

    def __init__(
        self, label: str, total_steps: int, interval: float = 10.0, keys: tuple[str, ...] = (), start: int = 0, budget: float | None = None
    ):
        super().__init__()
        self.progress = Progress(total_steps, label, "steps", interval, start=start, budget=budget)
        self.keys = keys

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        keys = self.keys or tuple(logs)[:3]
        note = ", ".join(f"{k} {float(logs[k]):.4g}" for k in keys if k in logs)
        self.progress.update(note=note)
