"""LiteRT's GPU accelerator, measured rather than assumed: environment, probe and a per-frame runner.

``ai-edge-litert`` ships its GPU accelerator (``libLiteRtWebGpuAccelerator.so``:
WebGPU through Dawn, over Vulkan, Metal or D3D) behind the ``CompiledModel``
API. ``vulkan_device()`` finds a Vulkan driver: the system's (a desktop GPU,
Mesa's V3DV on a Raspberry Pi 5), one named by ``VK_ICD_FILENAMES``, or
SwiftShader's software Vulkan that Debian's ``chromium`` package ships, on
which the accelerator runs its real GPU kernels on a CPU-only machine (op
coverage and numerics, not speed). ``probe()`` compiles a model for the GPU,
reports whether it is fully accelerated, which ops would fall back to the CPU
(from the accelerator's own log), the adapter it selected, and how far its
output is from XNNPACK's on the same inputs. TensorFlow-free.

    python -m edge_demo.runtime.gpu_check MODEL.tflite [...]     # one JSON line per model
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from edge_demo.runtime import styles

SWIFTSHADER_ICDS = ("/usr/lib/chromium/vk_swiftshader_icd.json", "/usr/lib/chromium-browser/vk_swiftshader_icd.json")
SYSTEM_ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")
INSTALL_HINT = "apt-get install chromium libvulkan1 (SwiftShader's software Vulkan), or install your GPU's Vulkan driver"


class GpuUnavailable(RuntimeError):
    """No Vulkan device, or the accelerator could not compile the model for it."""


def device_kind() -> str | None:
    """``"hardware"`` (a GPU device node with a Vulkan driver, or a driver named in the environment), ``"software"``
    (only SwiftShader's software Vulkan) or ``None``; changes nothing (``vulkan_device`` prepares the process)."""
    if os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES"):
        return "hardware"  # the user named a driver: take them at their word
    system = [f for d in SYSTEM_ICD_DIRS for f in glob.glob(os.path.join(d, "*.json"))]
    if system and (glob.glob("/dev/dri/renderD*") or glob.glob("/dev/nvidia[0-9]*")):
        return "hardware"
    return "software" if any(os.path.isfile(icd) for icd in SWIFTSHADER_ICDS) else None


def vulkan_device() -> str:
    """Makes a Vulkan device reachable for this process and says which; raises ``GpuUnavailable`` if there is none.

    Sets ``XDG_RUNTIME_DIR`` (Dawn wants one) and, when no driver is
    configured, ``VK_ICD_FILENAMES`` to SwiftShader's. Call before the first
    ``CompiledModel`` is created.
    """
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="xdg-")
    try:
        ctypes.CDLL("libvulkan.so.1")
    except OSError as err:
        raise GpuUnavailable(f"no Vulkan loader (libvulkan.so.1: {err}); {INSTALL_HINT}.") from err
    named = os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES")
    if named:
        return f"Vulkan driver {named}"
    system = sorted(f for d in SYSTEM_ICD_DIRS for f in glob.glob(os.path.join(d, "*.json")))
    # A GPU shows up as a DRM render node (Mesa: Intel, AMD, V3DV on a Pi 5) or an NVIDIA device node;
    # without one, the system ICDs are at best Mesa's lavapipe, which the accelerator's Dawn rejects.
    hardware = glob.glob("/dev/dri/renderD*") or glob.glob("/dev/nvidia[0-9]*")
    if system and hardware:
        return "system Vulkan drivers (" + ", ".join(Path(f).stem for f in system) + ")"
    for icd in SWIFTSHADER_ICDS:
        if os.path.isfile(icd):
            os.environ["VK_ICD_FILENAMES"] = icd
            return f"SwiftShader software Vulkan ({icd})"
    if system:
        return "system Vulkan drivers without a GPU device (" + ", ".join(Path(f).stem for f in system) + ")"
    raise GpuUnavailable(f"no Vulkan driver found; {INSTALL_HINT}.")


