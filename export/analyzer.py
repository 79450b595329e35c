"""A static pre-check of GPU op coverage from ``tf.lite.experimental.Analyzer``: an opinion, not a run (``edge_demo.runtime.gpu_check`` runs the model)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile

import tensorflow as tf

COMPATIBLE = "looks compatible with GPU delegate"


def _capture_fd_stdout(fn) -> str:
    """The Analyzer prints from C++ to file descriptor 1: capture the descriptor, not ``sys.stdout``."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            with contextlib.redirect_stdout(io.StringIO()) as py_out:
                fn()
            sys.stdout.flush()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode("utf-8", "replace") + py_out.getvalue()


def gpu_report(model: bytes) -> dict:
    """``{"compatible": bool, "incompatible_ops": [...], "report": text}`` for a flatbuffer."""
    text = _capture_fd_stdout(lambda: tf.lite.experimental.Analyzer.analyze(model_content=model, gpu_compatibility=True))
    incompatible = sorted(set(re.findall(r"GPU COMPATIBILITY WARNING: [^\n]*?'?([A-Z_0-9]{3,})'?", text)))
    return {"compatible": COMPATIBLE in text, "incompatible_ops": incompatible, "report": text}
