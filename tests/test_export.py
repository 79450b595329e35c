"""Export: SavedModel signatures, every TFLite variant, metadata, GPU report, parity, QAT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from edge_demo.runtime.generator import TFLiteGenerator
from export import exporter, metadata, tflite
from keras_asym.evaluation import metrics
from keras_asym.layers.basic import InstanceNormalization
from keras_asym.models.networks import StyleGenerator

HEIGHT, WIDTH = 48, 64
SUBPIXEL_LAYERS = ["stem_conv", "up1_deconv", "up2_deconv", "head_conv"]  # export.subpixel's rewrites of G


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(3)
    generator = StyleGenerator(ngf=8, n_blocks=2)
    path = root / "generator.keras"
    generator.save(path)
    summary = exporter.export_generator(path, root / "out", size=(HEIGHT, WIDTH), calibration_count=8, log=lambda *a: None)
    return generator, root / "out", summary


def test_the_int8_file_is_converted_again_with_each_norms_variance_bias_and_the_float_norm_file_is_not(exported):
    generator, out, _ = exported
    norms = {layer.name for layer in generator.layers if isinstance(layer, InstanceNormalization)}
    corrected = json.loads((out / "drawing_int8.json").read_text())["variance_bias"]
    assert corrected["norms_corrected"] == len(norms) and set(corrected["bias_share_of_variance"]) == norms
    assert "variance_bias" not in json.loads((out / "drawing_int8_float_norm.json").read_text())


def _photos(count=3, seed=1):
    photos, _ = tflite.calibration_photos(None, HEIGHT, WIDTH, count, seed=seed)
    return photos


def test_every_variant_is_written_with_metadata_and_reports(exported):
    _, out, summary = exported
    assert set(summary["variants"]) == set(tflite.VARIANTS)
    for variant in tflite.VARIANTS:
        model = (out / f"drawing_{variant}.tflite").read_bytes()
        info = metadata.read_metadata(model)
        assert info["version"] == exporter.VERSION and variant in info["name"]
        assert info["styles"] == ["style1", "style2", "style3"]
        assert info["inputs"]["photo"]["normalization"] == {"mean": [127.5], "std": [127.5]}
        assert info["keras_asym"] == json.loads((out / f"drawing_{variant}.json").read_text())
        assert info["keras_asym"]["size"] == [HEIGHT, WIDTH]
        report = (out / f"drawing_{variant}.gpu_report.txt").read_text()
        assert "GPU" in report and "Subgraph#0" in report
    for variant in tflite.VARIANTS:  # measured where a Vulkan device exists (tests/test_gpu.py), else the reason
        verdict = summary["variants"][variant]["gpu"]
        assert verdict.get("fully_accelerated") if verdict["measured"] else "Vulkan" in verdict["reason"], (variant, verdict)
    for variant in ("fp32", "fp16", "dynamic"):
        assert summary["variants"][variant]["gpu_static_precheck"] == {"analyzer_compatible": True, "incompatible_ops": []}
    assert summary["variants"]["int8"]["io"] == {"photo": "uint8", "style": "uint8", "drawing": "uint8"}
    assert summary["variants"]["int8_float_norm"]["io"] == {"photo": "float32", "style": "float32", "drawing": "float32"}
    assert json.loads((out / "drawing_int8_float_norm.json").read_text())["float_ops"] == list(tflite.NORM_OPS)


def test_the_int8_files_compute_the_stem_head_and_upsampling_on_space_to_depth_maps_and_fp32_does_not(exported):
    _, out, _ = exported

    def ops(variant):
        return [op["op_name"] for op in TFLiteGenerator(out / f"drawing_{variant}.tflite").interpreter._get_ops_details()]  # noqa: SLF001

    for variant in ("int8", "int8_float_norm"):
        assert json.loads((out / f"drawing_{variant}.json").read_text())["subpixel_layers"] == SUBPIXEL_LAYERS
        names = ops(variant)
        assert "TRANSPOSE_CONV" not in names and names.count("SPACE_TO_DEPTH") == 2 and names.count("DEPTH_TO_SPACE") == 4, variant
    assert ops("fp32").count("TRANSPOSE_CONV") == 2 and "SPACE_TO_DEPTH" not in ops("fp32")  # one op per Keras op


def test_xnnpack_leaves_the_int8_file_only_the_norms_per_channel_ops_and_its_io(exported):
    """RSQRT is no int8 XNNPACK op, nor the ADD of a per-channel epsilon too small for its scale; both act on one
    number per channel. Everything on a map (convolutions, clips, means, the reflection pads' concatenations) is
    XNNPACK's, and the sidecar says which ops are not."""
    generator, out, _ = exported
    record = json.loads((out / "drawing_int8.json").read_text())["xnnpack_reference_kernel_ops"]
    assert set(record["counts"]) <= {"RSQRT", "ADD", "QUANTIZE", "TILE"}, record
    assert record["counts"]["RSQRT"] == sum(isinstance(layer, InstanceNormalization) for layer in generator.layers)
    largest = record["largest"][0]
    assert largest["op"] == "QUANTIZE" and largest["elements"] == HEIGHT * WIDTH * 3  # the photo, uint8 to int8
    rows = tflite.reference_kernel_ops((out / "drawing_int8.tflite").read_bytes())
    assert all(row["elements"] <= 4 * 8 for row in rows if row["op"] in ("RSQRT", "ADD"))  # per channel: 4 * ngf at most


def test_the_reference_kernel_finder_sees_an_op_xnnpack_refuses(tmp_path):
    fn = tf.function(lambda x: tf.concat([x[:, i : i + 1] for i in range(7)] + [x], 1), input_signature=[tf.TensorSpec((1, 16, 16, 4))])
    model = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn).convert()
    assert [row["op"] for row in tflite.reference_kernel_ops(model)] == ["CONCATENATION"]  # eight inputs: too many
    fn = tf.function(lambda x: tf.concat([x[:, :1], x], 1), input_signature=[tf.TensorSpec((1, 16, 16, 4))])
    assert tflite.reference_kernel_ops(tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn).convert()) == []


