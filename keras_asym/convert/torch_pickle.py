"""Read PyTorch ``.pth`` state_dicts into NumPy without importing torch, and without trusting them.

A ``.pth`` file is a pickle, and a pickle is a program: Python's own unpickler
calls whatever the file names and lets a few bytes allocate gigabytes (a
memo index of 2**31, a declared length, a storage that inflates to 6 GiB). So
this module does not use it. ``_StateDictVM`` is a small pickle interpreter
that knows only the opcodes a state_dict needs, builds only plain containers
and inert tensor records, and admits only the handful of globals torch writes
(``collections.OrderedDict``, the tensor-rebuild functions, the storage
types). Nothing a file names is ever called.

Tensor bytes are read last and lazily: a tensor's geometry is checked against
its storage, the storage against the real size of its zip entry or of the
rest of the file, and every byte against a budget (``max_bytes``), all before
a byte is allocated. Every failure is an ``UnsafeCheckpointError`` or a
``CheckpointFormatError`` whose message names the file and the problem.

Both formats are read: the zip archive of torch >= 1.6 (``<name>/data.pkl`` +
``<name>/data/<key>``) and the legacy stream of older torch (magic number,
protocol, system info, the object pickle, the storage keys, then each
storage's element count and bytes).
"""

from __future__ import annotations

import contextlib
import math
import reprlib
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
DEFAULT_MAX_BYTES = 2 << 30  # tensor bytes materialised per file unless the caller says otherwise
MAX_PICKLE_BYTES = 16 << 20  # a state_dict's object pickle is kilobytes; torch's largest models stay under this
MAX_OBJECTS = 1 << 20  # containers, strings and numbers a pickle may build
MAX_DIMS = 16
MAX_NAME = 256  # characters of a global's module or name
MAX_INT_BYTES = 64  # LONG1/LONG4 payloads; the legacy magic number needs 10
MAX_DEFLATE_RATIO = 1100  # deflate cannot legitimately exceed ~1032:1

_STORAGE_DTYPES = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _BoundedRepr(reprlib.Repr):
    """``reprlib`` with bytes cut too: a value from the file is never rendered whole (a tuple that shares itself
    at every level has a repr that doubles per level)."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxtuple, self.maxlist, self.maxdict = 3, 4, 4, 4
        self.maxstring, self.maxlong, self.maxother = 60, 40, 60

    def repr_bytes(self, value, level):
        return repr(value[: self.maxstring]) + ("..." if len(value) > self.maxstring else "")


_REPR = _BoundedRepr()


def _brief(value, limit: int = 80) -> str:
    """A bounded ``repr`` of a value taken from the file: an error message stays one short line."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class UnsafeCheckpointError(ValueError):
    """The checkpoint asks for something a plain state_dict never needs; nothing was executed."""


class CheckpointFormatError(ValueError):
    """The file is not a readable PyTorch checkpoint, or exceeds a safety bound."""


class _StorageType:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    @property
    def itemsize(self) -> int:
        return 2 if self.name == "BFloat16Storage" else np.dtype(_STORAGE_DTYPES[self.name]).itemsize


class _Storage:
    """A storage declared by a persistent id: type and element count; its bytes come from ``reader``."""

    __slots__ = ("storage_type", "numel", "key", "reader")

    def __init__(self, storage_type: _StorageType, numel: int, key: str):
        self.storage_type, self.numel, self.key = storage_type, numel, key
        self.reader = None  # callable(nbytes) -> bytes, set by the format loader

    @property
    def nbytes(self) -> int:
        return self.numel * self.storage_type.itemsize


