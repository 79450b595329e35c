"""A benchmark reuses an export only when the weights and the exporter's code are the ones that made it."""

from __future__ import annotations

from benchmarks.common.fingerprint import EXPORTER_SOURCES, source_sha256


def test_the_exporter_fingerprint_changes_with_any_of_its_files_and_only_with_them(tmp_path):
    for folder in ("export", "other"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.py").write_text("x = 1\n")
    (tmp_path / "export" / "b.py").write_text("y = 2\n")
    first = source_sha256(("export",), tmp_path)
    assert source_sha256(("export",), tmp_path) == first
    (tmp_path / "other" / "a.py").write_text("x = 3\n")  # outside the folders: no effect
    (tmp_path / "export" / "notes.txt").write_text("not code")
    assert source_sha256(("export",), tmp_path) == first
    (tmp_path / "export" / "b.py").write_text("y = 3\n")
    assert source_sha256(("export",), tmp_path) != first
    (tmp_path / "export" / "b.py").write_text("y = 2\n")
    (tmp_path / "export" / "b.py").rename(tmp_path / "export" / "c.py")  # same bytes, another file
    assert source_sha256(("export",), tmp_path) != first


def test_the_default_fingerprint_covers_the_exporter_and_the_layers_it_converts():
    assert EXPORTER_SOURCES == ("export", "keras_asym/layers")
    assert len(source_sha256()) == 64 and source_sha256() != source_sha256(("export",))