def test_fp32_tflite_matches_keras_and_quantized_variants_stay_close(exported):
    generator, out, _ = exported
    photos = _photos()
    styles = np.eye(3, dtype=np.float32)
    psnrs = {}
    for variant in tflite.VARIANTS:
        runner = TFLiteGenerator(out / f"drawing_{variant}.tflite")
        values = []
        for i, photo in enumerate(photos):
            x = photo.astype(np.float32) / 127.5 - 1
            ref = np.asarray(generator({"photo": x[None], "style": styles[i][None]}))[0]
            got = runner.run(x, styles[i])
            if variant == "fp32":
                assert np.abs(got - ref).max() <= 1e-4
            values.append(metrics.psnr(got, ref, peak=2.0))
        psnrs[variant] = np.mean(values)
    assert psnrs["fp16"] > 55 and psnrs["dynamic"] > 30 and psnrs["int8"] > 20, psnrs


def test_uint8_draw_path_equals_float_path(exported):
    _, out, _ = exported
    photo = _photos(1, seed=5)[0]
    for variant in ("fp32", "int8"):
        runner = TFLiteGenerator(out / f"drawing_{variant}.tflite")
        x = photo.astype(np.float64) / 127.5 - 1
        quantization = runner.metadata["inputs"]["photo"].get("quantization")
        if quantization:  # feed the float path exactly the levels the pixel table picks
            scale, zero = quantization["scale"], quantization["zero_point"]
            x = (np.clip(np.round(x / scale + zero), 0, 255) - zero) * scale
        fast = runner.draw(photo, np.eye(3)[1])
        slow = runner.run(x, np.eye(3)[1])[..., 0]
        expected = np.clip((slow + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
        assert fast.dtype == np.uint8 and fast.shape == (HEIGHT, WIDTH)
        assert np.abs(fast.astype(int) - expected).max() <= 1


def test_savedmodel_signatures(exported):
    generator, out, _ = exported
    loaded = tf.saved_model.load(str(out / "savedmodel"))
    assert set(loaded.signatures) == {"serving_default", "style1", "style2", "style3"}
    photo = (_photos(2)[0][None].astype(np.float32) / 127.5 - 1).repeat(2, axis=0)
    style = np.tile(np.float32([[0, 0, 1]]), (2, 1))
    full = loaded.signatures["serving_default"](photo=tf.constant(photo), style=tf.constant(style))["drawing"].numpy()
    fixed = loaded.signatures["style3"](photo=tf.constant(photo))["drawing"].numpy()
    ref = np.asarray(generator({"photo": photo, "style": style}))
    np.testing.assert_allclose(full, ref, atol=1e-5)
    np.testing.assert_allclose(fixed, ref, atol=1e-5)


def test_per_op_report_names_instance_norm_ops(exported):
    _, out, summary = exported
    rows = json.loads((out / "drawing_int8.per_op.json").read_text())
    ops = {row["op"] for row in rows}
    assert {"CONV_2D", "CONCATENATION", "RSQRT", "MEAN"} <= ops and "MIRROR_PAD" not in ops
    assert all(np.isfinite(row["rmse"]) for row in rows)
    assert summary["int8_worst_ops"][0]["rmse_over_scale"] >= rows[-1]["rmse_over_scale"]


def test_float_ops_keep_norms_in_float(exported, tmp_path):
    generator, out, _ = exported
    photos = _photos(4)
    model = tflite.convert(out / "savedmodel", "int8", photos, float_ops=("RSQRT",))
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    ops = {(d["op_name"], d["outputs"][0]) for d in interpreter._get_ops_details()}  # noqa: SLF001
    rsqrt_out = [interpreter._get_tensor_details(o, 0)["dtype"] for name, o in ops if name == "RSQRT"]  # noqa: SLF001
    assert rsqrt_out and all(dtype == np.float32 for dtype in rsqrt_out)


def test_size_parsing():
    assert exporter.parse_size("256") == (256, 256)
    assert exporter.parse_size("512x384") == (512, 384)
    for bad in ("abc", "250", "8", "512x384x3"):
        with pytest.raises(ValueError):
            exporter.parse_size(bad)


def test_cli_rejects_bad_model(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip")
    result = subprocess.run(
        [sys.executable, "-m", "export", "--model", str(bad), "--output", str(tmp_path / "o"), "--size", "32"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "broken.keras" in result.stderr and "Traceback" not in result.stderr


def test_representative_samples_are_keyed_by_signature_name():
    photos = _photos(4)
    samples = list(tflite.representative_dataset(photos)())
    assert all(set(s) == {"photo", "style"} for s in samples)
    assert samples[0]["photo"].shape == (1, HEIGHT, WIDTH, 3) and samples[1]["style"].tolist() == [[0, 1, 0]]


def test_calibration_reports_its_progress(capsys):
    list(tflite.representative_dataset(_photos(4), label="int8 calibration")())
    assert "int8 calibration: 4/4 photos (100%)" in capsys.readouterr().err


@pytest.mark.slow
def test_qat_fine_tunes_through_the_int8_simulation_and_yields_a_full_integer_model(exported, tmp_path, capsys):
    generator, out, _ = exported
    path = tmp_path / "g.keras"
    generator.save(path)
    photos = _photos(4)
    models, record = exporter_qat(path, photos)
    assert record["qat"]["steps"] == 3 and np.isfinite(record["qat"]["last"])
    assert "qat: 3/3 steps (100%)" in capsys.readouterr().err
    (tmp_path / "qat.tflite").write_bytes(models["qat"])
    runner = TFLiteGenerator(tmp_path / "qat.tflite")
    assert runner.interpreter.get_input_details()[0]["dtype"] == np.uint8
    tensors = {t["index"]: t["dtype"] for t in runner.interpreter.get_tensor_details()}
    written = [tensors[i] for op in runner.interpreter._get_ops_details() for i in op["outputs"]]  # noqa: SLF001
    assert written and np.float32 not in written  # full integer: no op writes a float tensor
    assert record["qat"]["subpixel_layers"] == SUBPIXEL_LAYERS
    assert "TRANSPOSE_CONV" not in [op["op_name"] for op in runner.interpreter._get_ops_details()]  # noqa: SLF001
    x = photos[0].astype(np.float32) / 127.5 - 1
    ref = np.asarray(generator({"photo": x[None], "style": np.eye(3, dtype=np.float32)[:1]}))[0]
    assert metrics.psnr(runner.run(x, np.eye(3)[0]), ref, peak=2.0) > 18


@pytest.mark.slow
def test_qat_fine_tunes_the_mobile_generator_with_its_batch_norms_folded(tmp_path):
    from keras_asym.models.mobile import MobileStyleGenerator

    keras.utils.set_random_seed(0)
    generator = MobileStyleGenerator(alpha=0.5, n_blocks=1)
    generator.save(tmp_path / "student.keras")
    photos = _photos(4)
    models, _ = exporter_qat(tmp_path / "student.keras", photos)
    (tmp_path / "qat.tflite").write_bytes(models["qat"])
    runner = TFLiteGenerator(tmp_path / "qat.tflite")
    x = photos[0].astype(np.float32) / 127.5 - 1
    ref = np.asarray(generator({"photo": x[None], "style": np.eye(3, dtype=np.float32)[:1]}))[0]
    assert metrics.psnr(runner.run(x, np.eye(3)[0]), ref, peak=2.0) > 18


def exporter_qat(path, photos):
    from export import qat

    return qat.run_qat(path, HEIGHT, WIDTH, photos, steps=3, log=lambda *a: None)


def test_parity_is_judged_as_float_conversions_are():
    """The issue's correct conversion (98.6 dB, worst pixel 1.82e-3) passes, and so do a few pixels in a million past
    one level (the unpaired G at 512², docs/results/float_parity.json); a wrong op (35 dB), many pixels past one
    level, or one pixel past four fail, each on one line with its numbers."""
    exporter.check_parity({"psnr_db": 98.6, "max_abs_diff": 1.82e-3, "share_over_one_level": 0.0}, Path("export.json"))
    exporter.check_parity({"psnr_db": 97.6, "max_abs_diff": 9.93e-3, "share_over_one_level": 5.1e-6}, Path("export.json"))
    for bad in (
        {"psnr_db": 35.0, "max_abs_diff": 0.3, "share_over_one_level": 0.2},
        {"psnr_db": 95.0, "max_abs_diff": 0.02, "share_over_one_level": 1e-3},
        {"psnr_db": 95.0, "max_abs_diff": 0.04, "share_over_one_level": 6.4e-7},
    ):
        with pytest.raises(exporter.ParityError) as caught:
            exporter.check_parity(bad, Path("out/export.json"))
        message = str(caught.value)
        assert "\n" not in message and f"{bad['psnr_db']:.1f} dB" in message and "out/export.json" in message
        assert f"{bad['share_over_one_level']:.1e}" in message


@pytest.mark.slow
def test_the_papers_generator_with_the_official_init_exports_within_parity(tmp_path):
    """ngf 64, 9 blocks, conv weights ~ N(0, 0.02) as the official init_weights: a correct conversion must not be refused."""
    generator = StyleGenerator(ngf=64, n_blocks=9)
    generator({"photo": np.zeros((1, 128, 128, 3), np.float32), "style": np.eye(3, dtype=np.float32)[:1]})
    rng = np.random.default_rng(0)
    for weight in generator.weights:
        weight.assign(rng.normal(0, 0.02, weight.shape).astype(np.float32) if len(weight.shape) > 1 else np.zeros(weight.shape, np.float32))
    generator.save(tmp_path / "g.keras")
    summary = exporter.export_generator(
        tmp_path / "g.keras", tmp_path / "out", size=(128, 128), variants=("fp32",), gpu_check="off", log=lambda *a: None
    )
    quality = summary["variants"]["fp32"]["quality_vs_keras"]
    assert quality["psnr_db"] >= exporter.PARITY_MIN_PSNR_DB and quality["max_abs_diff"] <= exporter.PARITY_LEVEL


def test_a_conversion_that_fails_parity_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """Checked on fp32 whatever the variants asked for; nothing of the refused export is left in --output."""
    generator = StyleGenerator(ngf=4, n_blocks=1)
    generator({"photo": np.zeros((1, 32, 32, 3), np.float32), "style": np.eye(3, dtype=np.float32)[:1]})
    generator.save(tmp_path / "g.keras")
    monkeypatch.setattr(exporter, "quality", lambda *a: {"psnr_db": 35.0, "max_abs_diff": 0.3, "share_over_one_level": 0.2})
    output = tmp_path / "out"
    with pytest.raises(exporter.ParityError, match="nothing was written"):
        exporter.export_generator(tmp_path / "g.keras", output, size=(32, 32), variants=("int8",), gpu_check="off", log=lambda *a: None)
    assert not output.exists()


def test_the_default_gpu_check_runs_on_a_hardware_gpu_only(tmp_path, monkeypatch):
    """SwiftShader takes minutes per model and its speed says nothing: only --gpu_check software/require use it."""
    from edge_demo.runtime import gpu
    from export import exporter

    monkeypatch.setattr(gpu, "device_kind", lambda: "software")
    verdict = exporter.measure_gpu(b"not run", tmp_path, "auto")
    assert verdict == {"measured": False, "reason": verdict["reason"]} and "--gpu_check software" in verdict["reason"]
    assert not list(tmp_path.iterdir())  # nothing was started or written


def test_device_kind_tells_a_named_or_hardware_driver_from_swiftshader(monkeypatch, tmp_path):
    from edge_demo.runtime import gpu

    monkeypatch.delenv("VK_ICD_FILENAMES", raising=False)
    monkeypatch.delenv("VK_DRIVER_FILES", raising=False)
    swiftshader = tmp_path / "vk_swiftshader_icd.json"
    swiftshader.write_text("{}")
    monkeypatch.setattr(gpu, "SWIFTSHADER_ICDS", (str(swiftshader),))
    monkeypatch.setattr(gpu, "SYSTEM_ICD_DIRS", (str(tmp_path / "icd.d"),))
    assert gpu.device_kind() == "software"
    (tmp_path / "icd.d").mkdir()
    (tmp_path / "icd.d" / "nvidia_icd.json").write_text("{}")
    real_glob = gpu.glob.glob
    monkeypatch.setattr(gpu.glob, "glob", lambda pattern: [pattern] if pattern.startswith("/dev/nvidia") else real_glob(pattern))
    assert gpu.device_kind() == "hardware"
    monkeypatch.setenv("VK_ICD_FILENAMES", str(swiftshader))  # named by the user: checked as asked
    assert gpu.device_kind() == "hardware"
    swiftshader.unlink()
    monkeypatch.delenv("VK_ICD_FILENAMES")
    monkeypatch.setattr(gpu, "SYSTEM_ICD_DIRS", ())
    assert gpu.device_kind() is None
