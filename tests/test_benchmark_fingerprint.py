"""A benchmark reuses an export only when the weights, the exporter's code and the export options are the ones that made it."""

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


def _counting_exporter(monkeypatch) -> list:
    """Replaces the exporter by one that writes each variant's file and records its calls."""
    from export import exporter

    calls = []

    def export_generator(model, output, size, variants, log=print, **options):
        calls.append((tuple(variants), options))
        output.mkdir(parents=True, exist_ok=True)
        for variant in variants:
            (output / f"drawing_{variant}.tflite").write_bytes(b"tflite")

    monkeypatch.setattr(exporter, "export_generator", export_generator)
    return calls


def test_a_cached_export_is_reused_only_from_the_same_weights_and_options(tmp_path, monkeypatch, generator_file):
    import keras

    from benchmarks.common.fingerprint import cached_export
    from keras_asym.models.networks import StyleGenerator

    calls = _counting_exporter(monkeypatch)
    folder = tmp_path / "export_64"
    paths = cached_export(generator_file, folder, (64, 64), ("fp32", "int8"), log=lambda m: None, per_op_report=False)
    assert [c[0] for c in calls] == [("fp32", "int8")] and all(p.is_file() for p in paths.values())
    cached_export(generator_file, folder, (64, 64), ("fp32", "int8"), log=lambda m: None, per_op_report=False)
    assert len(calls) == 1  # same weights, code and options: reused
    cached_export(generator_file, folder, (64, 64), ("fp32", "fp16"), log=lambda m: None, per_op_report=False)
    assert calls[-1][0] == ("fp16",)  # only the missing variant
    (folder / "stray.txt").write_text("left by the earlier export")
    cached_export(generator_file, folder, (64, 64), ("fp32",), log=lambda m: None, per_op_report=True)
    assert calls[-1] == (("fp32",), {"per_op_report": True}) and not (folder / "stray.txt").exists()
    keras.utils.set_random_seed(1)  # other weights in the same file name
    other = tmp_path / "other.keras"
    StyleGenerator(ngf=4, n_blocks=1).save(other)
    other.replace(tmp_path / "generator.keras")
    cached_export(tmp_path / "generator.keras", folder, (64, 64), ("fp32",), log=lambda m: None, per_op_report=True)
    assert len(calls) == 4 and calls[-1][0] == ("fp32",)


def test_an_interrupted_export_is_never_taken_for_a_finished_one(tmp_path, monkeypatch, generator_file):
    from benchmarks.common.fingerprint import STAMP, cached_export

    calls = _counting_exporter(monkeypatch)
    folder = tmp_path / "export_64"
    folder.mkdir()
    (folder / "drawing_fp32.tflite").write_bytes(b"left by a run killed before its stamp")
    cached_export(generator_file, folder, (64, 64), ("fp32",), log=lambda m: None)
    assert len(calls) == 1 and (folder / "drawing_fp32.tflite").read_bytes() == b"tflite" and (folder / STAMP).is_file()
