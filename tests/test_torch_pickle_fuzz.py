"""Property tests of the .pth reader: any file decodes exactly as a reference decoder does, or is refused, in bounded memory.

The reference is Python's own pure-Python unpickler with stand-ins for the
torch globals, and a plain NumPy view of the raw storage bytes: an independent
decoding, run only where ours succeeded. ``KERAS_ASYM_FUZZ_EXAMPLES`` raises
the number of cases per property (default 100, three properties).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import tracemalloc
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_asym.convert.torch_pickle import CheckpointFormatError, UnsafeCheckpointError, load_torch_file
from tests.torch_writer import legacy_bytes, state_dict_pickle, write_zip

EXAMPLES = int(os.environ.get("KERAS_ASYM_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MEMORY_BOUND = 64 << 20  # bytes any load of these (< 100 kB) files may allocate at its peak
DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "BFloat16Storage": "<u2",
}

BASE = {
    "conv.weight": np.arange(12, dtype=np.float32).reshape(2, 2, 3) / 7,
    "conv.bias": np.array([1.5, -2.25], np.float64),
    "norm.num_batches_tracked": np.array(3, np.int64),
    "head.weight": np.arange(6, dtype=np.uint8).reshape(3, 2),
}
BASE_PKL, BASE_RECORDS = state_dict_pickle(BASE)
ITEMSIZES = {str(i): v.itemsize for i, v in enumerate(BASE.values())}


# --- the reference decoder -------------------------------------------------------------------------------


class _RefUnpickler(pickle._Unpickler):  # the pure-Python implementation, independent of ours
    def __init__(self, stream, storages: dict):
        super().__init__(stream)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *rest: ("tensor", storage, offset, size, stride)
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, *rest: data
        if module == "torch" and name in DTYPES:
            return ("type", name)
        raise pickle.UnpicklingError(f"refused {module}.{name}")

    def persistent_load(self, pid):
        return self.storages.setdefault(pid[2], ("storage", pid[1][1], pid[2], pid[4]))


def _ref_tensor(value, raw_of) -> np.ndarray:
    _, (_, type_name, key, numel), offset, size, stride = value
    flat = np.frombuffer(raw_of(key)[: numel * np.dtype(DTYPES[type_name]).itemsize], dtype=DTYPES[type_name])
    if not int(np.prod(size)):
        out = np.zeros(size, flat.dtype)
    else:
        out = np.array(np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * flat.itemsize for s in stride]))
    if type_name == "BFloat16Storage":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out.astype(out.dtype.newbyteorder("="))


def _ref_state(obj, raw_of) -> dict:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    return {k: _ref_tensor(v, raw_of) for k, v in obj.items()}


def reference_zip(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        prefix = name[: -len("data.pkl")]
        obj = _RefUnpickler(io.BytesIO(archive.read(name)), {}).load()
        return _ref_state(obj, lambda key: archive.read(f"{prefix}data/{key}"))


def reference_legacy(path) -> dict:
    stream = io.BytesIO(open(path, "rb").read())
    for _ in range(3):
        pickle._Unpickler(stream).load()
    storages: dict = {}
    obj = _RefUnpickler(stream, storages).load()
    keys = pickle._Unpickler(stream).load()
    raw = {}
    for key in keys:
        (numel,) = struct.unpack("<q", stream.read(8))
        raw[key] = stream.read(numel * np.dtype(DTYPES[storages[key][1]]).itemsize)
    return _ref_state(obj, raw.__getitem__)


# --- the property ----------------------------------------------------------------------------------------


def _check(path, reference) -> None:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        ours = load_torch_file(path)
    except (UnsafeCheckpointError, CheckpointFormatError) as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= MEMORY_BOUND, f"{peak / 2**20:.0f} MiB allocated"
    expected = reference(path)
    assert list(ours) == list(expected)
    for key in ours:
        assert ours[key].dtype == expected[key].dtype and ours[key].shape == expected[key].shape, key
        assert ours[key].tobytes() == expected[key].tobytes(), key


def _mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, position, value in edits:
        if not out:
            break
        at = position % len(out)
        if kind == "flip":
            out[at] ^= 1 << (value % 8)
        elif kind == "set":
            out[at] = value % 256
        elif kind == "insert":
            out[at:at] = bytes([value % 256])
        elif kind == "delete":
            del out[at]
        else:  # an int32 written over 4 bytes: sizes, lengths, memo indices
            out[at : at + 4] = struct.pack("<i", value)
    return bytes(out)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "int32"]), st.integers(0, 1 << 20), st.integers(-(1 << 31), (1 << 31) - 1)
    ),
    min_size=1,
    max_size=4,
)


def test_the_unmutated_files_match_the_reference(tmp_path):
    zipped, legacy = tmp_path / "a.pth", tmp_path / "b.pth"
    write_zip(zipped, BASE_PKL, BASE_RECORDS)
    legacy.write_bytes(legacy_bytes(BASE_PKL, BASE_RECORDS, ITEMSIZES))
    for path, reference in ((zipped, reference_zip), (legacy, reference_legacy)):
        ours = load_torch_file(path)
        assert list(ours) == list(BASE)
        for key, value in BASE.items():
            np.testing.assert_array_equal(ours[key], value)
            assert ours[key].dtype == value.dtype
        _check(path, reference)


@FUZZ
@given(target=st.sampled_from(["pickle", "storage", "archive"]), edits=EDITS, deflated=st.booleans())
def test_mutated_zip_checkpoints_decode_as_the_reference_or_are_refused(tmp_path_factory, target, edits, deflated):
    path = tmp_path_factory.mktemp("zip") / "m.pth"
    records = dict(BASE_RECORDS)
    data_pkl = BASE_PKL
    if target == "pickle":
        data_pkl = _mutate(data_pkl, edits)
    elif target == "storage":
        records["0"] = _mutate(records["0"], edits)
    write_zip(path, data_pkl, records, zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED)
    if target == "archive":
        path.write_bytes(_mutate(path.read_bytes(), edits))
    _check(path, reference_zip)


@FUZZ
@given(edits=EDITS)
def test_mutated_legacy_checkpoints_decode_as_the_reference_or_are_refused(tmp_path_factory, edits):
    path = tmp_path_factory.mktemp("legacy") / "m.pth"
    path.write_bytes(_mutate(legacy_bytes(BASE_PKL, BASE_RECORDS, ITEMSIZES), edits))
    _check(path, reference_legacy)


def _opcode():
    text = st.text(max_size=6).map(lambda t: t.encode())
    number = st.one_of(st.integers(-3, 300), st.integers(-(1 << 31), (1 << 31) - 1))
    names = st.sampled_from(
        [
            ("collections", "OrderedDict"),
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch._utils", "_rebuild_parameter"),
            ("torch", "FloatStorage"),
            ("torch", "LongStorage"),
            ("os", "system"),
            ("builtins", "getattr"),
            ("torch", "load"),
            ("numpy", "frombuffer"),
        ]
    )
    return st.one_of(
        st.sampled_from(
            [
                b"(",
                b"}",
                b"]",
                b")",
                b"N",
                b"\x88",
                b"\x89",
                b"t",
                b"\x85",
                b"\x86",
                b"\x87",
                b"s",
                b"u",
                b"a",
                b"e",
                b"R",
                b"b",
                b"Q",
                b"0",
                b"1",
                b"2",
                b"l",
                b"d",
                b"\x94",
                b"\x93",
            ]
        ),
        number.map(lambda n: b"J" + struct.pack("<i", n)),
        st.integers(0, 255).map(lambda n: b"K" + bytes([n])),
        text.map(lambda t: b"X" + struct.pack("<I", len(t)) + t),
        st.sampled_from([b"storage", b"0", b"1", b"cpu", b"w"]).map(lambda t: b"X" + struct.pack("<I", len(t)) + t),
        names.map(lambda mn: b"c" + f"{mn[0]}\n{mn[1]}\n".encode()),
        st.integers(0, 1 << 32).map(lambda n: b"X" + struct.pack("<I", n % (1 << 32))),  # a length longer than the data
        st.integers(0, (1 << 32) - 1).map(lambda n: b"r" + struct.pack("<I", n)),
        st.integers(0, (1 << 32) - 1).map(lambda n: b"j" + struct.pack("<I", n)),
        st.integers(0, 255).map(lambda n: b"q" + bytes([n])),
        st.integers(0, 255).map(lambda n: b"h" + bytes([n])),
        st.integers(0, 1 << 62).map(lambda n: b"\x95" + struct.pack("<Q", n)),
        st.integers(0, 1 << 31).map(lambda n: b"\x8b" + struct.pack("<i", n % (1 << 31))),
        st.binary(max_size=3),
    )


@FUZZ
@given(ops=st.lists(_opcode(), max_size=40), stop=st.booleans())
def test_random_opcode_streams_decode_as_the_reference_or_are_refused(tmp_path_factory, ops, stop):
    path = tmp_path_factory.mktemp("ops") / "r.pth"
    write_zip(path, b"\x80\x02" + b"".join(ops) + (b"." if stop else b""), BASE_RECORDS)
    _check(path, reference_zip)
