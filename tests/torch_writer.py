"""Writes small state_dicts in PyTorch's zip and legacy formats without torch, for tests.

Emits the same pickle opcodes ``torch.save`` does for a state_dict (protocol 2:
an OrderedDict of ``torch._utils._rebuild_tensor_v2`` calls over
``torch.<Type>Storage`` persistent ids, each storage memoised once).
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile

import numpy as np

STORAGE_NAMES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
    np.dtype("uint8"): "ByteStorage",
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def state_dict_pickle(tensors: dict[str, np.ndarray]) -> tuple[bytes, dict[str, bytes]]:
    """``(data.pkl, {storage key: raw little-endian bytes})`` for contiguous tensors of the dtypes above."""
    body = b"\x80\x02ccollections\nOrderedDict\n)R("
    records = {}
    for index, (name, value) in enumerate(tensors.items()):
        value = np.ascontiguousarray(value)
        key = str(index)
        records[key] = value.astype(value.dtype.newbyteorder("<")).tobytes()
        strides = [int(s // value.itemsize) for s in value.strides] if value.ndim else []
        storage = STORAGE_NAMES[value.dtype]
        body += _unicode(name) + b"ctorch._utils\n_rebuild_tensor_v2\n("
        body += b"(" + _unicode("storage") + f"ctorch\n{storage}\n".encode() + _unicode(key) + _unicode("cpu") + _int(value.size) + b"tQ"
        body += _int(0) + _tuple(value.shape) + _tuple(strides) + b"\x89ccollections\nOrderedDict\n)RtR"
    body += b"u."
    return body, records


def write_zip(path, data_pkl: bytes, records: dict[str, bytes], compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for key, raw in records.items():
            archive.writestr(f"archive/data/{key}", raw)


def write_state_dict_zip(path, tensors: dict[str, np.ndarray]) -> None:
    write_zip(path, *state_dict_pickle(tensors))


def legacy_bytes(data_pkl: bytes, records: dict[str, bytes], itemsizes: dict[str, int]) -> bytes:
    """The pre-1.6 stream: magic, protocol, system info, the object pickle, the key list, then each storage."""
    stream = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, stream, protocol=2)
    stream.write(data_pkl)
    pickle.dump(list(records), stream, protocol=2)
    for key, raw in records.items():
        stream.write(struct.pack("<q", len(raw) // itemsizes[key]) + raw)
    return stream.getvalue()


def write_state_dict_legacy(path, tensors: dict[str, np.ndarray]) -> None:
    data_pkl, records = state_dict_pickle(tensors)
    itemsizes = {str(i): np.asarray(v).itemsize for i, v in enumerate(tensors.values())}
    with open(path, "wb") as handle:
        handle.write(legacy_bytes(data_pkl, records, itemsizes))
