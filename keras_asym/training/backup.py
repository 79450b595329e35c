"""Crash-safe training state and step-exact resume for ``fit``.

``BackupStore`` keeps generations of a run's state in ``RUN/backup/``:

    gen-000000001200/weights.weights.h5   every network and optimizer (step counts included)
    gen-000000001200/extra.npz            state Keras does not save (the history pools)
    gen-000000001200/state.json           step, epoch, batch, and each file's size and sha256

A generation is written under a temporary name, every file and the folder are
fsynced, ``state.json`` (with the checksums) is written last, and only then is
the folder renamed into place; older generations are deleted after that. So at
every instant at least one complete generation exists, whatever kills the
process. ``restore`` takes the newest generation whose files match their
checksums and load, says which, and falls back past damaged ones; it never
restarts a run silently.

``StepBackup`` saves every ``every`` steps and at every epoch end;
``keras_asym.training.loop.fit_resumable`` continues a run at the exact step
it was saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from edge_demo.runtime.hashing import file_sha256

GENERATION_PREFIX = "gen-"
STATE_FILE = "state.json"
WEIGHTS_FILE = "weights.weights.h5"
EXTRA_FILE = "extra.npz"


class BackupError(RuntimeError):
    """No backup generation of a run can be restored, although some exist."""


def _record_checksum(record: dict) -> str:
    """sha256 of ``record`` without its ``checksum`` key, as canonical JSON: covers ``state.json`` itself."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def fsync_path(path: Path) -> None:
    """Flushes a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stateful_layers(model: keras.Model) -> list:
    """Layers holding state outside Keras' weights (``extra_state``/``restore_extra_state``), in a fixed order."""
    return [layer for layer in model._flatten_layers(include_self=False) if hasattr(layer, "extra_state")]


def _extra_state(model: keras.Model) -> dict[str, np.ndarray]:
    out = {}
    for layer in _stateful_layers(model):
        for key, value in layer.extra_state().items():
            out[f"{layer.name}/{key}"] = value
    return out


def _restore_extra_state(model: keras.Model, arrays: dict[str, np.ndarray]) -> None:
    for layer in _stateful_layers(model):
        prefix = f"{layer.name}/"
        layer.restore_extra_state({k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})


