"""A keras-asym TFLite generator behind one call: uint8 RGB face in, uint8 drawing out.

Works for every exported variant (float, float16 weights, dynamic, full
integer with uint8/int8 tensors): pixel conversion and (de)quantization are
folded into 256-entry lookup tables built once, and inputs are written
into buffers allocated once, so the per-frame path allocates nothing but
the output copy.

Delegates: ``xnnpack`` (the interpreter's default CPU delegate), ``gpu``
(LiteRT GPU delegate library, must be loadable), ``auto`` (GPU when it
loads, else XNNPACK, with one log line saying which), ``none`` (reference
kernels, for debugging).
"""

from __future__ import annotations

import ctypes
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

DELEGATES = ("auto", "xnnpack", "gpu", "none")
GPU_DELEGATE_LIBRARIES = ("libtensorflowlite_gpu_delegate.so", "libLiteRtGpuAccelerator.so")
log = logging.getLogger("edge_demo")


def parse_style(text: str) -> np.ndarray:
    """``"0.2,0.5,0.3"`` -> a normalised non-negative 3-vector; ``"1"``/``"2"``/``"3"`` -> one-hot."""
    text = text.strip()
    if text in ("1", "2", "3"):
        return np.eye(3, dtype=np.float32)[int(text) - 1]
    try:
        values = np.array([float(v) for v in text.split(",")], np.float64)
    except ValueError as err:
        raise ValueError(f"style {text!r}: expected 3 comma-separated numbers or 1/2/3.") from err
    if values.shape != (3,):
        raise ValueError(f"style {text!r}: expected 3 weights, got {values.size}.")
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"style {text!r}: weights must be finite and non-negative.")
    if values.sum() <= 0:
        raise ValueError(f"style {text!r}: weights sum to 0.")
    return (values / values.sum()).astype(np.float32)


def read_sidecar(path: str | Path) -> dict:
    """The ``keras_asym.json`` record packed in the model (a zip appended to the flatbuffer) or beside it; ``{}`` if neither."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as files:
            return json.loads(files.read("keras_asym.json"))
    except (zipfile.BadZipFile, KeyError):
        sidecar = path.with_suffix(".json")
        return json.loads(sidecar.read_text()) if sidecar.is_file() else {}


def _make_interpreter(path: Path, threads: int, delegate: str):
    from ai_edge_litert import interpreter as litert

    if delegate not in DELEGATES:
        raise ValueError(f"delegate must be one of {DELEGATES}, got {delegate!r}.")
    if delegate in ("gpu", "auto"):
        errors = []
        for library in GPU_DELEGATE_LIBRARIES:
            try:
                ctypes.CDLL(library)  # probe first: a failed load_delegate leaves an object that errors at exit
                gpu = litert.load_delegate(library)
                return litert.Interpreter(model_path=str(path), experimental_delegates=[gpu], num_threads=threads), "gpu"
            except (ValueError, OSError, RuntimeError) as err:
                errors.append(f"{library}: {err}")
        if delegate == "gpu":
            log.warning("GPU delegate unavailable (%s); falling back to XNNPACK.", "; ".join(errors))
        else:
            log.info("no GPU delegate library found; using XNNPACK.")
    if delegate == "none":
        resolver = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        return litert.Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver), "none"
    return litert.Interpreter(model_path=str(path), num_threads=threads), "xnnpack"


class TFLiteGenerator:
    """Runs a style-generator ``.tflite`` (inputs ``photo`` (1,H,W,3) and ``style`` (1,3)).

    Args:
        path: the ``.tflite`` file.
        threads: CPU threads.
        delegate: one of ``DELEGATES``.

    Attributes:
        height, width: the model's fixed input size (resizable for float models).
        delegate: the delegate in use.
        metadata: the packed ``keras_asym.json`` record (may be empty).
    """

    def __init__(self, path: str | Path, threads: int = 2, delegate: str = "xnnpack"):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such model file.")
        try:
            self.interpreter, self.delegate = _make_interpreter(self.path, threads, delegate)
        except ValueError as err:
            raise ValueError(f"{self.path}: not a loadable TFLite model ({err}).") from err
        inputs = self.interpreter.get_input_details()
        self._photo = next((d for d in inputs if len(d["shape"]) == 4), None)
        self._style = next((d for d in inputs if len(d["shape"]) == 2), None)
        if self._photo is None or self._photo["shape"][-1] != 3:
            raise ValueError(f"{self.path}: no (1, H, W, 3) photo input; not a keras-asym generator.")
        self.metadata = read_sidecar(self.path)
        self._shape = None
        self._allocate(tuple(int(v) for v in self._photo["shape"][1:3]))

    def _allocate(self, size: tuple[int, int]) -> None:
        if self._shape == size:
            return
        fixed = tuple(int(v) for v in self._photo["shape"][1:3])
        if size != fixed:
            self.interpreter.resize_tensor_input(self._photo["index"], (1, *size, 3))
        self.interpreter.allocate_tensors()
        self._photo = next(d for d in self.interpreter.get_input_details() if d["index"] == self._photo["index"])
        self._output = self.interpreter.get_output_details()[0]
        self.height, self.width = size
        self._shape = size
        self._pixel_lut = self._input_table(self._photo)
        # Written here, then copied in: with XNNPACK, writes through the
        # interpreter's tensor view are not seen by quantized graphs.
        self._photo_buffer = np.empty((1, *size, 3), self._photo["dtype"])
        self._drawing_lut = self._output_table(self._output)

    @staticmethod
    def _quantize(values: np.ndarray, detail) -> np.ndarray:
        dtype = detail["dtype"]
        if dtype == np.float32:
            return values.astype(np.float32)
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(values / scale + zero), info.min, info.max).astype(dtype)

    def _input_table(self, detail) -> np.ndarray:
        return self._quantize(np.arange(256, dtype=np.float64) / 127.5 - 1.0, detail)

    def _output_table(self, detail) -> np.ndarray | None:
        dtype = detail["dtype"]
        if dtype == np.float32:
            return None
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        levels = (np.arange(info.min, info.max + 1, dtype=np.float64) - zero) * scale
        return np.clip((levels + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)

    def _set_style(self, style: np.ndarray) -> None:
        if self._style is not None:
            self.interpreter.set_tensor(self._style["index"], self._quantize(np.asarray(style, np.float64)[None], self._style))

    def draw(self, rgb: np.ndarray, style: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) uint8 drawing (resizes float models to other sizes)."""
        self._allocate(rgb.shape[:2])
        np.take(self._pixel_lut, rgb, out=self._photo_buffer[0])
        self.interpreter.set_tensor(self._photo["index"], self._photo_buffer)
        self._set_style(style)
        self.interpreter.invoke()
        out = self.interpreter.tensor(self._output["index"])()[0, ..., 0]
        if self._drawing_lut is not None:
            return self._drawing_lut[out.astype(np.int32) - np.iinfo(out.dtype).min]
        return np.clip((out + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)

    def run(self, photo: np.ndarray, style: np.ndarray) -> np.ndarray:
        """(H, W, 3) float photo in [-1, 1] -> (H, W, 1) float drawing in [-1, 1] (for tests and parity)."""
        self._allocate(photo.shape[:2])
        self.interpreter.set_tensor(self._photo["index"], self._quantize(np.asarray(photo, np.float64)[None], self._photo))
        self._set_style(style)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])[0]
        if out.dtype != np.float32:
            scale, zero = self._output["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return out
