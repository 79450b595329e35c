"""Reading .pth files without torch: both formats, and hostile files refused unexecuted."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile

import numpy as np
import pytest

from keras_asym.convert.torch_pickle import CheckpointFormatError, UnsafeCheckpointError, load_torch_file


def _hostile_pickle(module: str, name: str, argument: str) -> bytes:
    """``module.name(argument)`` as pickle opcodes (protocol 2)."""
    arg = argument.encode()
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X" + struct.pack("<I", len(arg)) + arg + b"\x85R."


def _zip_checkpoint(path, data_pkl: bytes, records=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/version", "3\n")
        for key, raw in (records or {}).items():
            archive.writestr(f"archive/data/{key}", raw)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_official_files_match_the_manifest(official, fmt):
    name = "latest_net_G_A.pth" if fmt == "zip" else "latest_net_G_A.legacy.pth"
    state = load_torch_file(official.root / "weights" / name)
    reference = official.state_dict("G_A")
    assert list(state) == list(reference)
    for key, value in reference.items():
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], value)


def test_every_official_network_file_loads(official):
    for net in ("G_B", "D_A", "D_B", "D_A_l", "D_A_le", "D_A_ll"):
        state = load_torch_file(official.root / "weights" / f"latest_net_{net}.pth")
        reference = official.state_dict(net)
        assert sorted(state) == sorted(reference)
        np.testing.assert_array_equal(state[next(iter(reference))], next(iter(reference.values())))


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "eval"), ("subprocess", "call"), ("torch", "load")])
def test_hostile_zip_is_refused_and_nothing_runs(tmp_path, module, name):
    marker = tmp_path / "pwned"
    argument = f"open({str(marker)!r}, 'w')" if name == "eval" else f"touch {marker}"
    path = tmp_path / "evil.pth"
    _zip_checkpoint(path, _hostile_pickle(module, name, argument))
    with pytest.raises(UnsafeCheckpointError, match=f"{module}.{name}"):
        load_torch_file(path)
    assert not marker.exists()


def test_hostile_global_inside_a_state_dict_is_refused(tmp_path, official):
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(official.root / "weights" / "latest_net_D_B.pth") as archive:
        names = archive.namelist()
        prefix = next(n for n in names if n.endswith("data.pkl"))[: -len("data.pkl")]
        records = {n[len(prefix) + 5 :]: archive.read(n) for n in names if n.startswith(prefix + "data/")}
        original = archive.read(prefix + "data.pkl")
    # Append a second entry whose value is os.system(...): splice before the final SETITEMS/STOP.
    evil = _hostile_pickle("os", "system", f"touch {marker}")[2:-1]
    spliced = original[:-2] + b"X" + struct.pack("<I", 4) + b"evil" + evil + original[-2:]
    path = tmp_path / "spliced.pth"
    _zip_checkpoint(path, spliced, records)
    with pytest.raises(UnsafeCheckpointError, match="os.system"):
        load_torch_file(path)
    assert not marker.exists()


def test_hostile_legacy_stream_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    stream = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, stream, protocol=2)
    stream.write(_hostile_pickle("posix", "system", f"touch {marker}"))
    path = tmp_path / "legacy.pth"
    path.write_bytes(stream.getvalue())
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        load_torch_file(path)
    assert not marker.exists()


def test_out_of_bounds_tensor_view_is_rejected(tmp_path, official):
    with zipfile.ZipFile(official.root / "weights" / "latest_net_D_B.pth") as archive:
        names = archive.namelist()
        prefix = next(n for n in names if n.endswith("data.pkl"))[: -len("data.pkl")]
        records = {n[len(prefix) + 5 :]: archive.read(n) for n in names if n.startswith(prefix + "data/")}
        original = archive.read(prefix + "data.pkl")
    # model.0.bias is an 8-element view: claim a stride that walks past its storage.
    forged = original.replace(b"K\x08\x85q\x11K\x01\x85", b"K\x08\x85q\x11K\x09\x85", 1)
    assert forged != original
    path = tmp_path / "forged.pth"
    _zip_checkpoint(path, forged, records)
    with pytest.raises(CheckpointFormatError, match="reaches element"):
        load_torch_file(path)


def test_damaged_and_foreign_files(tmp_path, official):
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(CheckpointFormatError, match="notes.pth"):
        load_torch_file(text)
    legacy = (official.root / "weights" / "latest_net_G_A.legacy.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(legacy[: len(legacy) - 1000])
    with pytest.raises(CheckpointFormatError, match="truncated"):
        load_torch_file(cut)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_torch_file(tmp_path / "missing.pth")
