"""Read PyTorch ``.pth`` state_dicts into NumPy without importing torch, and without trusting them.

A ``.pth`` file is a pickle, and unpickling runs whatever callables the file
names. This reader admits only the handful of globals a state_dict needs
(``collections.OrderedDict``, the tensor-rebuild functions and the typed
storage classes), each replaced by our own NumPy stand-in, so no PyTorch (or
any other) code is ever called. Any other global, e.g. ``os.system`` or
``builtins.eval``, stops the load with ``UnsafeCheckpointError`` before it is
looked up.

Both serialization formats are supported: the zip archive of torch >= 1.6
(``<name>/data.pkl`` + ``<name>/data/<key>`` storages) and the legacy stream of
pre-1.6 checkpoints (magic number, protocol, system info, the object pickle,
the storage keys, then each storage's raw bytes).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_ELEMENTS = 1 << 34  # 16 G elements: far beyond any portrait model; guards forged sizes

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(ValueError):
    """The checkpoint names something a plain state_dict never needs; nothing was executed."""


class CheckpointFormatError(ValueError):
    """The file is not a readable PyTorch checkpoint."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage's elements as a flat NumPy array, filled now (zip) or later (legacy)."""

    def __init__(self, storage_type: _StorageType, numel: int):
        self.storage_type = storage_type
        self.numel = int(numel)
        self.array: np.ndarray | None = None

    def fill(self, raw: bytes, where: str) -> None:
        dtype = self.storage_type.dtype
        if dtype == "bfloat16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        else:
            values = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
        if values.size < self.numel:
            raise CheckpointFormatError(f"{where}: storage holds {values.size} elements, expected {self.numel}.")
        self.array = values[: self.numel]


class _PendingTensor:
    """A tensor view on a storage whose bytes may not have been read yet."""

    def __init__(self, storage: _Storage, offset: int, size, stride, where: str):
        if not isinstance(storage, _Storage):
            raise CheckpointFormatError(f"{where}: tensor is not backed by a storage.")
        size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        if len(size) != len(stride) or any(s < 0 for s in size + stride) or offset < 0:
            raise CheckpointFormatError(f"{where}: invalid tensor geometry size={size} stride={stride}.")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
        if last >= storage.numel:
            raise CheckpointFormatError(f"{where}: tensor view reaches element {last} of a {storage.numel}-element storage.")
        self.storage, self.offset, self.size, self.stride = storage, int(offset), size, stride

    def materialize(self) -> np.ndarray:
        flat = self.storage.array
        if not all(self.size):
            return np.zeros(self.size, dtype=flat.dtype)
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=tuple(s * item for s in self.stride), writeable=False
        )
        return np.array(view, copy=True)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, where: str, load_storage):
        super().__init__(file)
        self.where = where
        self.load_storage = load_storage

    def find_class(self, module, name):
        where = self.where
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):

            def rebuild(storage, offset, size, stride, *unused):
                return _PendingTensor(storage, offset, size, stride, where)

            return rebuild
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad=False, backward_hooks=None: data
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{where}: refusing to load global '{module}.{name}': a state_dict only needs tensors and "
            "plain containers (the file may be malicious, or not a state_dict)."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(f"{self.where}: unexpected persistent id {pid!r}.")
        return self.load_storage(pid)


