"""Every exported generator runs fully on LiteRT's GPU accelerator (real GPU kernels; software Vulkan without a GPU).

Without a Vulkan device these tests skip, saying how to get one; CI (.ci/run)
installs SwiftShader's and runs them, where a skip is a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from edge_demo.runtime import gpu
from export import exporter
from keras_asym.evaluation.metrics import psnr
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.models.networks import StyleGenerator

VARIANTS = ("fp32", "fp16", "int8")


@pytest.fixture(scope="module")
def device():
    try:
        return gpu.vulkan_device()
    except gpu.GpuUnavailable as err:
        pytest.skip(f"no Vulkan device for LiteRT's GPU accelerator: {err}")


class _GpuDrawer:
    """One model compiled once for LiteRT's GPU accelerator (compiling on SwiftShader is the expensive part)."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        self.inputs = {d["name"].split("serving_default_")[-1].split(":")[0]: d for d in interpreter.get_input_details()}
        self.output = interpreter.get_output_details()[0]
        self.model = gpu.CompiledGpuModel(path)
        assert self.model.fully_accelerated

    def __call__(self, photo, style):
        feed = {"photo": gpu._quantize(photo[None], self.inputs["photo"]), "style": gpu._quantize(style[None], self.inputs["style"])}
        return gpu._dequantize(next(iter(self.model.run(feed).values())), self.output)[0, ..., 0]


@pytest.fixture(
    # both generators, neither square (a swapped height and width would show), the paper's at a size of its own
    scope="module",
    params=[("paper", (96, 128)), ("student", (64, 96))],
    ids=lambda p: f"{p[0]}-{p[1][0]}x{p[1][1]}",
)
def exported(request, tmp_path_factory, device):
    kind, size = request.param
    root = tmp_path_factory.mktemp(kind)
    keras.utils.set_random_seed(4)
    model = StyleGenerator(ngf=8, n_blocks=2) if kind == "paper" else MobileStyleGenerator(alpha=0.5, n_blocks=2)
    model.save(root / "g.keras")
    summary = exporter.export_generator(  # one range quantile and no variance correction: any int8 file serves here
        root / "g.keras", root / "out", size, VARIANTS, calibration_count=4, per_op_report=False, gpu_check="require",
        range_quantile=0.9999, correct_variance_bias=False, log=lambda *a: None,
    )  # fmt: skip
    return root / "out", summary, size


def test_every_variant_runs_fully_accelerated_and_the_verdict_is_recorded(exported):
    out, summary, _ = exported
    for variant in VARIANTS:
        verdict = summary["variants"][variant]["gpu"]
        assert verdict["measured"] and verdict["fully_accelerated"] and verdict["ran"], verdict
        assert verdict["ops_on_gpu"] == verdict["ops_total"] > 20 and verdict["ops_on_cpu"] == 0 and verdict["unsupported_ops"] == []
        assert verdict["adapter"]
        sidecar = json.loads((out / f"drawing_{variant}.json").read_text())
        assert sidecar["gpu"] == verdict and "analyzer_compatible" in sidecar["gpu_static_precheck"]


def test_gpu_drawings_match_the_cpu_fp32_drawing(exported):
    """fp32 and fp16 on the GPU at PSNR >= 40 dB of the CPU fp32 drawing; int8 on the GPU within 3 dB of int8 on the CPU."""
    from edge_demo.runtime.generator import TFLiteGenerator

    out, _, (height, width) = exported
    photo = np.random.default_rng(0).uniform(-1, 1, (height, width, 3)).astype(np.float32)
    on_cpu = {v: TFLiteGenerator(out / f"drawing_{v}.tflite", threads=2) for v in ("fp32", "int8")}
    on_gpu = {v: _GpuDrawer(out / f"drawing_{v}.tflite") for v in VARIANTS}
    for k in range(3):
        style = np.eye(3, dtype=np.float32)[k]
        reference = on_cpu["fp32"].run(photo, style)[..., 0]
        for variant in ("fp32", "fp16"):
            assert psnr(on_gpu[variant](photo, style), reference, peak=2.0) >= 40.0, (variant, k)
        int8_cpu = psnr(on_cpu["int8"].run(photo, style)[..., 0], reference, peak=2.0)
        int8_gpu = psnr(on_gpu["int8"](photo, style), reference, peak=2.0)
        assert int8_gpu >= int8_cpu - 3.0, (k, int8_gpu, int8_cpu)


def test_the_winograd_fp32_file_runs_fully_accelerated_and_draws_as_on_the_cpu(tmp_path, device, monkeypatch):
    from edge_demo.runtime.generator import TFLiteGenerator
    from export import winograd

    monkeypatch.setattr(winograd, "MIN_CHANNELS", 32)  # ngf 8: 32 channels at the bottleneck
    keras.utils.set_random_seed(4)
    StyleGenerator(ngf=8, n_blocks=2).save(tmp_path / "g.keras")
    summary = exporter.export_generator(
        tmp_path / "g.keras", tmp_path / "out", (48, 64), ("fp32_winograd",), calibration_count=2, per_op_report=False, gpu_check="require"
    )
    verdict = summary["variants"]["fp32_winograd"]["gpu"]
    assert verdict["fully_accelerated"] and verdict["ran"] and verdict["ops_on_cpu"] == 0, verdict
    path = tmp_path / "out" / "drawing_fp32_winograd.tflite"
    photo = np.random.default_rng(0).uniform(-1, 1, (48, 64, 3)).astype(np.float32)
    style = np.eye(3, dtype=np.float32)[1]
    assert psnr(_GpuDrawer(path)(photo, style), TFLiteGenerator(path, threads=2).run(photo, style)[..., 0], peak=2.0) >= 40.0


def test_the_probe_names_the_ops_a_model_would_leave_on_the_cpu(tmp_path, device):
    """A graph with BROADCAST_TO (what style tiling compiled to before): not fully accelerated, and the op is named."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32), tf.TensorSpec([1, 3], tf.float32)])
    def tiled(photo, style):
        return tf.concat([photo, tf.broadcast_to(style[:, None, None, :], [1, 8, 8, 3])], axis=-1)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([tiled.get_concrete_function()], tiled)
    path = tmp_path / "broadcast.tflite"
    path.write_bytes(converter.convert())
    result = subprocess.run([sys.executable, "-m", "edge_demo.runtime.gpu_check", str(path)], capture_output=True, text=True, timeout=300)
    verdict = json.loads(result.stdout.strip().splitlines()[-1])
    assert verdict["fully_accelerated"] is False and verdict["unsupported_ops"] == ["BROADCAST_TO"]
    assert "BROADCAST_TO" in verdict["error"]
