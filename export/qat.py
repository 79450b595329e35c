"""Quantization-aware fine-tuning (``qat`` variant), driven from the Keras 3 side.

``tensorflow-model-optimization`` only works on ``tf_keras`` (Keras 2), which
cannot share a process with Keras 3. So this module writes the generator's
graph (layer classes, configs, wiring) and weights to a work folder, and
``export.qat_worker`` rebuilds the same graph in ``tf_keras`` in a child
process started with ``TF_USE_LEGACY_KERAS=1``, inserts fake quantization,
fine-tunes it to reproduce the float generator's drawings (distillation: no
discriminators, no drawings needed), and converts it to a full-integer
TFLite model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from keras_asym.inference.drawer import load_generator

CONFIG_KEYS = (
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "use_bias",
    "dilation_rate",
    "activation",
    "output_padding",
    "cropping",
    "epsilon",
    "depth_multiplier",
    "size",
    "interpolation",
    "axis",
    "max_value",
    "negative_slope",
    "threshold",
)


def graph_spec(model) -> dict:
    """The functional graph of a Keras 3 model as plain data: inputs, layers in order, output."""
    ids: dict[int, int] = {}

    def tensor_id(tensor) -> int:
        return ids.setdefault(id(tensor), len(ids))

    inputs = {name: {"shape": list(t.shape[1:]), "id": tensor_id(t)} for name, t in model.input.items()}
    layers = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        node = layer._inbound_nodes[0]  # noqa: SLF001  (functional wiring; no public accessor)
        config = {k: v for k, v in layer.get_config().items() if k in CONFIG_KEYS}
        layers.append(
            {
                "class": type(layer).__name__,
                "name": layer.name,
                "config": config,
                "inputs": [tensor_id(t) for t in node.arguments.keras_tensors],
                "output": tensor_id(node.output_tensors[0]),
            }
        )
    return {"inputs": inputs, "layers": layers, "output": tensor_id(model.output)}


def run_qat(
    model_path: str | Path,
    output: Path,
    height: int,
    width: int,
    photos: list[np.ndarray],
    io_type: str = "uint8",
    steps: int = 300,
    batch_size: int = 2,
    learning_rate: float = 1e-5,
    train_size: int = 256,
    log=print,
) -> tuple[dict[str, bytes], dict]:
    """Fine-tunes with fake quantization in a ``tf_keras`` child process.

    Returns ``({"qat": full-integer flatbuffer, "qat_float_norm": flatbuffer with
    the un-annotated ops (instance norm) in float}, record)``.
    """
    generator = load_generator(model_path)
    with tempfile.TemporaryDirectory(prefix="qat.", dir=output) as tmp:
        work = Path(tmp)
        (work / "spec.json").write_text(json.dumps(graph_spec(generator)))
        weights = {f"{layer.name}/{i}": np.asarray(w) for layer in generator.layers for i, w in enumerate(layer.get_weights())}
        np.savez(work / "weights.npz", **weights)
        np.save(work / "photos.npy", np.stack(photos))
        options = {
            "height": height,
            "width": width,
            "io_type": io_type,
            "steps": steps,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "train_size": min(train_size, height, width),
        }
        (work / "options.json").write_text(json.dumps(options))
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
        started = time.perf_counter()
        log_path = output / "qat.log"
        with open(log_path, "w") as log_file:  # the whole log to qat.log, the worker's progress lines to stderr too
            worker = subprocess.Popen(
                [sys.executable, "-m", "export.qat_worker", str(work)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for line in worker.stdout:
                log_file.write(line)
                if line.startswith("qat: "):
                    print(line, end="", file=sys.stderr, flush=True)
            returncode = worker.wait()
        if returncode != 0:
            tail = "\n".join(log_path.read_text().strip().splitlines()[-15:])
            raise RuntimeError(f"QAT worker failed (exit {returncode}), log {log_path}:\n{tail}")
        record = json.loads((work / "record.json").read_text())
        record["seconds"] = round(time.perf_counter() - started, 1)
        log(f"qat: {steps} steps at {options['train_size']}px, distillation L1 {record['loss_first']:.4f} -> {record['loss_last']:.4f}")
        models = {"qat": (work / "model.tflite").read_bytes(), "qat_float_norm": (work / "model_float_norm.tflite").read_bytes()}
        return models, {"qat": {**options, **record}}
