"""The int8 simulation quantization-aware fine-tuning trains through: faithful to the converter, sharing the weights."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from benchmarks.common.sensitivity import Sensitivity
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import ONE_HOTS
from export import tflite
from export.balance import for_integer
from export.qat_sim import QuantizationSimulation
from export.savedmodel import save_savedmodel
from keras_asym.evaluation import metrics
from keras_asym.layers.basic import InstanceNormalization
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.models.networks import StyleGenerator

# the TFLite op each of the norm's simulated tensors is written by, in the converted graph's op names
NORM_OPS = {"mean": "Mean", "centered": "sub", "squared": "mul", "variance": "Mean_1", "shifted": "add", "rsqrt": "Rsqrt"}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    keras.utils.set_random_seed(0)
    generator = StyleGenerator(ngf=8, n_blocks=1)
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(6)]
    model = for_integer(generator, photos[:4])
    sim = QuantizationSimulation(model)
    sim.calibrate(photos[:4])
    s = Sensitivity(model, 32, photos[:4], tmp_path_factory.mktemp("qat_sim"))
    return sim, photos, s.quantize()


def _keras(model, photos):
    return np.concatenate([np.asarray(model({"photo": to_model(p)[None], "style": ONE_HOTS[i % 3][None]})) for i, p in enumerate(photos)])


def test_the_simulation_without_rounding_is_the_generator_it_shares_weights_with(simulated):
    sim, photos, _ = simulated
    np.testing.assert_array_equal(sim.drawings(photos, quantized=False), _keras(sim.generator, photos))


def test_calibration_finds_the_ranges_the_converter_gives_each_norms_internal_tensors(simulated):
    sim, _, flatbuffer = simulated
    interpreter = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ranges = {}
    for op in interpreter._get_ops_details():  # noqa: SLF001  (op names and outputs; no public accessor)
        for index in op["outputs"]:
            scale, zero = tensors[index]["quantization"]
            if scale:
                ranges[tensors[index]["name"]] = ((-128 - zero) * scale, (127 - zero) * scale)
    norms = [layer for layer in sim.layers if isinstance(layer.inner, InstanceNormalization)]
    assert len(norms) == 8
    for layer in norms:
        for tensor, op in NORM_OPS.items():
            (name,) = [n for n in ranges if re.search(rf"/{layer.inner.name}(_\d+)?/{op}$", n)]
            low, high = ranges[name]
            step = (high - low) / 255
            ours = layer.tensor[tensor]
            assert abs(float(ours.low) - low) <= step and abs(float(ours.high) - high) <= step, (layer.inner.name, tensor)


def test_the_simulated_int8_drawing_is_as_far_from_float_as_the_converters(simulated):
    sim, photos, flatbuffer = simulated
    runner = Interpreter(model_content=flatbuffer).get_signature_runner()
    reference = [to_pixels(d[..., 0]) for d in sim.drawings(photos, quantized=False)]
    converted = [
        to_pixels(runner(photo=to_model(p)[None], style=ONE_HOTS[i % 3][None])["drawing"][0, ..., 0]) for i, p in enumerate(photos)
    ]
    ours = [to_pixels(d[..., 0]) for d in sim.drawings(photos, quantized=True)]
    psnr = lambda drawings: np.mean([metrics.psnr(d, r) for d, r in zip(drawings, reference)])  # noqa: E731
    assert psnr(ours) < 60, "the simulation rounds nothing"
    assert abs(psnr(ours) - psnr(converted)) < 3, (psnr(ours), psnr(converted))


def test_fine_tuning_moves_the_generators_own_weights(simulated):
    sim, photos, _ = simulated
    before = [np.asarray(w).copy() for w in sim.generator.trainable_weights]
    record = sim.finetune(photos[:4], steps=3, recalibrate_every=2)
    assert np.isfinite([record["first"], record["last"]]).all()
    assert any(not np.array_equal(b, np.asarray(w)) for b, w in zip(before, sim.generator.trainable_weights))


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    keras.utils.set_random_seed(1)
    generator = MobileStyleGenerator(alpha=0.5, n_blocks=1)
    rng = np.random.default_rng(1)
    photos = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(4)]
    x = {"photo": np.stack([to_model(p) for p in photos]), "style": np.stack([ONE_HOTS[i % 3] for i in range(4)])}
    for _ in range(3):  # batch statistics of its own, as training leaves them
        generator(x, training=True)
    for layer in generator.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.3, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, layer.moving_variance.shape))
    saved = save_savedmodel(generator, tmp_path_factory.mktemp("student") / "saved", 32, 32, batch=1)
    flatbuffer = tflite.convert(saved, "int8", photos, "uint8")
    sim = QuantizationSimulation(generator)
    sim.calibrate(photos)
    return sim, photos, flatbuffer


def test_the_students_batch_norms_fold_into_its_convolutions_without_changing_the_float_drawing(student):
    sim, photos, _ = student
    np.testing.assert_allclose(sim.drawings(photos, quantized=False), _keras(sim.generator, photos), atol=2e-5)
    assert not any(layer.inner.name.endswith("_bn") for layer in sim.layers)


def test_the_students_simulated_int8_drawing_is_as_far_from_float_as_the_converters(student, tmp_path):
    sim, photos, flatbuffer = student
    path = tmp_path / "student_int8.tflite"
    path.write_bytes(flatbuffer)
    runner = TFLiteGenerator(path, threads=1, probe=False)
    reference = [to_pixels(d[..., 0]) for d in sim.drawings(photos, quantized=False)]
    converted = [runner.draw(p, ONE_HOTS[i % 3]) for i, p in enumerate(photos)]
    ours = [to_pixels(d[..., 0]) for d in sim.drawings(photos, quantized=True)]
    psnr = lambda drawings: np.mean([metrics.psnr(d, r) for d, r in zip(drawings, reference)])  # noqa: E731
    assert psnr(ours) < 60, "the simulation rounds nothing"
    assert abs(psnr(ours) - psnr(converted)) < 3, (psnr(ours), psnr(converted))


def test_a_batch_norm_no_convolution_could_absorb_is_refused():
    photo = keras.Input((8, 8, 3), name="photo")
    style = keras.Input((3,), name="style")
    drawing = keras.layers.BatchNormalization()(keras.layers.ReLU()(keras.layers.Conv2D(1, 3, padding="same")(photo)))
    with pytest.raises(ValueError, match="batch norm"):
        QuantizationSimulation(keras.Model({"photo": photo, "style": style}, drawing))
