"""A ``.tflite`` file is checked before LiteRT allocates anything for it: declared tensors, signature, packed record."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_demo.runtime.generator import MAX_RECORD_BYTES, TFLiteGenerator, read_sidecar

SIZE = 32


def _convert(body, output_dtype=tf.float32) -> bytes:
    spec = [tf.TensorSpec((1, SIZE, SIZE, 3), tf.float32, name="photo"), tf.TensorSpec((1, 3), tf.float32, name="style")]
    function = tf.function(lambda photo, style: tf.cast(body(photo, style), output_dtype), input_signature=spec)
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function).convert()


def _honest(photo, style):
    return tf.tanh(tf.reduce_mean(photo, -1, keepdims=True) + tf.reduce_sum(style))


@pytest.fixture(scope="module")
def honest_bytes() -> bytes:
    return _convert(_honest)


def _peak_rss_of(script: str) -> tuple[int, str]:
    """Runs ``script`` in a child; its peak RSS in bytes and its output (the test's own memory stays out of it)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child forked from this test process would
    # report the test process's own size
    code = script + "\nimport re; print('PEAK', int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]) * 1024)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    peak = int(result.stdout.rsplit("PEAK", 1)[1]) if "PEAK" in result.stdout else -1
    return peak, result.stdout + result.stderr


def test_an_honest_generator_loads_and_draws(tmp_path, honest_bytes):
    path = tmp_path / "honest.tflite"
    path.write_bytes(honest_bytes)
    generator = TFLiteGenerator(path)
    drawing = generator.draw(np.full((SIZE, SIZE, 3), 255, np.uint8), np.array([1.0, 0.0, 0.0]))
    assert drawing.shape == (SIZE, SIZE) and drawing.min() == drawing.max() == round((np.tanh(2.0) + 1) * 127.5)


def test_a_declared_3_gib_intermediate_is_refused_before_it_is_allocated(tmp_path):
    def giant(photo, style):  # (1, 16384, 16384, 3) float32: 3 GiB from a 2 kB file
        tiled = tf.tile(photo, [1, 512, 512, 1])
        return tf.reduce_mean(tiled[:, :SIZE, :SIZE, :] + tiled[:, -SIZE:, -SIZE:, :], -1, keepdims=True) + tf.reduce_sum(style)

    path = tmp_path / "giant.tflite"
    path.write_bytes(_convert(giant))
    assert path.stat().st_size < 8 << 10
    with pytest.raises(ValueError, match=r"giant.tflite: declares a tensor of shape \(1, 16384, 16384, 3\)"):
        TFLiteGenerator(path)
    peak, output = _peak_rss_of(
        f"from edge_demo.runtime.generator import TFLiteGenerator\ntry:\n    TFLiteGenerator({str(path)!r})\nexcept ValueError:\n    pass"
    )
    assert 0 < peak < 1 << 30, output[-2000:]


def test_outputs_and_inputs_a_generator_cannot_have_are_refused(tmp_path):
    cases = {
        "int32 drawing output": _convert(lambda photo, style: _honest(photo, style) * 100, tf.int32),
        "(1, H, W, 1) drawing output": _convert(lambda photo, style: tf.concat([_honest(photo, style)] * 2, -1)),
    }
    for expected, model in cases.items():
        path = tmp_path / "model.tflite"
        path.write_bytes(model)
        with pytest.raises(ValueError, match=f"model.tflite: .*{expected.replace('(', '.').replace(')', '.')}"):
            TFLiteGenerator(path)
    peak, output = _peak_rss_of(
        "from edge_demo.runtime.generator import TFLiteGenerator\n"
        f"open({str(tmp_path / 'i32.tflite')!r}, 'wb').write({cases['int32 drawing output']!r})\n"
        f"try:\n    TFLiteGenerator({str(tmp_path / 'i32.tflite')!r})\nexcept ValueError:\n    pass"
    )
    assert 0 < peak < 1 << 30, output[-2000:]  # the lookup table for an int32 output alone would be 32 GiB


def test_a_generator_runs_at_its_exported_size_only(tmp_path, honest_bytes):
    path = tmp_path / "honest.tflite"
    path.write_bytes(honest_bytes)
    generator = TFLiteGenerator(path)
    with pytest.raises(ValueError, match=f"runs at its exported size {SIZE}x{SIZE}, given 64x64"):
        generator.draw(np.zeros((64, 64, 3), np.uint8), np.array([1.0, 0.0, 0.0]))
    assert generator.draw(np.zeros((SIZE, SIZE, 3), np.uint8), np.array([1.0, 0.0, 0.0])).shape == (SIZE, SIZE)


def _with_record(model: bytes, payload: bytes, compression=zipfile.ZIP_DEFLATED, patch=None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as files:
        files.writestr("keras_asym.json", payload)
    archive = bytearray(buffer.getvalue())
    if patch:
        patch(archive)
    return model + bytes(archive)


def _set_field(archive: bytearray, local: int, central: int, value: int, fmt: str = "<H") -> None:
    """Overwrites one field of the only entry's local header and central-directory record."""
    for signature, offset in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = archive.index(signature) + offset
        archive[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)


def test_the_packed_record_is_read_within_bounds_or_refused_in_one_line(tmp_path, honest_bytes):
    record = {"variant": "fp32", "size": [SIZE, SIZE]}
    good = tmp_path / "good.tflite"
    good.write_bytes(_with_record(honest_bytes, json.dumps(record).encode()))
    assert read_sidecar(good) == record and TFLiteGenerator(good).metadata == record
    cases = {
        # 64 MB of spaces deflate to 64 kB: refused from the declared size, before inflating
        "bomb": (_with_record(honest_bytes, b" " * (64 << 20) + b"{}"), f"declares 67,108,866 bytes \\(at most {MAX_RECORD_BYTES:,}\\)"),
        "encrypted": (_with_record(honest_bytes, b"{}", patch=lambda a: _set_field(a, 6, 8, 1)), "cannot be read"),
        "unknown method": (_with_record(honest_bytes, b"{}", patch=lambda a: _set_field(a, 8, 10, 99)), "cannot be read"),
        "not json": (_with_record(honest_bytes, b"\xff{"), "not JSON"),
        "a list": (_with_record(honest_bytes, b"[1, 2]"), "not a JSON object"),
    }
    for name, (model, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.tflite"
        path.write_bytes(model)
        with pytest.raises(ValueError, match=message) as caught:
            TFLiteGenerator(path)
        assert str(caught.value).startswith(str(path)) and len(str(caught.value)) < 300 + len(str(path)), name


def test_draw_and_the_camera_demo_refuse_a_hostile_model_with_exit_2(tmp_path):
    def giant(photo, style):
        return tf.reduce_mean(tf.tile(photo, [1, 256, 256, 1])[:, :SIZE, :SIZE, :], -1, keepdims=True) + tf.reduce_sum(style)

    model = tmp_path / "giant.tflite"
    model.write_bytes(_convert(giant))
    (tmp_path / "in").mkdir()
    commands = {
        "draw": ["keras_asym.draw", "--model", model, "--input", tmp_path / "in", "--output", tmp_path / "out", "--noalign"],
        "edge_demo": ["edge_demo", "--model", model, "--source", tmp_path / "none.avi", "--headless"],
    }
    for name, args in commands.items():
        result = subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert "giant.tflite: declares a tensor of shape" in result.stderr and "Traceback" not in result.stderr, name


@pytest.fixture(scope="module")
def int8_bytes() -> bytes:
    """A small StyleGenerator converted to full-integer int8: mutated, such files crashed LiteRT's allocate_tensors."""
    import keras

    from keras_asym.models.networks import StyleGenerator

    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=4, n_blocks=1, height=SIZE, width=SIZE)
    rng = np.random.default_rng(0)

    def calibration():
        for _ in range(4):
            yield {"photo": rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32), "style": np.eye(3, dtype=np.float32)[:1]}

    converter = tf.lite.TFLiteConverter.from_keras_model(generator)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


@settings(max_examples=int(os.environ.get("KERAS_ASYM_FUZZ_EXAMPLES", "30")), deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8))
@example(edits=[(0.27806459422471885, 1)])  # found by this test: a drawing of (31, 32) from a (32, 32) photo, not refused
def test_a_mutated_int8_export_draws_or_is_refused_in_one_line_and_never_crashes_the_process(tmp_path_factory, int8_bytes, edits):
    raw = bytearray(int8_bytes)
    for where, value in edits:
        raw[int(where * len(raw))] = value
    path = tmp_path_factory.mktemp("mutant") / "mutant.tflite"
    path.write_bytes(bytes(raw))
    try:
        generator = TFLiteGenerator(path, threads=1)
    except ValueError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)
        return
    drawing = generator.draw(np.zeros((generator.height, generator.width, 3), np.uint8), np.array([1.0, 0.0, 0.0]))
    assert drawing.dtype == np.uint8 and drawing.shape == (generator.height, generator.width)


