"""Keeps TensorFlow's, XLA's and LiteRT's native start-up logs out of the commands' output.

TensorFlow 2.21 logs through absl's C++ logger before ``absl::InitializeLog``,
so ``TF_CPP_MIN_LOG_LEVEL`` no longer hides lines such as ``I0000 ... port.cc]
oneDNN custom operations are on``. The only place to drop them is the stderr
file descriptor itself: ``hide()`` routes fd 2 through a pipe and a filter
process that forwards every line except native INFO/WARNING lines and CUDA
probes on a CPU-only machine. Python's own warnings, errors and tracebacks pass
unchanged, and so do a dying process's last lines (``abort()``, a segfault's
faulthandler traceback): the filter outlives it.

The project's commands call it when their package is imported (before
TensorFlow is), and only when the process *is* one of them: a library user's
process is never touched. ``--native_logs`` on any command, or
``KERAS_ASYM_NATIVE_LOGS=1``, keeps everything.

TensorFlow-free, like the rest of ``edge_demo``.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import sys
import threading
import time

FLAG = "--native_logs"
ENV = "KERAS_ASYM_NATIVE_LOGS"
PACKAGES = ("keras_asym", "export", "edge_demo", "benchmarks")
CONSOLE_SCRIPTS = ("keras-asym",)

_NOISE = re.compile(
    rb"^(?:"
    rb"[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"  # absl INFO / WARNING
    rb"|E\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ cuda\S*:\d+\]"  # 'failed call to cuInit' on a machine without a GPU
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] "  # TensorFlow's older logger
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow"  # second line of cpu_feature_guard
    rb"|INFO: Created TensorFlow Lite .*delegate"
    rb"|INFO: \[\w+\.cc:\d+\] "  # LiteRT's environment and accelerator registry (Register/DestroyAccelerator, ...)
    rb"|WARNING: Logging before InitGoogle\(\) is written to STDERR"
    rb"|INFO: Failed to load OpenCL library with dlopen"  # LiteRT probing for a GPU on a machine without one
    rb"|WARNING: Attempting to use a delegate that only supports static-sized tensors"
    rb")"
)

_installed = False

try:  # every command accepts the flag; hide_for_commands() reads it from the command line before absl parses it
    from absl import flags as _flags

    _flags.DEFINE_boolean("native_logs", False, "Show TensorFlow/XLA/LiteRT native start-up logs (hidden by default).")
except _flags.DuplicateFlagError:  # pragma: no cover - module reloaded
    pass


def is_noise(line: bytes) -> bool:
    """Whether one stderr line is native start-up chatter."""
    return bool(_NOISE.match(line.lstrip(b"\r")))


def launched_as_command(argv: list[str] | None = None) -> bool:
    """Whether this process was started as one of the project's commands (``python -m <package>...`` or ``keras-asym``)."""
    argv = list(getattr(sys, "orig_argv", sys.argv) if argv is None else argv)
    if any(os.path.basename(a) in CONSOLE_SCRIPTS for a in argv[:2]):
        return True
    if "-m" in argv:
        index = argv.index("-m")
        module = argv[index + 1] if index + 1 < len(argv) else ""
        return module.split(".")[0] in PACKAGES
    return False


def wanted(argv: list[str] | None = None) -> bool:
    """Whether the native logs were asked for (``--native_logs`` or ``KERAS_ASYM_NATIVE_LOGS=1``)."""
    argv = list(getattr(sys, "orig_argv", sys.argv) if argv is None else argv)
    if os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes"):
        return True
    return any(a in (FLAG, f"{FLAG}=true", f"{FLAG}=1") for a in argv)


def hide_for_commands() -> None:
    """``hide()`` when this process is one of the project's commands and the logs were not asked for."""
    if launched_as_command() and not wanted():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own logger, where it still applies
        hide()


def _filter(read_end: int, out: int) -> None:
    """Copies ``read_end`` to ``out`` line by line until EOF, dropping native start-up chatter."""
    pending = b""
    while True:
        try:
            chunk = os.read(read_end, 65536)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = re.split(rb"(?<=[\n\r])", pending)
        kept = b"".join(line for line in lines if not is_noise(line))
        if kept:
            os.write(out, kept)
    if pending and not is_noise(pending):
        os.write(out, pending)


def hide(fd: int = 2) -> None:
    """Routes ``fd`` through a filter that drops native INFO/WARNING lines; idempotent.

    The filter runs in a forked child process, not a thread: when this process dies on ``abort()`` or a
    signal, the child still reads everything it wrote before dying (a fatal native error, faulthandler's
    traceback) until the pipe closes, and forwards it. Where ``fork`` is unavailable a thread does the same
    for every exit but a fatal one.
    """
    global _installed
    if _installed:
        return
    try:
        original = os.dup(fd)
        read_end, write_end = os.pipe()
    except OSError:  # no usable stderr (a daemon): nothing to filter
        return
    child = None
    if hasattr(os, "fork"):
        try:
            child = os.fork()
        except OSError:
            child = None
        if child == 0:  # the filter process: holds no write end of the pipe, ignores the terminal's Ctrl-C
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                os.close(write_end)
                os.dup2(original, fd)
                _filter(read_end, original)
            finally:
                os._exit(0)
    os.dup2(write_end, fd)
    os.close(write_end)
    _installed = True
    thread = None
    if child is None:
        thread = threading.Thread(target=_filter, args=(read_end, original), name="native-log-filter", daemon=True)
        thread.start()
    else:
        os.close(read_end)

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, fd)  # this process's last write end goes away: the filter sees EOF once children finish
        if thread is not None:
            thread.join(timeout=2.0)
            return
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(child, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            time.sleep(0.01)

    atexit.register(restore)
