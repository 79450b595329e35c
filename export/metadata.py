"""TFLite metadata (MediaPipe/TFLite Support schema) and the JSON sidecar of every export.

The metadata is what Android Studio's ML binding and the MediaPipe/LiteRT
metadata readers understand: model name, version, description, input
normalisation (mean and std ``pixels.SCALE``: pixels to [-1, 1]), image
properties, the style names as a label file on the style input. The full
JSON sidecar is also packed into the model as ``keras_asym.json``, so one
``.tflite`` file carries everything ``edge_demo`` needs.

Written here rather than with MediaPipe's ``metadata_writers``: in
mediapipe 1.2 that module fails to import (its compiled
``_pywrap_metadata_version`` is missing from the wheel). The layout is the
standard one: a ``TFLITE_METADATA`` entry in the model's metadata table
pointing at a ``ModelMetadata`` flatbuffer (identifier ``M001``), and the
associated files appended as a zip archive (a ``.tflite`` with metadata is
also a zip file).
"""

from __future__ import annotations

import io
import json
import zipfile

import flatbuffers
from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
from mediapipe.tasks.metadata import schema_py_generated as schema

from edge_demo.runtime.pixels import SCALE

SIDECAR_NAME = "keras_asym.json"
STYLES_NAME = "styles.txt"
METADATA_FIELD = "TFLITE_METADATA"
MIN_PARSER_VERSION = "1.0.0"


def _image_tensor(name: str, description: str, color_space: int, normalize: bool) -> fb.TensorMetadataT:
    tensor = fb.TensorMetadataT()
    tensor.name = name
    tensor.description = description
    tensor.content = fb.ContentT()
    tensor.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    tensor.content.contentProperties = fb.ImagePropertiesT()
    tensor.content.contentProperties.colorSpace = color_space
    stats = fb.StatsT()
    stats.min, stats.max = [-1.0], [1.0]
    tensor.stats = stats
    if normalize:
        unit = fb.ProcessUnitT()
        unit.optionsType = fb.ProcessUnitOptions.NormalizationOptions
        unit.options = fb.NormalizationOptionsT()
        unit.options.mean, unit.options.std = [SCALE], [SCALE]
        tensor.processUnits = [unit]
    return tensor


def _style_tensor() -> fb.TensorMetadataT:
    tensor = fb.TensorMetadataT()
    tensor.name = "style"
    tensor.description = "Weights of style1, style2, style3 (non-negative, summing to 1; one-hot for a pure style)."
    tensor.content = fb.ContentT()
    tensor.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
    tensor.content.contentProperties = fb.FeaturePropertiesT()
    labels = fb.AssociatedFileT()
    labels.name = STYLES_NAME
    labels.description = "Style names, one per entry of the style vector."
    labels.type = fb.AssociatedFileType.TENSOR_AXIS_LABELS
    tensor.associatedFiles = [labels]
    return tensor


def _tensor_names(model: schema.ModelT, indices) -> list[str]:
    tensors = model.subgraphs[0].tensors
    return [tensors[i].name.decode() for i in indices]


def add_metadata(model: bytes, sidecar: dict) -> bytes:
    """``model`` with metadata and the packed sidecar; ``sidecar`` holds name/version/description/styles."""
    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    inputs = _tensor_names(tree, tree.subgraphs[0].inputs)
    if len(tree.subgraphs[0].outputs) != 1:
        raise ValueError(f"expected one output tensor, got {len(tree.subgraphs[0].outputs)}.")
    photo = _image_tensor(
        "photo", "Aligned face photo, RGB, pixels normalised to [-1, 1] (see keras_asym.json).", fb.ColorSpaceType.RGB, True
    )
    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_style_tensor() if "style" in name else photo for name in inputs]
    subgraph.outputTensorMetadata = [
        _image_tensor("drawing", f"Line drawing, grayscale in [-1, 1]: pixel = (value + 1) * {SCALE}.", fb.ColorSpaceType.GRAYSCALE, False)
    ]
    metadata = fb.ModelMetadataT()
    metadata.name = sidecar["name"]
    metadata.version = sidecar["version"]
    metadata.description = sidecar["description"]
    metadata.author = "keras-asym"
    metadata.license = "MIT"
    metadata.minParserVersion = MIN_PARSER_VERSION
    packed = fb.AssociatedFileT()
    packed.name = SIDECAR_NAME
    packed.description = "Full export record: input/output contract, quantization, source model."
    metadata.associatedFiles = [packed]
    metadata.subgraphMetadata = [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), b"M001")

    buffer = schema.BufferT()
    buffer.data = builder.Output()
    tree.buffers.append(buffer)
    tree.metadata = [m for m in (tree.metadata or []) if m.name.decode() != METADATA_FIELD]
    entry = schema.MetadataT()
    entry.name = METADATA_FIELD
    entry.buffer = len(tree.buffers) - 1
    tree.metadata.append(entry)
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), b"TFL3")

    archive = io.BytesIO()
    archive.write(builder.Output())
    with zipfile.ZipFile(archive, "a", compression=zipfile.ZIP_STORED) as files:
        files.writestr(STYLES_NAME, "\n".join(sidecar["styles"]) + "\n")
        files.writestr(SIDECAR_NAME, json.dumps(sidecar, indent=2))
    return archive.getvalue()


def read_metadata(model: bytes) -> dict:
    """Name, version, description, per-input normalisation and the packed files of a model."""
    tree = schema.Model.GetRootAs(model, 0)
    for k in range(tree.MetadataLength()):
        entry = tree.Metadata(k)
        if entry.Name().decode() == METADATA_FIELD:
            data = tree.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
            break
    else:
        raise ValueError("the model has no TFLite metadata.")
    metadata = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(data, 0))
    inputs = {}
    for tensor in metadata.subgraphMetadata[0].inputTensorMetadata:
        norm = None
        for unit in tensor.processUnits or []:
            if unit.optionsType == fb.ProcessUnitOptions.NormalizationOptions:
                norm = {"mean": list(unit.options.mean), "std": list(unit.options.std)}
        inputs[tensor.name.decode()] = {"description": tensor.description.decode(), "normalization": norm}
    with zipfile.ZipFile(io.BytesIO(model)) as files:
        packed = {name: files.read(name) for name in files.namelist()}
    return {
        "name": metadata.name.decode(),
        "version": metadata.version.decode(),
        "description": metadata.description.decode(),
        "inputs": inputs,
        "styles": packed[STYLES_NAME].decode().split(),
        "keras_asym": json.loads(packed[SIDECAR_NAME]),
    }
