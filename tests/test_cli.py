"""One exit-status convention for every command: 0 done, 1 some items skipped, 2 bad input or arguments, 3 a bug."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge_demo import cli

COMMANDS = [
    "keras_asym.train",
    "keras_asym.draw",
    "keras_asym.prepare",
    "keras_asym.import_official",
    "keras_asym.distill",
    "keras_asym.evaluate",
    "keras_asym.style",
    "keras_asym.demo",
    "keras_asym.data.generate",
    "keras_asym.face.align",
    "keras_asym.face.landmarks",
    "export",
    "edge_demo",
]


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)


def test_the_convention_has_distinct_codes():
    assert (cli.OK, cli.PARTIAL, cli.BAD_INPUT, cli.INTERNAL) == (0, 1, 2, 3)


@pytest.mark.parametrize("module", COMMANDS)
def test_every_command_exits_2_on_an_unknown_flag_and_0_on_helpshort(module):
    bad = _run("-m", module, "--no_such_flag=1")
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert "no_such_flag" in bad.stderr and "Traceback" not in bad.stderr
    helped = _run("-m", module, "--helpshort")
    assert helped.returncode == 0 and "--" in helped.stdout


def test_an_unexpected_exception_exits_3_with_its_traceback(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("from edge_demo import cli\n\ndef main(argv):\n    raise KeyError('bug')\n\ncli.run(main)\n")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "internal error" in result.stderr


def test_one_console_command_lists_and_runs_every_command():
    from pathlib import Path

    from keras_asym.commands import COMMANDS as CONSOLE

    script = Path(sys.executable).with_name("keras-asym")
    assert script.is_file(), "the keras-asym console script is installed by `pip install -e .`"
    listing = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and all(name in listing.stdout for name in CONSOLE)
    unknown = subprocess.run([str(script), "paint"], capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown command 'paint'" in unknown.stderr
    helped = subprocess.run([str(script), "draw", "--helpshort"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--model" in helped.stdout
    bad = subprocess.run([str(script), "export", "--no_such_flag=1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no_such_flag" in bad.stderr
    modules = {module.removesuffix(".__main__") for module, _ in CONSOLE.values()}
    assert modules >= set(COMMANDS), "every python -m command is reachable through keras-asym"