class _Tensor:
    """An inert record of ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _OrderedDict(dict):
    """What ``collections.OrderedDict(...)`` builds here; a BUILD may set its ``_metadata`` (ignored)."""


def _rebuild_tensor(where, args):
    if len(args) < 4:
        raise CheckpointFormatError(f"{where}: tensor record with {len(args)} arguments, expected at least 4.")
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, _Storage):
        raise CheckpointFormatError(f"{where}: tensor is not backed by a storage.")
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(where, args):
    if not args or not isinstance(args[0], _Tensor):
        raise CheckpointFormatError(f"{where}: parameter record without a tensor.")
    return args[0]


def _ordered_dict(where, args):
    if not args:
        return _OrderedDict()
    if len(args) == 1 and isinstance(args[0], list) and all(isinstance(p, tuple) and len(p) == 2 for p in args[0]):
        out = _OrderedDict()
        for key, value in args[0]:
            out[_dict_key(where, key)] = value
        return out
    raise CheckpointFormatError(f"{where}: OrderedDict built from unexpected arguments.")


_GLOBALS = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


def _dict_key(where, key):
    if not isinstance(key, (str, int)) or isinstance(key, bool):
        raise CheckpointFormatError(f"{where}: dictionary key of type {type(key).__name__}; a state_dict has string keys.")
    return key


class _Mark:
    __slots__ = ()


_MARK = _Mark()


class _Source:
    """Bounded reads from a byte buffer or a file: never more than what is really there."""

    def __init__(self, where: str, data: bytes | None = None, handle=None, size: int = 0):
        self.where, self.data, self.handle = where, data, handle
        self.size = len(data) if data is not None else size
        self.pos = 0

    def remaining(self) -> int:
        return self.size - self.pos

    def read(self, n: int, what: str = "pickle") -> bytes:
        if n < 0 or n > self.remaining():
            raise CheckpointFormatError(f"{self.where}: truncated: {what} needs {n} bytes at offset {self.pos}, {self.remaining()} remain.")
        if self.data is not None:
            out = self.data[self.pos : self.pos + n]
        else:
            self.handle.seek(self.pos)
            out = self.handle.read(n)
            if len(out) != n:
                raise CheckpointFormatError(f"{self.where}: truncated: the file ended inside {what}.")
        self.pos += n
        return out

    def readline(self, limit: int) -> bytes:
        chunk = self.data[self.pos : self.pos + limit + 1] if self.data is not None else self._peek(limit + 1)
        end = chunk.find(b"\n")
        if end < 0:
            raise CheckpointFormatError(f"{self.where}: global name longer than {limit} bytes or unterminated at offset {self.pos}.")
        self.pos += end + 1
        return chunk[:end]

    def _peek(self, n: int) -> bytes:
        self.handle.seek(self.pos)
        return self.handle.read(min(n, self.remaining()))


class _StateDictVM:
    """Runs one pickle with the opcodes of protocols 2-5 that state_dicts use; everything else is refused."""

    def __init__(self, source: _Source, persistent_load):
        self.source, self.where = source, source.where
        self.persistent_load = persistent_load
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.objects = 0

    def _fail(self, message: str):
        raise CheckpointFormatError(f"{self.where}: {message} (pickle offset {self.source.pos}).")

    def _count(self, obj):
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            self._fail(f"more than {MAX_OBJECTS} objects in the pickle")
        return obj

    def _pop(self):
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            self._fail("pickle stack underflow")
        return self.stack.pop()

    def _pop_mark(self) -> list:
        if not self.marks:
            self._fail("pickle has no MARK to close")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _top(self):
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            self._fail("pickle stack underflow")
        return self.stack[-1]

    def _unpack(self, fmt: str):
        return struct.unpack(fmt, self.source.read(struct.calcsize(fmt)))[0]

    def _text(self, n: int) -> str:
        raw = self.source.read(n, "a string")
        try:
            return self._count(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self._fail("string is not UTF-8")

    def _long(self, n: int) -> int:
        if n > MAX_INT_BYTES:
            self._fail(f"integer of {n} bytes")
        return int.from_bytes(self.source.read(n), "little", signed=True)

    def _global(self, module: str, name: str):
        factory = _GLOBALS.get((module, name))
        if factory is not None:
            return factory
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self.where}: refusing to load global {_brief(f'{module}.{name}')}: a state_dict needs only tensors and plain containers "
            "(the file may be malicious, or not a state_dict)."
        )

    def _set_items(self, target, items):
        if not isinstance(target, dict) or len(items) % 2:
            self._fail("SETITEMS on something that is not a dictionary")
        for i in range(0, len(items), 2):
            target[_dict_key(self.where, items[i])] = items[i + 1]

    def _append(self, target, items):
        if not isinstance(target, list):
            self._fail("APPENDS on something that is not a list")
        target.extend(items)

    def run(self):
        src, stack, memo = self.source, self.stack, self.memo
        start = src.pos  # the legacy format has no container that bounds a pickle's size: this loop does
        while True:
            if src.pos - start > MAX_PICKLE_BYTES:
                self._fail(f"object pickle longer than {MAX_PICKLE_BYTES:,} bytes")
            if len(stack) + len(self.marks) > MAX_OBJECTS:
                self._fail(f"more than {MAX_OBJECTS} items on the pickle stack")
            op = src.read(1, "an opcode")
            if op == b".":  # STOP
                if len(stack) != 1 or self.marks:
                    self._fail("pickle ends with an unbalanced stack")
                return stack[0]
            if op == b"\x80":  # PROTO
                if src.read(1)[0] > 5:
                    self._fail("unknown pickle protocol")
            elif op == b"\x95":  # FRAME: a length hint, checked and otherwise ignored
                if self._unpack("<Q") > src.remaining():
                    self._fail("frame longer than the data")
            elif op == b"(":
                self.marks.append(len(stack))
            elif op == b"0":
                self._pop()
            elif op == b"1":
                self._pop_mark()
            elif op == b"2":
                stack.append(self._top())
            elif op == b"N":
                stack.append(None)
            elif op == b"\x88":
                stack.append(True)
            elif op == b"\x89":
                stack.append(False)
            elif op == b"J":
                stack.append(self._unpack("<i"))
            elif op == b"K":
                stack.append(src.read(1)[0])
            elif op == b"M":
                stack.append(self._unpack("<H"))
            elif op == b"\x8a":
                stack.append(self._long(src.read(1)[0]))
            elif op == b"\x8b":
                stack.append(self._long(self._unpack("<i")))
            elif op == b"G":
                stack.append(self._unpack(">d"))
            elif op == b"X":
                stack.append(self._text(self._unpack("<I")))
            elif op == b"\x8c":
                stack.append(self._text(src.read(1)[0]))
            elif op == b"\x8d":
                stack.append(self._text(self._unpack("<Q")))
            elif op in (b"T", b"U"):  # Python 2 str in legacy checkpoints
                stack.append(self._text(self._unpack("<i") if op == b"T" else src.read(1)[0]))
            elif op in (b"B", b"C"):
                stack.append(self._count(src.read(self._unpack("<I") if op == b"B" else src.read(1)[0], "bytes")))
            elif op == b")":
                stack.append(())
            elif op == b"t":
                stack.append(self._count(tuple(self._pop_mark())))
            elif op in (b"\x85", b"\x86", b"\x87"):
                n = op[0] - 0x84
                items = [self._pop() for _ in range(n)][::-1]
                stack.append(self._count(tuple(items)))
            elif op == b"]":
                stack.append(self._count([]))
            elif op == b"l":
                stack.append(self._count(self._pop_mark()))
            elif op == b"a":
                item = self._pop()
                self._append(self._top(), [item])
            elif op == b"e":
                items = self._pop_mark()
                self._append(self._top(), items)
            elif op == b"}":
                stack.append(self._count({}))
            elif op == b"d":
                out = self._count({})
                self._set_items(out, self._pop_mark())
                stack.append(out)
            elif op == b"s":
                value, key = self._pop(), self._pop()
                self._set_items(self._top(), [key, value])
            elif op == b"u":
                items = self._pop_mark()
                self._set_items(self._top(), items)
            elif op == b"c":  # GLOBAL
                module = src.readline(MAX_NAME).decode("ascii", "replace")
                name = src.readline(MAX_NAME).decode("ascii", "replace")
                stack.append(self._global(module, name))
            elif op == b"\x93":  # STACK_GLOBAL
                name, module = self._pop(), self._pop()
                if not (isinstance(module, str) and isinstance(name, str)):
                    self._fail("STACK_GLOBAL with non-string names")
                stack.append(self._global(module, name))
            elif op == b"R":  # REDUCE: only the admitted factories, with a tuple of arguments
                args, factory = self._pop(), self._pop()
                if not (callable(factory) and factory in _GLOBALS.values() and isinstance(args, tuple)):
                    self._fail("REDUCE of something that is not an admitted tensor or OrderedDict factory")
                stack.append(self._count(factory(self.where, args)))
            elif op == b"b":  # BUILD: only the OrderedDict _metadata that torch attaches
                state = self._pop()
                target = self._top()
                if not isinstance(target, _OrderedDict):
                    raise UnsafeCheckpointError(
                        f"{self.where}: refusing BUILD on a {type(target).__name__.lstrip('_')}: only an OrderedDict's metadata may be set."
                    )
                if not isinstance(state, dict):
                    self._fail("BUILD state of an OrderedDict is not a dictionary")
            elif op == b"Q":  # BINPERSID
                stack.append(self._count(self.persistent_load(self._pop())))
            elif op in (b"q", b"r"):
                memo[src.read(1)[0] if op == b"q" else self._unpack("<I")] = self._top()
            elif op == b"\x94":  # MEMOIZE
                memo[len(memo)] = self._top()
            elif op in (b"h", b"j"):
                index = src.read(1)[0] if op == b"h" else self._unpack("<I")
                if index not in memo:
                    self._fail(f"memo entry {index} read before it was written")
                stack.append(memo[index])
            else:
                self._fail(f"pickle opcode {op!r} is not allowed in a state_dict")


def _storage_from_pid(where: str, pid, storages: dict) -> _Storage:
    """``('storage', storage_type, key, location, numel[, view])`` -> one ``_Storage`` per key."""
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
        raise UnsafeCheckpointError(f"{where}: unexpected persistent id (not a storage record).")
    _, storage_type, key, _location, numel = pid[:5]
    if len(pid) == 6 and pid[5] is not None:
        raise CheckpointFormatError(f"{where}: legacy storage views are not supported.")
    if not isinstance(key, str) or not 0 < len(key) <= 64:
        raise CheckpointFormatError(f"{where}: storage key {_brief(key)} is not a short string.")
    if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
        raise CheckpointFormatError(f"{where}: storage {key!r} declares {_brief(numel)} elements.")
    known = storages.get(key)
    if known is None:
        known = storages[key] = _Storage(storage_type, numel, key)
    elif known.storage_type.name != storage_type.name or known.numel != numel:
        raise CheckpointFormatError(f"{where}: storage {key!r} is declared twice with different types or sizes.")
    return known


class _Budget:
    """Bytes that may still be allocated for this file's tensors."""

    def __init__(self, where: str, max_bytes: int):
        self.where, self.left, self.max_bytes = where, int(max_bytes), int(max_bytes)

    def take(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise CheckpointFormatError(
                f"{self.where}: {what} needs {nbytes:,} bytes, beyond the {self.max_bytes:,}-byte limit for this file "
                "(raise it only for a file you trust to be that large)."
            )
        self.left -= nbytes


def _dtype(storage_type: _StorageType, big_endian: bool):
    code = _STORAGE_DTYPES[storage_type.name]
    if code == "bf16":
        return np.dtype(">u2" if big_endian else "<u2")
    return np.dtype(code).newbyteorder(">" if big_endian else "<")


def _materialize(where: str, name, tensor: _Tensor, arrays: dict, budget: _Budget, big_endian: bool) -> np.ndarray:
    """A C-contiguous copy of one tensor view, its geometry checked against its storage first."""
    offset, size, stride, storage = tensor.offset, tensor.size, tensor.stride, tensor.storage
    label = f"tensor {_brief(name)}"
    ok = (
        isinstance(offset, int)
        and not isinstance(offset, bool)
        and offset >= 0
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride) <= MAX_DIMS
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size + stride)
    )
    if not ok:
        raise CheckpointFormatError(
            f"{where}: {label} has invalid geometry offset={_brief(offset)} size={_brief(size)} stride={_brief(stride)}."
        )
    numel = math.prod(size)
    if numel:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.numel:
            raise CheckpointFormatError(f"{where}: {label} reaches element {last} of a {storage.numel}-element storage.")
    budget.take(numel * storage.storage_type.itemsize, label)
    dtype = _dtype(storage.storage_type, big_endian)
    if not numel:
        out = np.zeros(size, dtype=dtype)
    else:
        if storage.key not in arrays:
            budget.take(storage.nbytes, f"storage {storage.key!r}")
            arrays[storage.key] = np.frombuffer(storage.reader(storage.nbytes), dtype=dtype)
        flat = arrays[storage.key]
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(s * dtype.itemsize for s in stride), writeable=False
        )
        out = np.array(view, copy=True)
    if storage.storage_type.name == "BFloat16Storage":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out.astype(out.dtype.newbyteorder("="), copy=False)


