"""The held-out split the quantization and distillation benchmarks score on."""

import cv2
import numpy as np

from benchmarks.common.heldout import photo_split


def _shared_photos(root, count):
    folder = root / "data" / "aligned_photos" / "images"
    folder.mkdir(parents=True)
    for k in range(count):
        cv2.imwrite(str(folder / f"face{k:02d}.png"), np.full((8, 8, 3), k, np.uint8))


def test_each_half_holds_exactly_its_photos_even_after_a_split_with_another_count(tmp_path, monkeypatch):
    _shared_photos(tmp_path / "shared", 20)
    monkeypatch.setenv("KERAS_ASYM_SHARED", str(tmp_path / "shared"))
    work = tmp_path / "split"
    photo_split(2, work)  # a smoke run with few held-out photos, then the benchmarks' split
    quality, calibration = photo_split(10, work)
    held = {p.name for p in quality.iterdir()}
    fitted = {p.name for p in calibration.iterdir()}
    assert len(held) == 10 and len(fitted) == 10
    assert held.isdisjoint(fitted)
    assert held | fitted == {f"face{k:02d}.png" for k in range(20)}
    assert photo_split(10, work) == (quality, calibration)
    assert {p.name for p in quality.iterdir()} == held


def test_without_enough_shared_photos_there_is_no_split(tmp_path, monkeypatch):
    _shared_photos(tmp_path / "shared", 13)
    monkeypatch.setenv("KERAS_ASYM_SHARED", str(tmp_path / "shared"))
    assert photo_split(10, tmp_path / "split") == (None, None)
