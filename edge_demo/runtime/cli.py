"""The exit-status convention every command of the project follows, and the absl runner that enforces it.

    0  done: every item was processed
    1  done, but some items were skipped and reported (or training stopped on a non-finite loss)
    2  nothing done: bad arguments, or an input, model or checkpoint that cannot be used
    3  internal error: a bug in this project (a traceback is printed)
  130  interrupted (Ctrl-C)

TensorFlow-free, so the camera demo and the library share it.
"""

from __future__ import annotations

import math
import os
import sys
import traceback

from absl import app, flags

OK, PARTIAL, BAD_INPUT, INTERNAL, INTERRUPTED = 0, 1, 2, 3, 130


_HELP = ("--help", "--helpshort", "--helpfull", "--helpxml", "-h", "-?")


def _non_finite(values: flags.FlagValues) -> str | None:
    """The first float flag holding NaN or an infinity (absl's bounds let them through); no flag wants one."""
    for name in values:
        flag = values[name]
        if isinstance(flag.value, float) and not math.isfinite(flag.value):
            return f"flag --{name}={flag.value}: must be a finite number"
    return None


def _parse_flags(argv):
    try:
        remaining = flags.FLAGS(argv)
        problem = _non_finite(flags.FLAGS)
        if problem:
            raise flags.IllegalFlagValueError(problem)
        return remaining
    except SystemExit as stop:  # absl exits 1 after printing help; asking for help is not an error
        if any(a.split("=")[0] in _HELP for a in argv[1:]):
            sys.exit(OK)
        raise stop
    except flags.Error as err:
        name = os.path.basename(argv[0]) if argv else "command"
        print(f"{name}: error: {err}\nPass --helpshort for the options.", file=sys.stderr)
        sys.exit(BAD_INPUT)


def run(main) -> None:
    """``absl.app.run(main)`` with bad flags exiting 2 and unexpected exceptions exiting 3."""

    def guarded(argv):
        try:
            return main(argv)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return INTERRUPTED
        except Exception:  # noqa: BLE001 - the last line of defence: a bug, not a user error
            traceback.print_exc()
            print(f"{os.path.basename(sys.argv[0])}: internal error (exit {INTERNAL}); please report the traceback above.", file=sys.stderr)
            return INTERNAL

    app.run(guarded, flags_parser=_parse_flags)
