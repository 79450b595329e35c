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


# --- files built to hurt: each is refused with one line, before any large allocation ----------------------


def _tensor_pickle(storage_numel: int, size: tuple, stride: tuple, storage="FloatStorage", tail: bytes = b"") -> bytes:
    """An OrderedDict {"w": _rebuild_tensor_v2(storage, 0, size, stride, ...)} with ``tail`` opcodes before SETITEM."""

    def ints(values):
        return b"(" + b"".join(b"\x8a\x08" + struct.pack("<q", v) for v in values) + b"t"

    return (
        b"\x80\x02ccollections\nOrderedDict\n)R"
        + b"X\x01\x00\x00\x00w"
        + b"ctorch._utils\n_rebuild_tensor_v2\n("
        + b"(X\x07\x00\x00\x00storage"
        + f"ctorch\n{storage}\n".encode()
        + b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
        + b"\x8a\x08"
        + struct.pack("<q", storage_numel)
        + b"tQ"
        + b"K\x00"
        + ints(size)
        + ints(stride)
        + b"\x89ccollections\nOrderedDict\n)RtR"
        + tail
        + b"s."
    )


def _peak_while(call):
    import tracemalloc

    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_build_on_a_tensor_record_is_refused(tmp_path):
    """A BUILD after _rebuild_tensor_v2 could rewrite size/stride after the bounds check: it is never applied."""
    state = b"}(X\x04\x00\x00\x00sizeJ\x00\x00\x01\x00X\x06\x00\x00\x00strideJ\x00\x00\x01\x00ub"
    path = tmp_path / "build.pth"
    _zip_checkpoint(path, _tensor_pickle(1, (1,), (1,), tail=state), {"0": b"\0" * 4})
    with pytest.raises(UnsafeCheckpointError, match="refusing BUILD on a Tensor"):
        load_torch_file(path)


def test_a_stride_0_view_declaring_2_31_elements_is_refused_without_allocating_it(tmp_path):
    path = tmp_path / "stride0.pth"
    _zip_checkpoint(path, _tensor_pickle(1, (1 << 31,), (0,)), {"0": b"\0" * 4})
    with pytest.raises(CheckpointFormatError, match="stride0.pth: tensor 'w' needs 8,589,934,592 bytes, beyond"):
        assert _peak_while(lambda: load_torch_file(path)) < 16 << 20
    assert _peak_while(lambda: pytest.raises(CheckpointFormatError, load_torch_file, path)) < 16 << 20


def test_a_legacy_file_declaring_2_34_doubles_is_refused_in_bounded_memory(tmp_path):
    from tests.torch_writer import legacy_bytes

    path = tmp_path / "huge.pth"
    path.write_bytes(
        legacy_bytes(_tensor_pickle(1 << 34, (1 << 34,), (1,), storage="DoubleStorage"), {"0": b"\0" * 64}, {"0": 8}).replace(
            struct.pack("<q", 8), struct.pack("<q", 1 << 34), 1
        )
    )
    peak = _peak_while(lambda: pytest.raises(CheckpointFormatError, load_torch_file, path))
    assert peak < 16 << 20
    with pytest.raises(CheckpointFormatError, match="huge.pth: truncated inside storage '0'"):
        load_torch_file(path)


def test_a_deflate_bomb_is_refused_before_it_is_inflated(tmp_path):
    numel = 64 << 18  # 64 MiB of float32 zeros, about 64 kB deflated
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", _tensor_pickle(numel, (numel,), (1,)))
        archive.writestr("archive/data/0", b"\0" * (numel * 4))
    assert path.stat().st_size < 1 << 20
    peak = _peak_while(lambda: pytest.raises(CheckpointFormatError, load_torch_file, path, max_bytes=16 << 20))
    assert peak < 8 << 20
    with pytest.raises(CheckpointFormatError, match="bomb.pth: tensor 'w' needs 67,108,864 bytes, beyond the 16,777,216-byte limit"):
        load_torch_file(path, max_bytes=16 << 20)


def test_an_entry_whose_compression_ratio_is_implausible_is_refused(tmp_path, monkeypatch):
    from keras_asym.convert import torch_pickle

    path = tmp_path / "ratio.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", _tensor_pickle(1024, (1024,), (1,)))
        archive.writestr("archive/data/0", b"\0" * 4096)
    assert load_torch_file(path)["w"].shape == (1024,)
    monkeypatch.setattr(torch_pickle, "MAX_DEFLATE_RATIO", 10)
    with pytest.raises(CheckpointFormatError, match="would inflate"):
        load_torch_file(path)


def test_a_zip_entry_shorter_than_its_storage_is_refused(tmp_path):
    path = tmp_path / "short.pth"
    _zip_checkpoint(path, _tensor_pickle(100, (100,), (1,)), {"0": b"\0" * 40})
    with pytest.raises(CheckpointFormatError, match="holds 40 bytes, its storage needs 400"):
        load_torch_file(path)


def test_a_huge_memo_index_or_declared_length_costs_nothing(tmp_path):
    """Python's C unpickler would allocate a 2**32-entry memo array for the first, and trust the length of the second."""
    for name, body in (("memo.pth", b"\x80\x02}r\xff\xff\xff\x7fh\x07."), ("length.pth", b"\x80\x02X\xff\xff\xff\x7fabc.")):
        path = tmp_path / name
        _zip_checkpoint(path, body)
        peak = _peak_while(lambda path=path: pytest.raises(CheckpointFormatError, load_torch_file, path))
        assert peak < 4 << 20, name


