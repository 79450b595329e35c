"""A keras-asym TFLite generator behind one call: uint8 RGB face in, uint8 drawing out.

Works for every exported variant (float, float16 weights, dynamic, full
integer with uint8/int8 tensors): pixel conversion and (de)quantization are
folded into 256-entry lookup tables built once, and inputs are written
into buffers allocated once, so the per-frame path allocates nothing but
the output copy.

Delegates: ``xnnpack`` (the interpreter's default CPU delegate), ``gpu`` and
``auto`` (LiteRT's GPU accelerator through ``CompiledModel``, with input and
output buffers made once and reused every frame; ops it lacks run on the CPU
beside it, and without a Vulkan device or a compilable model the generator
falls back to XNNPACK with one log line), ``none`` (reference kernels, for
debugging). ``accelerator`` and ``fully_accelerated`` say what actually runs.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
from ai_edge_litert import interpreter as litert

from edge_demo.runtime import gpu
from edge_demo.runtime.cli import one_line
from edge_demo.runtime.pixels import to_model, to_pixels

DELEGATES = ("auto", "xnnpack", "gpu", "none")
OUTPUT_DTYPES = (np.float32, np.uint8, np.int8, np.int16)
MAX_RECORD_BYTES = 1 << 20  # the keras_asym.json record is a few kilobytes
# A generator's widest tensor is its first (or last) full-resolution layer: ngf <= 256 channels (reflection
# padding adds a little), so one tensor may hold 2 x 256 values per input pixel, and all of them 64 times that.
TENSOR_VALUES_PER_PIXEL = 512
ALL_TENSORS_VALUES_PER_PIXEL = 64 * 256
log = logging.getLogger("edge_demo")


def read_sidecar(path: str | Path) -> dict:
    """The ``keras_asym.json`` record packed in the model (a zip appended to the flatbuffer) or beside it; ``{}`` if neither.

    Raises ValueError naming the file for a record that is oversized, encrypted, compressed in a way
    Python cannot read, damaged, or not a JSON object.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as files:
            info = files.getinfo("keras_asym.json")
            if info.file_size > MAX_RECORD_BYTES:
                raise ValueError(f"{path}: its keras_asym.json record declares {info.file_size:,} bytes (at most {MAX_RECORD_BYTES:,}).")
            raw, where = files.read(info), f"{path}: its keras_asym.json record"
    except (KeyError, zipfile.BadZipFile):  # no packed record, or no zip at all: look beside the model
        raw, where = None, ""
    except (RuntimeError, NotImplementedError, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as err:  # encrypted, unknown method
        raise ValueError(f"{path}: its keras_asym.json record cannot be read ({one_line(err, 120)}).") from err
    if raw is None:
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            return {}
        if sidecar.stat().st_size > MAX_RECORD_BYTES:
            raise ValueError(f"{sidecar}: {sidecar.stat().st_size:,} bytes, more than a keras_asym.json record ({MAX_RECORD_BYTES:,}).")
        raw, where = sidecar.read_bytes(), str(sidecar)
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, nesting past the limit
        raise ValueError(f"{where}: not JSON ({one_line(err, 120)}).") from err
    if not isinstance(record, dict):
        raise ValueError(f"{where}: not a JSON object.")
    return record


def _check_quantization(path: Path, detail: dict) -> None:
    """A quantized tensor's zero points must lie in its type's range and its scales be positive and finite: LiteRT
    trusts them, and an int8 zero point of -63233 (one byte changed) crashes its ``allocate_tensors``."""
    parameters = detail.get("quantization_parameters") or {}
    zeros, scales = np.asarray(parameters.get("zero_points", [])), np.asarray(parameters.get("scales", []), np.float64)
    if not zeros.size and not scales.size:
        return
    dtype, name = np.dtype(detail["dtype"]), str(detail.get("name", ""))[:60]
    if dtype.kind in "iu" and zeros.size:
        # 8-bit tensors use their type's range; wider ones (int16 activations, int32 biases) are symmetric
        low, high = (np.iinfo(dtype).min, np.iinfo(dtype).max) if dtype.itemsize == 1 else (0, 0)
        if zeros.min() < low or zeros.max() > high:
            bad = int(zeros.min()) if zeros.min() < low else int(zeros.max())
            raise ValueError(f"{path}: tensor {name!r} ({dtype.name}) has zero point {bad}, outside [{low}, {high}].")
    if scales.size and not (np.isfinite(scales).all() and (scales > 0).all()):
        raise ValueError(f"{path}: tensor {name!r} has a quantization scale that is not a positive finite number.")


def check_tensor_budget(interpreter, path: Path, pixels: int, file_bytes: int = 0) -> None:
    """Refuses a model whose declared tensors exceed what a generator for ``pixels`` input pixels needs.

    The flatbuffer's shapes are read before anything is allocated: a 1 kB file may declare a 3 GiB
    intermediate that LiteRT would then allocate. Constant tensors (weights) live in the file, so a tensor may
    also be as large as the file (``file_bytes``): a wide generator exported at a small size stays loadable.
    """
    largest, total, shape = 0, 0, None
    for detail in interpreter.get_tensor_details():
        _check_quantization(path, detail)
        values = int(np.prod(detail["shape"], dtype=np.int64))
        if values > largest:
            largest, shape = values, detail["shape"]
        total += values * np.dtype(detail["dtype"]).itemsize
    if largest > max(TENSOR_VALUES_PER_PIXEL * pixels, file_bytes):
        raise ValueError(
            f"{path}: declares a tensor of shape {tuple(int(v) for v in shape)}, more than {TENSOR_VALUES_PER_PIXEL} values per "
            f"input pixel and more than the file holds: not a generator, refused before allocating it."
        )
    if total > ALL_TENSORS_VALUES_PER_PIXEL * 4 * pixels + file_bytes:
        raise ValueError(f"{path}: declares {total:,} bytes of tensors for a {pixels}-pixel input: not a generator, refused.")


def _make_interpreter(path: Path, threads: int, delegate: str):
    if delegate not in DELEGATES:
        raise ValueError(f"delegate must be one of {DELEGATES}, got {delegate!r}.")
    if delegate == "none":
        resolver = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        return litert.Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
    return litert.Interpreter(model_path=str(path), num_threads=threads)


def _compile_for_gpu(path: Path, threads: int, software_ok: bool):
    """The model on LiteRT's GPU accelerator (ops it lacks on XNNPACK beside it), or ``(None, why not)``.

    A software Vulkan device (SwiftShader) runs the real GPU kernels but slower than XNNPACK:
    only an explicit ``--delegate gpu`` uses it.
    """
    try:
        device = gpu.vulkan_device()
        compiled = gpu.CompiledGpuModel(path, fallback=True, threads=threads)
    except (gpu.GpuUnavailable, ImportError, RuntimeError) as err:
        return None, str(err)
    if not software_ok and "Software" in str(compiled.placement["adapter"] or device):
        return None, f"only a software Vulkan device ({compiled.placement['adapter'] or device}); pass --delegate gpu to use it"
    try:  # one run before the first frame: a model that compiles can still exceed the device's buffer limits
        compiled.run({name: np.zeros(detail["shape"], detail["dtype"]) for name, detail in compiled.input_details.items()})
    except RuntimeError as err:
        return None, f"the model compiled for the GPU but did not run there ({str(err).strip().splitlines()[-1].lstrip('└ ')})"
    return compiled, device


PROBE_SECONDS = 300
_PROBE = """
import sys
import numpy as np
from edge_demo.runtime.generator import TFLiteGenerator
try:
    generator = TFLiteGenerator(sys.argv[1], threads=int(sys.argv[3]), delegate=sys.argv[2], probe=False)
    generator.draw(np.zeros((generator.height, generator.width, 3), np.uint8), np.full(3, 1 / 3))
except Exception:
    sys.exit(2)
"""


def probe_in_child(path: Path, delegate: str = "xnnpack", threads: int = 2) -> bool:
    """Loads the model and draws once in a child process first; ValueError if LiteRT crashes there.

    LiteRT checks a flatbuffer's structure but not its ops' parameters: bytes changed in an export can make its
    ``allocate_tensors`` die with SIGSEGV, which no exception handler can catch (two of three batches of 100
    randomly byte-mutated int8 exports held such a file, 2026-12-04). The child runs on the CPU: a GPU
    delegate's compilation is not probed. A crash in the child is a refusal here; an ordinary error is left to the
    in-process load, which reports it in one line. Returns whether the child drew without error. A child that
    cannot start, or a model too slow to draw within ``PROBE_SECONDS`` (a large fp32 model on a Pi), is loaded
    in-process unprobed, with a warning.
    """
    cpu = delegate if delegate in ("xnnpack", "none") else "xnnpack"
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path), cpu, str(threads)],
            capture_output=True,
            timeout=PROBE_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except (subprocess.TimeoutExpired, OSError) as err:
        log.warning("%s: not probed in a child process (%s); loading it here.", path, type(err).__name__)
        return True
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        raise ValueError(f"{path}: LiteRT crashed on this model ({name}, in a probe process): the file is damaged or hostile.")
    return result.returncode == 0