def _state_dict(where: str, obj) -> dict:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{where}: holds a {type(obj).__name__.lstrip('_')}, not a state_dict.")
    bad = [k for k, v in obj.items() if not isinstance(v, _Tensor)]
    if bad:
        raise CheckpointFormatError(f"{where}: entries {_brief(bad[:4])} are not tensors.")
    return obj


def _check_zip_entry(where: str, info: zipfile.ZipInfo, needed: int | None, limit: int | None = None) -> None:
    if info.flag_bits & 0x1:
        raise CheckpointFormatError(f"{where}: entry {_brief(info.filename)} is encrypted.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CheckpointFormatError(
            f"{where}: entry {_brief(info.filename)} uses compression method {info.compress_type}; torch writes stored entries."
        )
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1):
        raise CheckpointFormatError(
            f"{where}: entry {_brief(info.filename)} would inflate {info.file_size / max(info.compress_size, 1):.0f}:1 (a zip bomb?)."
        )
    if needed is not None and info.file_size < needed:
        raise CheckpointFormatError(f"{where}: entry {_brief(info.filename)} holds {info.file_size} bytes, its storage needs {needed}.")
    if limit is not None and info.file_size > limit:
        raise CheckpointFormatError(
            f"{where}: entry {_brief(info.filename)} declares {info.file_size:,} bytes, over the {limit:,}-byte limit."
        )


