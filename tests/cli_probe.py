"""A command's flags probed in one child process: ``python -m tests.cli_probe MODULE EXAMPLES [RUNS_JSON]``.

The flags of different commands share absl's one registry, so each command is probed in a process of its own,
through ``cli.run`` as ``python -m MODULE`` runs it: an unknown flag, ``--helpshort``, then generated values for
every flag the command declares (hypothesis), then each argument list of ``RUNS_JSON`` (a JSON list of lists) through
``cli.run`` as a refusal test wants it run. Prints one ``RESULT {json}`` line for ``tests/test_cli.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import re
import sys

from absl import flags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_demo.runtime import cli

# Values a careless or hostile user types, for any flag type; typed strategies add the extremes of each type.
TEXT = st.text(max_size=40) | st.sampled_from(["", " ", "-1", "0", "nan", "inf", "1e308", "/", "/no/such/file", "a\nb", "x" * 5000])
NUMBERS = {
    flags.IntegerParser: (st.integers(-3, 1024) | st.integers(min_value=-(2**70), max_value=2**70)).map(str),
    flags.FloatParser: (st.floats(-2, 2) | st.floats(allow_nan=True, allow_infinity=True)).map(repr),
}


def run(module, argv: list[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``cli.run(module.main)`` with ``argv`` (as ``sys.argv``); flags left unparsed."""
    sys.argv = argv
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.run(module.main)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        finally:
            flags.FLAGS.unparse_flags()
    return code, out.getvalue(), err.getvalue()


def parse_only(program: str, argv: list[str], name: str | None = None) -> tuple[int, str, object]:
    """What the command's flag parser does with ``argv``: (0, "", the value of flag ``name``) accepted, or its exit
    status and stderr. The value is read before the flags are unparsed (which resets them to their defaults)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            cli._parse_flags([program, *argv])
        return 0, "", flags.FLAGS[name].value if name else None
    except SystemExit as stop:
        return (stop.code if isinstance(stop.code, int) else 1), err.getvalue(), None
    finally:
        flags.FLAGS.unparse_flags()


def required(program: str) -> dict[str, str]:
    """Placeholder values for the flags the command requires (absl names one per refusal), so a probe reaches the rest."""
    placeholders: dict[str, str] = {}
    for _ in range(20):
        code, err, _ = parse_only(program, [f"--{k}={v}" for k, v in placeholders.items()])
        match = re.search(r"--(\w+) must have a value other than None", err)
        if code == 0 or not match or match.group(1) in placeholders:
            break
        placeholders[match.group(1)] = "probe"
    return placeholders


def main() -> None:
    name, examples = sys.argv[1], int(sys.argv[2])
    runs = json.loads(sys.argv[3]) if len(sys.argv) > 3 else []
    sys.orig_argv = [sys.executable, "-m", name]  # launched as the command is: keras_asym imports what it uses
    module = importlib.import_module(name)
    if not hasattr(module, "main"):  # a package run as python -m PACKAGE
        module = importlib.import_module(f"{name}.__main__")
    program = module.__name__  # absl's --helpshort lists the flags of the module named by argv[0]
    # the command's key flags: its own and those it adopts from the shared flag modules
    own = {
        flag.name: flag
        for flag in flags.FLAGS.get_key_flags_for_module(program)
        if flag.name not in ("helpshort", "help", "helpfull", "helpxml")
    }
    result: dict = {"flags": sorted(own)}

    result["unknown"] = run(module, [program, "--no_such_flag=1"])
    code, out, _ = run(module, [program, "--helpshort"])
    result["help"] = [code, [flag for flag in own if f"--{flag}" in out or f"--[no]{flag}" in out]]

    base = required(program)
    result["required"] = sorted(base)
    failures: list = []
    accepted = refused = 0

    # derandomized: a failure names the flag and value and replays as it failed; KERAS_ASYM_FUZZ_EXAMPLES deepens it
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    @given(data=st.data())
    def probe(data):
        nonlocal accepted, refused
        flag = own[data.draw(st.sampled_from(sorted(own)))]
        strategy = NUMBERS.get(type(flag.parser), TEXT)
        if isinstance(flag.parser, flags.EnumParser):
            strategy = st.sampled_from(list(flag.parser.enum_values)) | TEXT
        value = data.draw(strategy | TEXT)
        argv = [f"--{k}={v}" for k, v in base.items() if k != flag.name] + [f"--{flag.name}={value}"]
        code, err, parsed = parse_only(program, argv, flag.name)
        if code == 0:
            accepted += 1
            if isinstance(parsed, float) and not math.isfinite(parsed):  # cli refuses non-finite values for every command
                failures.append([flag.name, value, "non-finite value accepted"])
            return
        refused += 1
        lines = [line for line in err.splitlines() if line.strip()]
        if code != cli.BAD_INPUT or "Traceback" in err or not lines or len(lines) > 2 or len(lines[0]) > cli.MAX_LINE + 200:
            failures.append([flag.name, value[:80], code, err[-300:]])

    probe()
    result.update({"accepted": accepted, "refused": refused, "failures": failures[:10]})
    result["runs"] = [run(module, [program, *argv]) for argv in runs]
    print("RESULT " + json.dumps(result), file=sys.__stdout__, flush=True)


if __name__ == "__main__":
    main()
