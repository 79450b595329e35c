"""Progress with an ETA for every job longer than a few seconds.

One line per update, at most every ``interval`` seconds (and at the end), so
logs read the same whether or not the output is a terminal:
``train: 120/600 steps (20%), 1m04s elapsed, ETA 4m16s``.

TensorFlow-free: the camera demo, the exporters and the library share it; ``keras_asym.training.callbacks.ProgressCallback`` adds the Keras callback.
"""

from __future__ import annotations

import sys
import time

from edge_demo.runtime.cli import one_line


def clock(seconds: float) -> str:
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    """Counts ``total`` units of work named ``unit`` and prints ``label: done/total`` lines with an ETA.

    ``budget``: seconds after which the job stops whatever is left (a time-boxed run); the ETA is then
    the sooner of the work left and the budget left, marked ``(time budget)`` when the budget ends first.
    """

    def __init__(
        self,
        total: int,
        label: str,
        unit: str = "steps",
        interval: float = 10.0,
        stream=None,
        start: int = 0,
        budget: float | None = None,
    ):
        self.total, self.label, self.unit, self.interval = max(int(total), 1), label, unit, interval
        self.budget = budget
        self.stream = stream or sys.stderr
        self.done = self.first = start
        self.started = self.printed = time.monotonic()

    def update(self, done: int | None = None, note: str = "") -> None:
        self.done = self.done + 1 if done is None else done
        now = time.monotonic()
        if self.done < self.total and now - self.printed < self.interval:
            return
        self.printed = now
        elapsed = now - self.started
        rate = (self.done - self.first) / elapsed if elapsed > 0 else 0.0
        eta = ""
        if rate > 0 and self.done < self.total:
            left = (self.total - self.done) / rate
            if self.budget is not None and self.budget - elapsed < left:
                eta = f", ETA {clock(self.budget - elapsed)} (time budget)"
            else:
                eta = f", ETA {clock(left)}"
        percent = 100.0 * self.done / self.total
        suffix = f" [{one_line(note, 120)}]" if note else ""  # notes are often file names
        print(
            f"{self.label}: {self.done}/{self.total} {self.unit} ({percent:.0f}%), {clock(elapsed)} elapsed{eta}{suffix}",
            file=self.stream,
            flush=True,
        )
