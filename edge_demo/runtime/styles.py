"""The style vector: the three drawing styles, their names, one-hots, mixtures and how they are written.

One home for what G's second input means, TensorFlow-free so the camera demo,
the library, the exporters and the benchmarks share it. Styles are numbered 1,
2, 3 as in the paper and the official code (``style1`` .. ``style3``); a style
vector is a non-negative float32 3-vector summing to 1 (a one-hot, or a
mixture such as ``0.2,0.5,0.3``).
"""

from __future__ import annotations

import numpy as np

STYLE_COUNT = 3
STYLE_NAMES = tuple(f"style{k}" for k in range(1, STYLE_COUNT + 1))
ONE_HOTS = np.eye(STYLE_COUNT, dtype=np.float32)  # row k - 1 is style k; read-only
ONE_HOTS.flags.writeable = False


def one_hot(style: int) -> np.ndarray:
    """The one-hot vector of style 1, 2 or 3 (a fresh float32 array)."""
    if not 1 <= int(style) <= STYLE_COUNT:
        raise ValueError(f"style must be 1..{STYLE_COUNT}, got {style}.")
    return ONE_HOTS[int(style) - 1].copy()


def cycling(count: int) -> np.ndarray:
    """(count, 3) one-hots cycling through styles 1, 2, 3, 1, ...: every style equally, for batches of examples."""
    return ONE_HOTS[np.arange(count) % STYLE_COUNT].copy()


def which(style: np.ndarray) -> int | None:
    """The style number (1-based) of a one-hot vector, ``None`` for a mixture."""
    for k in range(STYLE_COUNT):
        if np.allclose(style, ONE_HOTS[k]):
            return k + 1
    return None


def suffix(style: np.ndarray) -> str:
    """The file-name suffix of a style vector: ``style1``..``style3`` for one-hots, else ``mix-0.20-0.50-0.30``."""
    k = which(style)
    return STYLE_NAMES[k - 1] if k else "mix-" + "-".join(f"{v:.2f}" for v in style)


def parse(text: str) -> np.ndarray:
    """``"0.2,0.5,0.3"`` -> a normalised non-negative 3-vector; ``"1"``/``"2"``/``"3"`` -> one-hot."""
    text = text.strip()
    if text in ("1", "2", "3"):
        return one_hot(int(text))
    try:
        values = np.array([float(v) for v in text.split(",")], np.float64)
    except ValueError as err:
        raise ValueError(f"style {text!r}: expected 3 comma-separated numbers or 1/2/3.") from err
    if values.shape != (STYLE_COUNT,):
        raise ValueError(f"style {text!r}: expected 3 weights, got {values.size}.")
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"style {text!r}: weights must be finite and non-negative.")
    if values.sum() <= 0:
        raise ValueError(f"style {text!r}: weights sum to 0.")
    values = values / values.max()  # first: three weights of 1e308 sum to infinity
    return (values / values.sum()).astype(np.float32)