def _materialize(obj):
    if isinstance(obj, _PendingTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for key, value in obj.items():
            out[key] = _materialize(value)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _check_numel(numel, where):
    if not isinstance(numel, int) or not 0 <= numel <= MAX_ELEMENTS:
        raise CheckpointFormatError(f"{where}: implausible storage size {numel!r}.")


def _load_zip(path: Path, archive: zipfile.ZipFile):
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointFormatError(f"{path}: zip checkpoint without exactly one data.pkl.")
    prefix = pickles[0][: -len("data.pkl")]
    cache: dict[str, _Storage] = {}

    def load_storage(pid):
        _, storage_type, key, _location, numel = pid[:5]
        _check_numel(numel, path)
        if key not in cache:
            name = f"{prefix}data/{key}"
            try:
                raw = archive.read(name)
            except KeyError as err:
                raise CheckpointFormatError(f"{path}: missing storage record {name!r}.") from err
            storage = _Storage(storage_type, numel)
            storage.fill(raw, f"{path}:{name}")
            cache[key] = storage
        return cache[key]

    with archive.open(pickles[0]) as handle:
        obj = _RestrictedUnpickler(io.BytesIO(handle.read()), str(path), load_storage).load()
    return _materialize(obj)


def _load_legacy(path: Path, handle):
    header_loader = lambda: _RestrictedUnpickler(handle, str(path), _no_storage(path)).load()  # noqa: E731
    if header_loader() != LEGACY_MAGIC:
        raise CheckpointFormatError(f"{path}: not a PyTorch checkpoint (bad magic number).")
    if header_loader() != LEGACY_PROTOCOL:
        raise CheckpointFormatError(f"{path}: unsupported legacy protocol version.")
    info = header_loader()
    if not isinstance(info, dict) or not info.get("little_endian", True):
        raise CheckpointFormatError(f"{path}: big-endian legacy checkpoints are not supported.")
    storages: dict[str, _Storage] = {}

    def load_storage(pid):
        _, storage_type, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        _check_numel(numel, path)
        if view is not None:
            raise CheckpointFormatError(f"{path}: storage views are not supported.")
        if key not in storages:
            storages[key] = _Storage(storage_type, numel)
        return storages[key]

    obj = _RestrictedUnpickler(handle, str(path), load_storage).load()
    keys = header_loader()
    if not isinstance(keys, list):
        raise CheckpointFormatError(f"{path}: missing storage key list.")
    for key in keys:
        if key not in storages:
            raise CheckpointFormatError(f"{path}: storage {key!r} listed but never used.")
        count = handle.read(8)
        if len(count) != 8:
            raise CheckpointFormatError(f"{path}: truncated before storage {key!r}.")
        (numel,) = struct.unpack("<q", count)
        storage = storages[key]
        if numel != storage.numel:
            raise CheckpointFormatError(f"{path}: storage {key!r} has {numel} elements, expected {storage.numel}.")
        itemsize = 2 if storage.storage_type.dtype == "bfloat16" else np.dtype(storage.storage_type.dtype).itemsize
        raw = handle.read(numel * itemsize)
        if len(raw) != numel * itemsize:
            raise CheckpointFormatError(f"{path}: truncated inside storage {key!r}.")
        storage.fill(raw, f"{path}:{key}")
    missing = [k for k, s in storages.items() if s.array is None]
    if missing:
        raise CheckpointFormatError(f"{path}: storages {missing[:4]} have no data.")
    return _materialize(obj)


def _no_storage(path):
    def refuse(pid):
        raise UnsafeCheckpointError(f"{path}: unexpected storage in a header record.")

    return refuse


def load_torch_file(path: str | Path) -> dict[str, np.ndarray]:
    """Returns the state_dict in ``path`` as ``{name: np.ndarray}`` (PyTorch layout).

    Raises ``UnsafeCheckpointError`` for any global beyond tensors and plain
    containers, ``CheckpointFormatError`` for damaged or foreign files,
    ``FileNotFoundError`` when it is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file.")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                obj = _load_zip(path, archive)
        else:
            with path.open("rb") as handle:
                obj = _load_legacy(path, handle)
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile, TypeError, ValueError, AttributeError, IndexError, KeyError) as err:
        raise CheckpointFormatError(f"{path}: damaged or not a PyTorch checkpoint ({err}).") from err
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{path}: holds a {type(obj).__name__}, not a state_dict.")
    bad = [k for k, v in obj.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise CheckpointFormatError(f"{path}: entries {bad[:4]} are not tensors.")
    return dict(obj)
