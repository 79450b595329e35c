"""Where a benchmark's numbers go: ``docs/results/<name>.json``, with the machine, the date and the command,
written whole or not at all; ``benchmarks.report`` renders them into ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import sys
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
