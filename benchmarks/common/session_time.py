"""Wall time of a run that trains across sessions: ``RUN/cpu_seconds.json`` adds up every session's seconds,
updated as the run goes, so a session stopped mid-run still counts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keras_asym.utils.imageio import write_bytes_atomic

RECORD = "cpu_seconds.json"


class SessionTime:
    """This session's share of ``run``'s training time; ``account(seconds)`` records it (with the earlier ones)."""

    def __init__(self, run: Path, threads: int):
        self.run, self.record = Path(run), Path(run) / RECORD
        self.before = json.loads(self.record.read_text()) if self.record.is_file() else {"train_wall_seconds": 0.0, "sessions": []}
        self.session = {"threads": threads or os.cpu_count(), "seconds": 0.0}

    def account(self, seconds: float) -> None:
        self.session["seconds"] = round(seconds, 1)
        total = {
            "train_wall_seconds": self.before["train_wall_seconds"] + seconds,
            "sessions": self.before.get("sessions", []) + [self.session],
        }
        self.run.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.record, json.dumps(total, indent=1).encode())

    @staticmethod
    def total(run: Path) -> float | None:
        """The seconds every session spent on ``run``, or None if none was recorded."""
        record = Path(run) / RECORD
        return json.loads(record.read_text())["train_wall_seconds"] if record.is_file() else None
