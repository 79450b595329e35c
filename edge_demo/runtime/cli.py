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
import tempfile
import traceback
from pathlib import Path

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


MAX_LINE = 400  # characters of one message line


def one_line(text, limit: int = MAX_LINE) -> str:
    """``text`` as one bounded printable line: control characters escaped (a newline in a file name cannot
    forge a log line), undecodable file-name bytes shown as escapes, the middle of a long text elided."""
    text = str(text)
    if len(text) > 4 * limit:
        text = text[: 2 * limit] + text[-limit:]
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) <= limit:
        return text
    tail = limit // 4
    return text[: limit - tail - 5] + " ... " + text[-tail:]


def error(program: str, err, word: str = "error") -> None:
    """``program: error: <one line>`` on stderr."""
    print(f"{program}: {word}: {one_line(err)}", file=sys.stderr)


def batch_status(done: int, skipped: int) -> int:
    """A batch job's exit status: every item done (0), some skipped and reported (1), or none done at all (2, as
    for any input that cannot be used: a single unreadable file is refused, not "partly done")."""
    return OK if not skipped else PARTIAL if done else BAD_INPUT


def skipped(item) -> None:
    """``skipped: <one line>`` on stderr, for an item a batch job leaves out and reports."""
    print(f"skipped: {one_line(item)}", file=sys.stderr)


def _probe(folder: Path, shown: Path) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"{shown}: cannot write there ({err.strerror or type(err).__name__}).") from err


def output_folder(path, create: bool = True) -> Path:
    """``path`` as an output folder, created if missing: refused in one line (ValueError) if it is a file, cannot be
    created, or cannot be written, before any work is done. ``create=False`` checks the same without creating it
    (for a command that leaves nothing behind when it fails later)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder}: exists and is not a folder.")
    if not create and not folder.exists():
        ancestor = folder.absolute().parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise ValueError(f"{folder}: cannot create this folder ({ancestor} is not a folder).")
        _probe(ancestor, folder)
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{folder}: cannot create this folder ({err.strerror or type(err).__name__}).") from err
    _probe(folder, folder)
    return folder


def output_file(path) -> Path:
    """``path`` as an output file, its folder created if missing: refused in one line (ValueError) if it is a
    folder or its folder cannot be created or written."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{target}: is a folder; give a file name.")
    output_folder(target.parent)
    return target


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
        error(name, err)
        print("Pass --helpshort for the options.", file=sys.stderr)
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
