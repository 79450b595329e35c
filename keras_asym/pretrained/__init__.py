"""Models that ship with the package, each beside a JSON record of how it was made and its sha256.

``demo_drawer.keras``: the paper's generator architecture, small (128 px), fitted
by ``python -m keras_asym.pretrained.fit`` to procedural photos and their known
drawings in the three styles. ``make demo`` draws with it at once, before its
own few-minute training run, so a first run shows what clean drawings in three
distinct styles look like. It is a *paired* fit, not the paper's unpaired
training; the record says so, and so does the demo report.

``unpaired_drawer.keras`` (where shipped): the paper's generator trained from
scratch by ``keras_asym.train`` with the paper's unpaired objective on
procedural photos and drawings of different faces
(``python -m benchmarks.unpaired_drawer --ship``); its record holds the
held-out scores against a bar fixed before training.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_demo.runtime.hashing import file_sha256

HERE = Path(__file__).resolve().parent
DEMO_DRAWER = HERE / "demo_drawer.keras"
UNPAIRED_DRAWER = HERE / "unpaired_drawer.keras"


def record(model: Path = DEMO_DRAWER) -> dict:
    """The JSON record beside a shipped model (command, settings, sha256, held-out scores)."""
    path = model.with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; the shipped model has no record.")
    return json.loads(path.read_text())


def verified(model: Path = DEMO_DRAWER) -> Path:
    """``model``'s path once its bytes match the sha256 in its record; a clear error otherwise."""
    if not model.is_file():
        raise FileNotFoundError(f"{model}: missing; reinstall the package or run python -m keras_asym.pretrained.fit.")
    expected, actual = record(model)["sha256"], file_sha256(model)
    if actual != expected:
        raise ValueError(f"{model}: sha256 {actual[:12]}... does not match its record ({expected[:12]}...); the file was changed.")
    return model
