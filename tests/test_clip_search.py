"""The norm-input clip of a full-integer export: a given quantile, or the one whose int8 drawing is closest to float."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from export import activation_ranges, clip_search, exporter, tflite
from export.balance import CLIP_QUANTILE
from keras_asym.models.networks import StyleGenerator

SIZE = 32


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(0)
    return StyleGenerator(ngf=4, n_blocks=1, model0_res=1)


def _photos(count=4):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(count)]


def test_a_clip_quantile_is_auto_or_a_share_in_0_1():
    assert clip_search.parse("auto") == "auto"
    assert clip_search.parse("0.999") == 0.999 and clip_search.parse(1) == 1.0
    for bad in ("abc", "0", "1.5", "-0.1", None):
        with pytest.raises(ValueError, match=repr(bad)):
            clip_search.parse(bad)


@pytest.fixture(scope="module")
def searched(generator):
    """One search over two candidates and the clip it refines between them (each clip costs a conversion)."""
    return clip_search.choose(generator, _photos(), SIZE, SIZE, candidates=(0.6, CLIP_QUANTILE), log=lambda *a: None)


def test_the_search_keeps_the_candidate_whose_int8_drawing_is_closest_to_float(searched):
    assert {"0.6", f"{CLIP_QUANTILE:g}"} < set(searched.scores)
    # clipping 40% of every norm input changes the function itself; the search must see that in the int8 drawings
    assert searched.scores[f"{CLIP_QUANTILE:g}"] > searched.scores["0.6"] + 3
    assert searched.scores[f"{searched.clip:g}"] == max(searched.scores.values())


def test_one_more_clip_is_tried_between_the_best_candidate_and_its_better_neighbour():
    grid = (0.9999, 0.9995, 0.999, 0.998)
    scores = {"0.9999": 28.0, "0.9995": 28.8, "0.999": 29.2, "0.998": 28.1}
    assert clip_search.refined(grid, scores) == 0.99929  # tail shares 5e-4 and 1e-3: their geometric mean, 7.1e-4
    assert clip_search.refined(grid, {**scores, "0.998": 29.0}) == 0.9986  # the other side when it scores better (1.4e-3)
    assert clip_search.refined(grid, {**scores, "0.9999": 30.0}) == 0.99978  # an end has one neighbour
    assert clip_search.refined(grid, {**scores, "0.99929": 29.5}) is None  # tried already
    assert clip_search.refined((0.999,), {"0.999": 29.0}) is None
    assert clip_search.refined((0.9995, 0.9995, 0.999), {"0.9995": 29.0, "0.999": 28.0}) == 0.99929  # not its own copy
    assert 0.99894 < clip_search.refined((0.99896, 0.99894), {"0.99896": 29.0, "0.99894": 28.0}) < 0.99896  # inside


def test_the_refined_clip_is_scored_and_the_best_of_all_is_kept(searched):
    choice = searched
    between = clip_search.refined((0.6, CLIP_QUANTILE), {k: v for k, v in choice.scores.items() if k in ("0.6", f"{CLIP_QUANTILE:g}")})
    assert 0.6 < between < CLIP_QUANTILE and set(choice.scores) == {"0.6", f"{CLIP_QUANTILE:g}", f"{between:g}"}
    assert choice.scores[f"{choice.clip:g}"] == max(choice.scores.values())


@pytest.mark.parametrize("corrected", [False, True])
def test_each_clip_is_scored_on_the_very_int8_file_the_exporter_ships_at_it(generator, tmp_path, corrected):
    photos, _ = tflite.calibration_photos(None, SIZE, SIZE, 4)  # what the exporter calibrates on without a folder
    choice = clip_search.choose(
        generator, photos, SIZE, SIZE, candidates=(0.999,), range_quantile=0.9999, correct_variance_bias=corrected, log=lambda *a: None
    )
    assert choice.ranges["0.999"]["quantile"] == 0.9999
    # the correction is measured in, and scored on, the file at the chosen ranges: it moves the score
    assert (choice.variance_bias is not None and choice.variance_bias["norms_corrected"] > 0) == corrected
    assert ("int8_psnr_db_before_variance_correction" in choice.ranges["0.999"]) == corrected
    path = tmp_path / "g.keras"
    generator.save(path)
    exporter.export_generator(
        path, tmp_path / "out", size=(SIZE, SIZE), variants=("int8",), calibration_count=4, per_op_report=False,
        gpu_check="off", clip_quantile=0.999, range_quantile=0.9999, correct_variance_bias=corrected, log=lambda *a: None,
    )  # fmt: skip
    shipped = (tmp_path / "out" / "drawing_int8.tflite").read_bytes()
    reference = tflite.keras_drawings(generator, photos)
    assert tflite.drawing_psnr(shipped, photos, reference, tmp_path / "scored.tflite") == choice.scores["0.999"]


def test_an_auto_export_converts_at_the_chosen_clip_and_records_the_search(generator, tmp_path, monkeypatch):
    # two clips and two range quantiles instead of four of each: the search's bookkeeping, at half the conversions
    monkeypatch.setattr(clip_search, "CANDIDATES", (CLIP_QUANTILE, 0.999))
    monkeypatch.setattr(activation_ranges, "CANDIDATES", (activation_ranges.EXTREMES, 0.9999))
    path = tmp_path / "g.keras"
    generator.save(path)
    summary = exporter.export_generator(
        path, tmp_path / "out", size=(SIZE, SIZE), variants=("int8",), calibration_count=4, per_op_report=False,
        gpu_check="off", clip_quantile="auto", log=lambda *a: None,
    )  # fmt: skip
    search = summary["clip_search"]
    scored = set(search["int8_psnr_db_on_calibration"])
    assert scored > {f"{q:g}" for q in clip_search.CANDIDATES} and len(scored) == len(clip_search.CANDIDATES) + 1
    assert search["int8_psnr_db_on_calibration"][f"{search['chosen']:g}"] == max(search["int8_psnr_db_on_calibration"].values())
    sidecar = json.loads((tmp_path / "out" / "drawing_int8.json").read_text())
    assert sidecar["norm_inputs_clipped_at"] == search["chosen"]
    # the activation ranges searched at the chosen clip are the ones shipped, with their scores
    assert sidecar["activation_ranges"]["quantile"] == search["activation_range_quantiles"][f"{search['chosen']:g}"]
    assert len(sidecar["activation_ranges"]["int8_psnr_db_on_calibration"]) == len(activation_ranges.CANDIDATES)
    # scored after the variance correction that ships (the default), each clip's score before it kept beside it
    assert sidecar["variance_bias"]["norms_corrected"] > 0
    assert set(search["int8_psnr_db_before_variance_correction"]) == scored


def test_the_exporter_refuses_a_bad_clip_quantile_in_one_line_before_loading_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "export", "--model", str(tmp_path / "missing.keras"), "--output", str(tmp_path / "o"),
         "--size", "32", "--clip_quantile", "1.5"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "'1.5'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