def _capture_native_stderr(fn):
    """Runs ``fn`` with file descriptor 2 captured: the accelerator reports op placement from C++."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            result, error = fn(), None
        except Exception as err:  # noqa: BLE001 - reported with the captured log below
            result, error = None, err
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return result, error, sink.read().decode("utf-8", "replace")


def _placement(log: str) -> dict:
    split = re.findall(r"(\d+) operations will run on the GPU, and the remaining (\d+) operations will run on the CPU", log)
    adapter = re.findall(r"Selected adapter: ([^\n]+)", log)
    return {
        "unsupported_ops": sorted(set(re.findall(r"^([A-Z][A-Z0-9_]+): Operation is not supported", log, re.M))),
        "ops_on_gpu": int(split[-1][0]) if split else None,
        "ops_on_cpu": int(split[-1][1]) if split else 0,
        "adapter": adapter[-1].strip() if adapter else None,
    }


# XNNPACK delegate flags (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h): its int8 kernels, and fp16
# arithmetic for fp32 ops, which XNNPACK uses where the CPU has fp16 instructions (ARMv8.2, AVX512-FP16).
XNNPACK_QS8, XNNPACK_QU8, XNNPACK_FORCE_FP16 = 0x1, 0x2, 0x4


class CompiledGpuModel:
    """A ``.tflite`` compiled for the GPU accelerator (``fallback``: ops it lacks run on XNNPACK), buffers made once.

    ``gpu=False`` compiles it for the CPU alone, with ``xnnpack_flags`` (e.g. ``XNNPACK_FORCE_FP16``), which
    the Interpreter API does not take."""

    def __init__(self, path: str | Path, fallback: bool = False, threads: int = 2, gpu: bool = True, xnnpack_flags: int | None = None):
        from ai_edge_litert.compiled_model import (  # lazy: 1.7 s to import; only GPU runs need it
            CompiledModel,
            CpuOptions,
            HardwareAccelerator,
            Options,
        )

        self.path = Path(path)
        accelerators = HardwareAccelerator.GPU | HardwareAccelerator.CPU if fallback else HardwareAccelerator.GPU
        if not gpu:
            accelerators = HardwareAccelerator.CPU
        options = Options(hardware_accelerators=accelerators, cpu_options=CpuOptions(num_threads=threads, xnnpack_flags=xnnpack_flags))
        model, error, log = _capture_native_stderr(lambda: CompiledModel.from_file(str(self.path), options=options))
        self.placement = _placement(log)
        if error is not None:
            reason = str(error).strip().splitlines()[-1].lstrip("└ ")
            missing = self.placement["unsupported_ops"]
            raise GpuUnavailable(f"{self.path}: " + (f"ops the GPU accelerator lacks: {', '.join(missing)}" if missing else reason))
        self.model = model
        self.fully_accelerated = bool(model.is_fully_accelerated())
        self.signature = next(iter(model.get_signature_list()))
        self.input_details = model.get_input_tensor_details(self.signature)
        self.output_details = model.get_output_tensor_details(self.signature)
        self.inputs = {name: model.create_input_buffer_by_name(self.signature, name) for name in self.input_details}
        self.outputs = {name: model.create_output_buffer_by_name(self.signature, name) for name in self.output_details}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Writes ``feeds`` (by input name) into the reused buffers, runs, returns every output."""
        for name, value in feeds.items():
            self.inputs[name].write(np.ascontiguousarray(value))
        self.model.run_by_name(self.signature, self.inputs, self.outputs)
        out = {}
        for name, detail in self.output_details.items():
            shape = tuple(detail["shape"])
            out[name] = np.asarray(self.outputs[name].read(int(np.prod(shape)), np.dtype(detail["dtype"]))).reshape(shape)
        return out


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    if values.dtype == np.float32:
        return values
    scale, zero = detail["quantization"]
    return (values.astype(np.float32) - zero) * scale


def _quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return values.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / scale + zero), info.min, info.max).astype(detail["dtype"])


def probe(path: str | Path, samples: int = 3, seed: int = 0) -> dict:
    """Compiles ``path`` for the GPU and compares its output with XNNPACK's on ``samples`` random inputs.

    Returns ``{"device", "adapter", "fully_accelerated", "ops_total", "ops_on_gpu", "ops_on_cpu",
    "unsupported_ops", "ran", "max_abs_vs_cpu", "psnr_db_vs_cpu"}`` (differences of the dequantized
    outputs, over a [-1, 1] range; ``error`` instead of the differences when it did not run);
    ``{"device": None, "error": ...}`` when no GPU can be used.
    """
    try:
        device = vulkan_device()
    except GpuUnavailable as err:
        return {"device": None, "error": str(err)}
    try:
        gpu = CompiledGpuModel(path)
    except GpuUnavailable as err:
        try:  # say how the work would split, from a GPU + CPU compilation
            split = CompiledGpuModel(path, fallback=True)
        except GpuUnavailable:
            split = None
        placement = split.placement if split else {}
        return {
            "device": device,
            "adapter": placement.get("adapter"),
            "fully_accelerated": False,
            "ran": False,
            "error": str(err),
            **{k: placement.get(k) for k in ("ops_on_gpu", "ops_on_cpu", "unsupported_ops")},
        }
    cpu = Interpreter(model_path=str(path), num_threads=2)
    cpu.allocate_tensors()
    total = len(cpu._get_ops_details())
    details = {d["name"].split("serving_default_")[-1].split(":")[0]: d for d in cpu.get_input_details()}
    output = cpu.get_output_details()[0]
    verdict = {
        "device": device,
        "adapter": gpu.placement["adapter"],
        "fully_accelerated": gpu.fully_accelerated,
        "ops_total": total,
        "ops_on_gpu": total if gpu.fully_accelerated else gpu.placement["ops_on_gpu"],
        "ops_on_cpu": 0 if gpu.fully_accelerated else gpu.placement["ops_on_cpu"],
        "unsupported_ops": gpu.placement["unsupported_ops"],
    }
    for attempt in (1, 2):  # a software device under heavy load has failed a large model's first run once
        worst, squared, rng = 0.0, [], np.random.default_rng(seed)
        try:
            for k in range(samples):
                feeds = {}
                for name, detail in details.items():
                    shape = tuple(detail["shape"])
                    values = styles.ONE_HOTS[k % 3][None] if len(shape) == 2 else rng.uniform(-1, 1, shape).astype(np.float32)
                    feeds[name] = _quantize(values, detail)
                    cpu.set_tensor(detail["index"], feeds[name])
                cpu.invoke()
                reference = _dequantize(cpu.get_tensor(output["index"]), output)
                drawn = _dequantize(next(iter(gpu.run(feeds).values())), output)
                difference = np.abs(drawn.astype(np.float64) - reference)
                worst = max(worst, float(difference.max()))
                squared.append(float(np.mean(difference**2)))
            break
        except RuntimeError as err:  # compiled, but the run failed on this device (e.g. a buffer beyond its limits)
            if attempt == 2:
                return {
                    **verdict,
                    "ran": False,
                    "error": f"{path}: compiled for the GPU but the run failed twice: {str(err).strip().splitlines()[-1].lstrip('└ ')}",
                }
            gpu = CompiledGpuModel(path)
    mse = float(np.mean(squared))
    return {
        **verdict,
        "ran": True,
        "max_abs_vs_cpu": worst,
        "psnr_db_vs_cpu": float("inf") if mse == 0 else float(10 * np.log10(4.0 / mse)),
    }