def test_import_official_holds_each_file_to_what_its_network_needs(tmp_path, official):
    """G's checkpoint may not allocate more than G's parameters (float64 at worst, read twice) allow."""
    from keras_asym.convert.checkpoints import import_official

    numel = 1 << 24  # 64 MiB of float32: far beyond an ngf-8 G
    _zip_checkpoint(tmp_path / "latest_net_G_A.pth", _tensor_pickle(numel, (numel,), (1,)), {"0": b"\0" * (numel * 4)})
    with pytest.raises(
        CheckpointFormatError, match="latest_net_G_A.pth: storage '0' needs 67,108,864 bytes|latest_net_G_A.pth: tensor 'w' needs"
    ):
        import_official(tmp_path, ngf=8, ndf=8, n_blocks=3)


def test_names_from_the_file_are_cut_short_in_errors(tmp_path):
    """A 100 kB tensor name must not become a 100 kB error line."""
    long_name = "x" * 100_000
    body = _tensor_pickle(1, (1 << 40,), (0,)).replace(
        b"X\x01\x00\x00\x00w", b"X" + struct.pack("<I", len(long_name)) + long_name.encode(), 1
    )
    path = tmp_path / "long.pth"
    _zip_checkpoint(path, body, {"0": b"\0" * 4})
    with pytest.raises(CheckpointFormatError) as caught:
        load_torch_file(path)
    assert len(str(caught.value)) < 400 + len(str(path)) and "..." in str(caught.value)


def _shared_tuple(levels: int) -> bytes:
    """Opcodes for t_n = (t_{n-1}, t_{n-1}), t_0 = "x": a few bytes per level, a repr twice as long per level."""
    ops = b"X\x01\x00\x00\x00x\x940"
    for level in range(levels):
        ops += b"h" + bytes([level]) + b"h" + bytes([level]) + b"\x86\x940"
    return ops + b"h" + bytes([levels])


@pytest.mark.timeout(60)
def test_a_value_that_shares_itself_at_every_level_is_named_in_bounded_time_and_memory(tmp_path):
    """The storage key of a tensor is a 60-level tuple DAG (its repr would be 2**60 characters)."""
    body = _tensor_pickle(1, (1,), (1,)).replace(b"X\x01\x00\x00\x000X\x03", _shared_tuple(60) + b"X\x03", 1)
    path = tmp_path / "dag.pth"
    _zip_checkpoint(path, body, {"0": b"\0" * 4})
    with pytest.raises(CheckpointFormatError, match=r"dag.pth: storage key \(\(\(") as caught:
        assert _peak_while(lambda: load_torch_file(path)) < 8 << 20
    assert len(str(caught.value)) < 200 + len(str(path))


def test_a_value_nested_a_hundred_thousand_deep_is_refused(tmp_path):
    path = tmp_path / "deep.pth"
    _zip_checkpoint(path, b"\x80\x02}X\x01\x00\x00\x00kN" + b"\x85" * 100_000 + b"s.")
    with pytest.raises(CheckpointFormatError, match="deep.pth: entries"):
        load_torch_file(path)


def test_a_legacy_object_pickle_is_held_to_the_zip_formats_size_limit(tmp_path, monkeypatch):
    """The legacy stream has no entry size to check: 17 MB of MARK opcodes stop at the pickle size limit, in bounded memory."""
    from keras_asym.convert import torch_pickle

    header = pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2) + pickle.dumps({"little_endian": True}, 2)
    path = tmp_path / "marks.pth"
    path.write_bytes(header + b"\x80\x02" + b"N0" * (torch_pickle.MAX_PICKLE_BYTES // 2 + 1024) + b"N.")
    with pytest.raises(CheckpointFormatError, match="marks.pth: object pickle longer than 16,777,216 bytes"):
        load_torch_file(path)
    path.write_bytes(header + b"\x80\x02" + b"(" * (torch_pickle.MAX_OBJECTS + 10) + b".")
    peak = _peak_while(lambda: pytest.raises(CheckpointFormatError, load_torch_file, path))
    assert peak < 64 << 20
    with pytest.raises(CheckpointFormatError, match="marks.pth: more than 1048576 items on the pickle stack"):
        load_torch_file(path)


def test_import_official_refuses_weights_holding_nan_or_infinity(tmp_path):
    """Such a network draws blank pages: the importer names the tensor instead."""
    from keras_asym.convert.checkpoints import import_official

    for value in (np.nan, np.inf):
        raw = np.array([0.5, value, 1.0, 2.0], "<f4").tobytes()
        _zip_checkpoint(tmp_path / "latest_net_G_A.pth", _tensor_pickle(4, (4,), (1,)), {"0": raw})
        with pytest.raises(CheckpointFormatError, match="latest_net_G_A.pth: tensor 'w' holds NaN or infinite values"):
            import_official(tmp_path, ngf=8, ndf=8, n_blocks=3)


def test_a_zip_holding_an_entry_twice_is_refused(tmp_path):
    """Python's zip reader would take the last copy; torch.load refuses such a file, and so does the reader."""
    import warnings

    path = tmp_path / "twice.pth"
    _zip_checkpoint(path, _tensor_pickle(1, (1,), (1,)), {"0": b"\0" * 4})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("archive/data/0", b"\1" * 4)
    with pytest.raises(CheckpointFormatError, match="twice.pth: entry 'archive/data/0' appears twice"):
        load_torch_file(path)