def _zero_point_offset(model: bytes) -> int:
    """Byte offset of the first 8-bit activation tensor's zero point (int64) in the flatbuffer."""
    from mediapipe.tasks.metadata import schema_py_generated as schema

    graph = schema.Model.GetRootAsModel(model, 0).Subgraphs(0)
    base = np.frombuffer(model, np.uint8).__array_interface__["data"][0]
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        quantization = tensor.Quantization()
        if tensor.Type() == schema.TensorType.INT8 and quantization is not None and quantization.ZeroPointLength() == 1:
            return quantization.ZeroPointAsNumpy().__array_interface__["data"][0] - base
    raise AssertionError("no int8 tensor with one zero point")


def test_a_zero_point_outside_its_types_range_is_refused_before_litert_prepares_the_model(tmp_path, int8_bytes):
    """One changed byte of an export made a zero point of -63233, on which LiteRT's allocate_tensors segfaults."""
    raw = bytearray(int8_bytes)
    at = _zero_point_offset(int8_bytes)
    raw[at : at + 8] = struct.pack("<q", -63233)
    path = tmp_path / "zero.tflite"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"zero.tflite: tensor .* \(int8\) has zero point -63233, outside \[-128, 127\]"):
        TFLiteGenerator(path, probe=False)  # the check itself, not the probe, refuses it