def _bounded_reader(where: str, what: str, open_at):
    """``read(nbytes)``: exactly ``nbytes`` from the stream ``open_at(nbytes)`` returns, or the module's error."""

    def read(nbytes: int) -> bytes:
        with open_at(nbytes) as stream:
            raw = stream.read(nbytes)
        if len(raw) != nbytes:
            raise CheckpointFormatError(f"{where}: {what} ended after {len(raw)} of {nbytes} bytes.")
        return raw

    return read


def _load_zip(where: str, archive: zipfile.ZipFile, budget: _Budget, big_endian_out: list) -> dict:
    infos = {info.filename: info for info in archive.infolist()}
    if len(infos) != len(archive.infolist()):  # which copy would be read is the zip reader's choice: refuse, as torch does
        seen: set[str] = set()
        twice = next(i.filename for i in archive.infolist() if i.filename in seen or seen.add(i.filename))
        raise CheckpointFormatError(f"{where}: entry {_brief(twice)} appears twice in the archive.")
    pickles = [n for n in infos if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointFormatError(f"{where}: zip checkpoint without exactly one data.pkl.")
    prefix = pickles[0][: -len("data.pkl")]
    order = infos.get(prefix + "byteorder")
    if order is not None:
        _check_zip_entry(where, order, None, limit=16)
        value = archive.read(order).strip()
        if value not in (b"little", b"big"):
            raise CheckpointFormatError(f"{where}: unknown byte order {_brief(value[:16])}.")
        big_endian_out.append(value == b"big")
    _check_zip_entry(where, infos[pickles[0]], None, limit=MAX_PICKLE_BYTES)
    storages: dict[str, _Storage] = {}
    obj = _StateDictVM(_Source(where, data=archive.read(pickles[0])), lambda pid: _storage_from_pid(where, pid, storages)).run()
    for key, storage in storages.items():
        info = infos.get(f"{prefix}data/{key}")
        if info is None:
            raise CheckpointFormatError(f"{where}: missing storage record {_brief(prefix + 'data/' + key)}.")

        def open_entry(nbytes, info=info):
            _check_zip_entry(where, info, nbytes)
            return archive.open(info)

        storage.reader = _bounded_reader(where, f"entry {_brief(info.filename)}", open_entry)
    return obj


def _load_legacy(where: str, handle, size: int) -> dict:
    source = _Source(where, handle=handle, size=size)

    def header():
        return _StateDictVM(source, _refuse_storage(where)).run()

    if header() != LEGACY_MAGIC:
        raise CheckpointFormatError(f"{where}: not a PyTorch checkpoint (bad magic number).")
    if header() != LEGACY_PROTOCOL:
        raise CheckpointFormatError(f"{where}: unsupported legacy protocol version.")
    info = header()
    if not isinstance(info, dict) or info.get("little_endian", True) is not True:
        raise CheckpointFormatError(f"{where}: big-endian legacy checkpoints are not supported.")
    storages: dict[str, _Storage] = {}
    obj = _StateDictVM(source, lambda pid: _storage_from_pid(where, pid, storages)).run()
    keys = header()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise CheckpointFormatError(f"{where}: missing or malformed storage key list.")
    if set(keys) != set(storages):
        raise CheckpointFormatError(f"{where}: the storage key list does not match the storages the tensors use.")
    for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack("<q", source.read(8, f"the size of storage {key!r}"))
        if numel != storage.numel:
            raise CheckpointFormatError(f"{where}: storage {key!r} has {numel} elements, expected {storage.numel}.")
        start = source.pos
        if storage.nbytes > source.remaining():
            raise CheckpointFormatError(
                f"{where}: truncated inside storage {key!r} ({storage.nbytes} bytes declared, {source.remaining()} remain)."
            )
        source.pos += storage.nbytes

        def at_storage(nbytes, start=start):
            handle.seek(start)
            return contextlib.nullcontext(handle)

        storage.reader = _bounded_reader(where, f"storage {key!r}", at_storage)
    return obj


def _refuse_storage(where):
    def refuse(pid):
        raise UnsafeCheckpointError(f"{where}: unexpected storage in a header record.")

    return refuse


def load_torch_file(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, np.ndarray]:
    """Returns the state_dict in ``path`` as ``{name: np.ndarray}`` (PyTorch layout, native byte order).

    ``max_bytes`` bounds the tensor and storage bytes allocated for this file;
    callers that know the network's shapes pass what it needs. Raises
    ``UnsafeCheckpointError`` for anything beyond tensors and plain containers,
    ``CheckpointFormatError`` for damaged, foreign or oversized files,
    ``FileNotFoundError`` when it is missing.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file.")
    budget = _Budget(where, max_bytes)
    big_endian: list[bool] = []
    try:
        with path.open("rb") as handle:
            if zipfile.is_zipfile(handle):
                with zipfile.ZipFile(handle) as archive:
                    obj = _load_zip(where, archive, budget, big_endian)
                    state = _state_dict(where, obj)
                    arrays: dict[str, np.ndarray] = {}
                    return {k: _materialize(where, k, t, arrays, budget, bool(big_endian and big_endian[0])) for k, t in state.items()}
            obj = _load_legacy(where, handle, path.stat().st_size)
            state = _state_dict(where, obj)
            arrays = {}
            return {k: _materialize(where, k, t, arrays, budget, False) for k, t in state.items()}
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        struct.error,
        EOFError,
        ValueError,
        OverflowError,
        NotImplementedError,
        RecursionError,
        OSError,
    ) as err:
        raise CheckpointFormatError(f"{where}: damaged or not a PyTorch checkpoint ({type(err).__name__}: {err}).") from err
    except MemoryError as err:  # a last line of defence: the budget should have stopped it first
        raise CheckpointFormatError(f"{where}: out of memory while reading the checkpoint.") from err
