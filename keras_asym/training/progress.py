"""``ProgressCallback``: ``edge_demo.runtime.progress.Progress`` over every batch of a Keras ``fit``."""

from __future__ import annotations

import keras

from edge_demo.runtime.progress import Progress


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