class BackupStore:
    """Generations of one run's training state in a folder; see the module docstring."""

    def __init__(self, folder: str | Path, keep: int = 2):
        if keep < 2:
            raise ValueError(f"keep must be at least 2 so that one generation survives a crash mid-save, got {keep}.")
        self.folder, self.keep = Path(folder), keep

    def generations(self) -> list[Path]:
        """Finished generations (renamed into place), newest first; not yet verified."""
        if not self.folder.is_dir():
            return []
        found = [
            p
            for p in self.folder.iterdir()
            if p.is_dir() and p.name.startswith(GENERATION_PREFIX) and p.name[len(GENERATION_PREFIX) :].isdigit()
        ]
        return sorted(found, key=lambda p: int(p.name[len(GENERATION_PREFIX) :]), reverse=True)

    def save(self, model: keras.Model, state: dict) -> Path:
        """Writes ``model``'s weights, extra state and ``state`` (needs ``state["step"]``) as a new generation."""
        step = int(state["step"])
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".partial-{step}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        model.save_weights(tmp / WEIGHTS_FILE)
        with open(tmp / EXTRA_FILE, "wb") as handle:
            np.savez(handle, **_extra_state(model))
        files = {}
        for name in (WEIGHTS_FILE, EXTRA_FILE):
            fsync_path(tmp / name)
            files[name] = {"bytes": (tmp / name).stat().st_size, "sha256": file_sha256(tmp / name)}
        record = {**state, "step": step, "files": files, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        record["checksum"] = _record_checksum(record)
        with open(tmp / STATE_FILE, "w") as handle:
            json.dump(record, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_path(tmp)
        final = self.folder / f"{GENERATION_PREFIX}{step:012d}"
        if final.exists():  # the same step saved again (an epoch end right after a periodic save)
            stale = self.folder / f".stale-{step}-{os.getpid()}"
            os.replace(final, stale)
            os.replace(tmp, final)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_path(self.folder)
        self._prune()
        return final

    def _prune(self) -> None:
        for old in self.generations()[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)
        for leftover in self.folder.glob(".partial-*"):
            if not leftover.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.folder.glob(".stale-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    @staticmethod
    def verify(generation: Path) -> dict:
        """The generation's ``state.json`` if every file it lists has its recorded size and checksum."""
        try:
            state = json.loads((generation / STATE_FILE).read_text())
            files = state["files"]
            if not isinstance(state, dict) or not isinstance(files, dict):
                raise TypeError("not a JSON object")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise BackupError(f"{generation}: no readable {STATE_FILE} ({err}).") from err
        # Backups written before state.json carried its own checksum are checked for consistency only.
        if "checksum" in state and state["checksum"] != _record_checksum(state):
            raise BackupError(f"{generation / STATE_FILE}: its checksum does not match its contents (edited or damaged).")
        step, epoch, batch, per_epoch = (state.get(k) for k in ("step", "epoch", "batch", "steps_per_epoch"))
        numbers = (step, epoch, batch, per_epoch)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers if v is not None) or not isinstance(
            step, int
        ):
            raise BackupError(f"{generation / STATE_FILE}: step, epoch and batch must be non-negative integers.")
        if per_epoch and (epoch is None or batch is None or epoch * per_epoch + batch != step or batch >= per_epoch):
            raise BackupError(f"{generation / STATE_FILE}: step {step} does not match epoch {epoch}, batch {batch} of {per_epoch}.")
        if generation.name.startswith(GENERATION_PREFIX) and generation.name[len(GENERATION_PREFIX) :] != f"{step:012d}":
            raise BackupError(f"{generation / STATE_FILE}: step {step} is not the step of its folder {generation.name}.")
        for name in (WEIGHTS_FILE, EXTRA_FILE):
            path, expected = generation / name, files.get(name)
            if not isinstance(expected, dict):
                raise BackupError(f"{generation / STATE_FILE}: no size and checksum recorded for {name}.")
            if not path.is_file():
                raise BackupError(f"{path}: missing.")
            if path.stat().st_size != expected.get("bytes") or file_sha256(path) != expected.get("sha256"):
                raise BackupError(f"{path}: size or checksum differs from {STATE_FILE} (damaged).")
        return state

    def restore(self, model: keras.Model, log=None) -> dict | None:
        """Loads the newest complete generation into ``model`` and returns its state; ``None`` if there is none.

        Damaged generations are skipped with a message and renamed ``damaged-gen-*``
        (out of the rotation); if generations exist and none can be loaded, raises
        ``BackupError`` rather than starting over.
        """
        log = log or (lambda message: print(message, file=sys.stderr))
        generations = self.generations()
        problems = []
        for generation in generations:
            try:
                state = self.verify(generation)
                model.load_weights(generation / WEIGHTS_FILE)
                with np.load(generation / EXTRA_FILE) as extra:
                    _restore_extra_state(model, dict(extra))
            except (BackupError, OSError, ValueError, KeyError) as err:
                problems.append(str(err))
                log(f"backup: skipping {generation.name}: {err}")
                continue
            log(
                f"backup: resuming from {generation} (step {state['step']}, epoch {state.get('epoch', 0) + 1}, batch {state.get('batch', 0)})"
            )
            for damaged in generations[: generations.index(generation)]:  # kept for inspection, out of the rotation
                os.replace(damaged, damaged.with_name(f"damaged-{damaged.name}"))
            return state
        if generations:
            raise BackupError(f"{self.folder}: none of {len(generations)} backup generations can be restored: {'; '.join(problems)}")
        return None


class StepBackup(keras.callbacks.Callback):
    """Saves a generation every ``every`` optimizer steps and at each epoch end.

    It counts global steps itself from ``start_step`` (the restored step), so
    it is right across the several ``fit`` calls of a resumed or phased run.
    ``position`` (optional) returns extra resume information, e.g. where the
    input pipeline stands, stored in ``state.json``.
    """

    def __init__(self, store: BackupStore, steps_per_epoch: int, every: int = 0, start_step: int = 0, position=None):
        super().__init__()
        self.store, self.steps_per_epoch, self.every = store, int(steps_per_epoch), int(every)
        self.step = int(start_step)
        self.position = position

    def _save(self) -> None:
        epoch, batch = divmod(self.step, self.steps_per_epoch)
        state = {"step": self.step, "epoch": epoch, "batch": batch, "steps_per_epoch": self.steps_per_epoch}
        if self.position is not None:
            state["position"] = self.position()
        self.store.save(self.model, state)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.every and self.step % self.every == 0 and self.step % self.steps_per_epoch:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        # At the epoch end, not its last batch: place this callback after the end-of-epoch
        # checkpoints, so a generation that says "epoch done" exists only once they are written.
        self._save()
