"""Where a benchmark's numbers go: ``docs/results/<name>.json``, with the machine, the date and the command,
written whole or not at all; ``benchmarks.report`` renders them into ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks import machine

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def header(name: str, threads: int, module: str | None = None) -> dict:
    """The fields every results file starts with: the benchmark (the file's name), the command as run, and the machine."""
    command = " ".join(["python", "-m", f"benchmarks.{module or name}", *sys.argv[1:]])
    return {"benchmark": name, "command": command, "machine": machine.describe(threads)}


def model_name(path: Path) -> str:
    """How a results file names the model it measured: relative to the work tree, else with the home folder as ``~``."""
    path = Path(path).resolve()
    if path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    return str(path).replace(str(Path.home()), "~")


def write(record: dict, path: str | Path | None = None) -> Path:
    from keras_asym.utils.imageio import write_bytes_atomic

    path = Path(path) if path else RESULTS / f"{record['benchmark']}.json"
    write_bytes_atomic(path, (json.dumps(record, indent=1) + "\n").encode())
    print(f"wrote {path}", flush=True)
    return path


def write_rows(record: dict, path: Path, models: list[Path], sizes: list[int], analyse: Callable[..., dict], *folders: Path | None) -> None:
    """Appends ``analyse(model, size, *folders, work)`` to ``record["rows"]`` for every model and size, writing
    ``path`` after each row (an interrupted run keeps the rows it finished); ``work`` is a scratch folder per row."""
    with tempfile.TemporaryDirectory(prefix=f"{record['benchmark']}_") as work:
        for model in models:
            for size in sizes:
                record["rows"].append(analyse(model, size, *folders, Path(work) / f"{model.stem}_{size}"))
                write(record, path)