def check_tflite_file(path: str | Path) -> None:
    """Any ``.tflite`` (not only a generator) held to what it declares before a tool compiles or runs it: its
    packed record read within bounds, its structure loadable, its tensors within the budget of its largest image
    input (or of the file) and its quantization valid, and one run in a child process (``probe_in_child``).
    ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file.")
    read_sidecar(path)
    try:
        interpreter = _make_interpreter(path, 1, "none")
    except ValueError as err:
        raise ValueError(f"{path}: not a loadable TFLite model ({one_line(err, 200)}).") from err
    images = [d["shape"] for d in interpreter.get_input_details() if len(d["shape"]) == 4]
    pixels = max((int(s[1]) * int(s[2]) for s in images), default=0)
    check_tensor_budget(interpreter, path, pixels, path.stat().st_size)
    probe_in_child(path)


class TFLiteGenerator:
    """Runs a style-generator ``.tflite`` (inputs ``photo`` (1,H,W,3) and ``style`` (1,3)).

    Args:
        path: the ``.tflite`` file.
        threads: CPU threads.
        delegate: one of ``DELEGATES``.
        probe: load and run the model once in a child process first (``probe_in_child``), so that a file on which
            LiteRT crashes is refused instead of killing this process. A caller may turn it off for a file it
            has just written itself.

    Attributes:
        height, width: the model's input size; it runs at this size only (the exports fix their shapes:
            LiteRT cannot reshape them, and a failed reshape leaves the interpreter unusable).
        delegate: what runs the model: ``gpu``, ``xnnpack`` or ``none``.
        accelerator: the GPU adapter (``gpu``) or ``CPU``.
        fully_accelerated: on the GPU, whether every op runs there (``None`` on the CPU).
        metadata: the packed ``keras_asym.json`` record (may be empty).
    """

    def __init__(self, path: str | Path, threads: int = 2, delegate: str = "xnnpack", probe: bool = True):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such model file.")
        if delegate not in DELEGATES:
            raise ValueError(f"delegate must be one of {DELEGATES}, got {delegate!r}.")
        drew_in_child = probe_in_child(self.path, delegate, threads) if probe else True
        try:
            # The interpreter gives the tensors' quantization, and runs the model unless the GPU does.
            self.interpreter = _make_interpreter(self.path, threads, delegate)
        except ValueError as err:
            raise ValueError(f"{self.path}: not a loadable TFLite model ({one_line(err, 200)}).") from err
        self._photo, self._style = self._check_signature()
        self.delegate, self.accelerator, self.fully_accelerated, self._gpu = "none" if delegate == "none" else "xnnpack", "CPU", None, None
        if delegate in ("gpu", "auto"):
            self._gpu, device = _compile_for_gpu(self.path, threads, software_ok=delegate == "gpu")
            if self._gpu is None:
                log.log(logging.WARNING if delegate == "gpu" else logging.INFO, "GPU accelerator unavailable (%s); using XNNPACK.", device)
            else:
                self.delegate, self.fully_accelerated = "gpu", self._gpu.fully_accelerated
                self.accelerator = (self._gpu.placement["adapter"] or device).split(",")[0]
                log.info(
                    "GPU accelerator: %s, %s",
                    self.accelerator,
                    "fully accelerated"
                    if self.fully_accelerated
                    else f"ops left on the CPU: {', '.join(self._gpu.placement['unsupported_ops']) or '?'}",
                )
        self.metadata = read_sidecar(self.path)
        self._allocate()
        if not drew_in_child:  # it loads here as it did there: the error is in running it, found now, not mid-job
            self.draw(np.zeros((self.height, self.width, 3), np.uint8), np.full(3, 1 / 3))

    def _check_signature(self):
        """(photo, style) input details of a generator, checked with its tensors before anything is allocated."""
        inputs = self.interpreter.get_input_details()
        photo = next((d for d in inputs if len(d["shape"]) == 4), None)
        style = next((d for d in inputs if len(d["shape"]) == 2), None)
        if photo is None or photo["shape"][0] != 1 or photo["shape"][-1] != 3 or min(photo["shape"][1:3]) < 1:
            raise ValueError(f"{self.path}: no (1, H, W, 3) photo input; not a keras-asym generator.")
        if style is not None and tuple(style["shape"]) != (1, 3):
            raise ValueError(f"{self.path}: style input of shape {tuple(int(v) for v in style['shape'])}, not (1, 3).")
        check_tensor_budget(self.interpreter, self.path, int(photo["shape"][1]) * int(photo["shape"][2]), self.path.stat().st_size)
        outputs = self.interpreter.get_output_details()
        if len(outputs) != 1 or tuple(outputs[0]["shape"]) != (1, *photo["shape"][1:3], 1):
            raise ValueError(f"{self.path}: needs one (1, H, W, 1) drawing output of the photo's size; not a keras-asym generator.")
        for detail in (photo, style) if style is not None else (photo,):
            if detail["dtype"] not in (np.float32, np.uint8, np.int8):
                raise ValueError(
                    f"{self.path}: a {np.dtype(detail['dtype']).name} {detail['name']} input; a generator's is float32 or 8-bit."
                )
        if outputs[0]["dtype"] not in OUTPUT_DTYPES:
            raise ValueError(f"{self.path}: a {np.dtype(outputs[0]['dtype']).name} drawing output; a generator's is float32 or 8/16-bit.")
        return photo, style

    def _allocate(self) -> None:
        size = tuple(int(v) for v in self._photo["shape"][1:3])
        try:
            self.interpreter.allocate_tensors()
        except RuntimeError as err:  # an op LiteRT lacks, or shapes that do not fit together
            raise ValueError(f"{self.path}: LiteRT cannot prepare this model ({one_line(str(err).strip(), 200)}).") from err
        self._photo = next(d for d in self.interpreter.get_input_details() if d["index"] == self._photo["index"])
        self._output = self.interpreter.get_output_details()[0]
        self._drawing_shape = (1, *size, 1)
        self._check_drawing_shape(self._output["shape"])  # the declared shape was checked; this is what Prepare computed
        self.height, self.width = size
        self._pixel_lut = self._input_table(self._photo)
        # Written here, then copied in: with XNNPACK, writes through the
        # interpreter's tensor view are not seen by quantized graphs.
        self._photo_buffer = np.empty((1, *size, 3), self._photo["dtype"])
        self._drawing_lut = self._output_table(self._output)
        self._style_fed = None

    def _check_drawing_shape(self, shape) -> None:
        if tuple(int(v) for v in shape) != self._drawing_shape:
            raise ValueError(
                f"{self.path}: computes a drawing of shape {tuple(int(v) for v in shape)} for a {self._drawing_shape[1:3]} photo, "
                f"not {self._drawing_shape}; not a keras-asym generator."
            )

    def _check_size(self, image: np.ndarray) -> None:
        if tuple(image.shape[:2]) != (self.height, self.width):
            raise ValueError(
                f"{self.path}: runs at its exported size {self.height}x{self.width}, given {image.shape[0]}x{image.shape[1]} "
                "(resize the face first, or export at that size)."
            )

    @staticmethod
    def _quantize(values: np.ndarray, detail) -> np.ndarray:
        dtype = detail["dtype"]
        if dtype == np.float32:
            return values.astype(np.float32)
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(values / scale + zero), info.min, info.max).astype(dtype)

    def _input_table(self, detail) -> np.ndarray:
        return self._quantize(to_model(np.arange(256), np.float64), detail)

    def _output_table(self, detail) -> np.ndarray | None:
        dtype = detail["dtype"]
        if dtype == np.float32:
            return None
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        levels = (np.arange(info.min, info.max + 1, dtype=np.float64) - zero) * scale
        return to_pixels(levels)

    def _set_style(self, style: np.ndarray) -> None:
        if self._style is None:
            return
        values = self._quantize(np.asarray(style, np.float64)[None], self._style)
        if self._gpu is None:
            self.interpreter.set_tensor(self._style["index"], values)
        elif self._style_fed is None or not np.array_equal(values, self._style_fed):  # written once per change
            self._gpu.inputs["style"].write(values)
            self._style_fed = values

    def _invoke(self) -> np.ndarray:
        """Runs the model on the photo already in ``_photo_buffer``; the raw (1, H, W, 1) output."""
        if self._gpu is None:
            self.interpreter.set_tensor(self._photo["index"], self._photo_buffer)
            try:
                self.interpreter.invoke()
            except RuntimeError as err:
                raise ValueError(f"{self.path}: LiteRT cannot run this model ({one_line(str(err).strip(), 200)}).") from err
            out = self.interpreter.tensor(self._output["index"])()
        else:
            out = next(iter(self._gpu.run({"photo": self._photo_buffer}).values()))
        self._check_drawing_shape(out.shape)  # a dynamic tensor is sized only when the graph runs
        return out

    def draw(self, rgb: np.ndarray, style: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) uint8 drawing, at the model's size."""
        self._check_size(rgb)
        np.take(self._pixel_lut, rgb, out=self._photo_buffer[0])
        self._set_style(style)
        out = self._invoke()[0, ..., 0]
        if self._drawing_lut is not None:
            return self._drawing_lut[out.astype(np.int32) - np.iinfo(out.dtype).min]
        return to_pixels(out)

    def run(self, photo: np.ndarray, style: np.ndarray) -> np.ndarray:
        """(H, W, 3) float photo in [-1, 1] -> (H, W, 1) float drawing in [-1, 1] (for tests and parity)."""
        self._check_size(photo)
        self._photo_buffer[...] = self._quantize(np.asarray(photo, np.float64)[None], self._photo)
        self._set_style(style)
        out = np.array(self._invoke()[0])
        if out.dtype != np.float32:
            scale, zero = self._output["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return out
