"""Writes small state_dicts in PyTorch's zip format without torch, for tests.

Emits the same pickle opcodes ``torch.save`` does for a state_dict of float32
tensors (OrderedDict of ``torch._utils._rebuild_tensor_v2`` calls over
``torch.FloatStorage`` persistent ids).
"""

from __future__ import annotations

import struct
import zipfile

import numpy as np


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def write_state_dict_zip(path, tensors: dict[str, np.ndarray]) -> None:
    body = b"\x80\x02ccollections\nOrderedDict\n)R("
    records = {}
    for index, (name, value) in enumerate(tensors.items()):
        value = np.ascontiguousarray(value, dtype=np.float32)
        key = str(index)
        records[key] = value.tobytes()
        strides = [int(s // 4) for s in value.strides] if value.ndim else []
        body += _unicode(name) + b"ctorch._utils\n_rebuild_tensor_v2\n("
        body += b"(" + _unicode("storage") + b"ctorch\nFloatStorage\n" + _unicode(key) + _unicode("cpu") + _int(value.size) + b"tQ"
        body += _int(0) + _tuple(value.shape) + _tuple(strides) + b"\x89ccollections\nOrderedDict\n)RtR"
    body += b"u."
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", body)
        archive.writestr("archive/version", "3\n")
        for key, raw in records.items():
            archive.writestr(f"archive/data/{key}", raw)