def test_a_model_on_which_litert_crashes_is_refused_by_the_probe(tmp_path, monkeypatch):
    """The probe's child dies by a signal: the load refuses the file instead of running it here."""
    from edge_demo.runtime import generator as runtime

    monkeypatch.setattr(runtime, "_PROBE", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    path = tmp_path / "m.tflite"
    path.write_bytes(b"anything")
    with pytest.raises(ValueError, match=r"m.tflite: LiteRT crashed on this model \(SIGSEGV, in a probe process\)"):
        TFLiteGenerator(path)


def test_a_wide_generator_exported_small_is_not_mistaken_for_a_bomb(tmp_path):
    """Its 3x3x256x256 block kernels hold more values than 512 per pixel of a 16x16 photo; they are in the file."""
    from keras_asym.models.networks import StyleGenerator

    model = StyleGenerator(ngf=64, n_blocks=1, height=16, width=16)
    path = tmp_path / "wide.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    assert TFLiteGenerator(path, probe=False).draw(np.zeros((16, 16, 3), np.uint8), np.array([1.0, 0.0, 0.0])).shape == (16, 16)


def test_a_model_too_slow_for_the_probe_is_loaded_here_with_a_warning(tmp_path, honest_bytes, monkeypatch, caplog):
    from edge_demo.runtime import generator as runtime

    monkeypatch.setattr(runtime, "_PROBE", "import time; time.sleep(30)")
    monkeypatch.setattr(runtime, "PROBE_SECONDS", 1)
    path = tmp_path / "slow.tflite"
    path.write_bytes(honest_bytes)
    with caplog.at_level("WARNING", logger="edge_demo"):
        assert TFLiteGenerator(path).draw(np.zeros((SIZE, SIZE, 3), np.uint8), np.array([1.0, 0.0, 0.0])).shape == (SIZE, SIZE)
    assert any("not probed in a child process (TimeoutExpired)" in r.getMessage() for r in caplog.records)
