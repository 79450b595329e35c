"""tf.data pipeline: layout, shared augmentation of images and masks, seeds, bad files, sharding."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_asym.data.pipeline import DatasetLayoutError, _augment, make_dataset, scan
from keras_asym.face.masks import PARTS

BOXES = {"eyes": (10, 20, 30, 60), "nose": (30, 40, 35, 45), "lips": (50, 60, 25, 55)}  # y0, y1, x0, x1


def _write_dataset(root, n_photos=4, n_drawings=3, size=80):
    rng = np.random.default_rng(0)
    for side, count in (("A", n_photos), ("B", n_drawings)):
        (root / side).mkdir(parents=True)
        for part in PARTS:
            (root / f"{side}_{part}").mkdir()
        for i in range(count):
            stem = f"{side.lower()}{i}"
            # Image content marks the eyes box, so augmentation consistency is visible.
            image = rng.integers(0, 100, (size, size, 3), dtype=np.uint8)
            y0, y1, x0, x1 = BOXES["eyes"]
            image[y0:y1, x0:x1] = 255
            if side == "B":
                image = image[..., :1].repeat(3, axis=2)
            Image.fromarray(image).save(root / side / f"{stem}.png")
            for part, (y0, y1, x0, x1) in BOXES.items():
                mask = np.zeros((size, size), np.uint8)
                mask[y0:y1, x0:x1] = 255
                Image.fromarray(mask).save(root / f"{side}_{part}" / f"{stem}.png")
    (root / "B_feat").mkdir()
    for i in range(n_drawings):
        np.save(root / "B_feat" / f"b{i}.npy", np.eye(3, dtype=np.float32)[i % 3] * 0.8 + 0.1)
    return root


@pytest.fixture
def dataset_root(tmp_path):
    return _write_dataset(tmp_path / "data")


def _epoch(dataset):
    return [tf.nest.map_structure(np.asarray, batch) for batch in dataset]


def test_batches_have_the_model_layout(dataset_root):
    batches = _epoch(make_dataset(dataset_root, image_size=64, load_size=72, batch_size=2))
    assert len(batches) == 2
    batch = batches[0]
    assert batch["photo"].shape == (2, 64, 64, 3) and batch["drawing"].shape == (2, 64, 64, 1)
    assert batch["photo"].min() >= -1 and batch["photo"].max() <= 1
    assert set(batch["photo_masks"]) == set(PARTS) and batch["drawing_masks"]["lips"].shape == (2, 64, 64, 1)
    assert set(np.unique(batch["photo_masks"]["nose"])) <= {0.0, 1.0}
    np.testing.assert_allclose(batch["style"].sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(batch["style_label"], batch["style"].argmax(axis=1))


def test_image_and_masks_share_the_crop_and_flip(dataset_root):
    for batch in _epoch(make_dataset(dataset_root, image_size=64, load_size=72, batch_size=1, seed=3)):
        for image_key, mask_key in (("photo", "photo_masks"), ("drawing", "drawing_masks")):
            bright = batch[image_key][0, :, :, 0] > 0.99
            eyes = batch[mask_key]["eyes"][0, :, :, 0] > 0.5
            assert np.logical_xor(bright, eyes).mean() < 0.03


def test_augment_is_the_same_eagerly_and_in_tf_data():
    image = tf.constant(np.random.default_rng(1).integers(0, 255, (40, 40, 3)), tf.uint8)
    masks = tf.constant(np.random.default_rng(2).integers(0, 2, (40, 40, 2)) * 255, tf.uint8)
    seed = tf.constant([5, 7])
    eager = _augment(image, masks, seed, 44, 32, True)
    graph = next(iter(tf.data.Dataset.from_tensors((image, masks)).map(lambda i, m: _augment(i, m, seed, 44, 32, True))))
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)


def test_seeded_runs_repeat_and_epochs_differ(dataset_root):
    def first(seed):
        return make_dataset(dataset_root, image_size=64, load_size=72, seed=seed, deterministic=True)

    a, b = _epoch(first(1)), _epoch(first(1))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["photo"], y["photo"])
    dataset = first(1)
    epoch1, epoch2 = _epoch(dataset), _epoch(dataset)
    assert any(np.abs(x["photo"] - y["photo"]).max() > 0 for x, y in zip(epoch1, epoch2))


def test_a_corrupt_file_is_skipped_not_fatal(dataset_root):
    (dataset_root / "A" / "a2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    batches = _epoch(make_dataset(dataset_root, image_size=64, load_size=72, batch_size=1))
    assert len(batches) == 3


def test_incomplete_items_are_reported_and_left_out(dataset_root):
    (dataset_root / "A_lips" / "a1.png").unlink()
    (dataset_root / "B_feat" / "b2.npy").unlink()
    info = scan(dataset_root)
    assert len(info["photos"]) == 3 and len(info["drawings"]) == 2
    assert any("a1.png: missing mask" in line for line in info["skipped"])
    assert any("b2.npy" in line for line in info["skipped"])
    for p in (dataset_root / "B").iterdir():
        p.unlink()
    with pytest.raises(DatasetLayoutError, match="no usable drawings"):
        scan(dataset_root)


def test_undecodable_images_and_oversized_style_features_are_reported_and_left_out(dataset_root):
    (dataset_root / "A" / "a0.png").write_bytes(b"not an image")
    raw = bytearray((dataset_root / "A" / "a1.png").read_bytes())
    raw[-20] ^= 0xFF  # a damaged chunk: the header still reads
    (dataset_root / "A" / "a1.png").write_bytes(bytes(raw))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(dataset_root / "A" / "a2.png", format="TIFF")
    # a header declaring 2**40 float64 values (8 TiB) in a 200-byte file
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    (dataset_root / "B_feat" / "b1.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b" " * 16)
    np.save(dataset_root / "B_feat" / "b2.npy", np.float32([-1.0, 1.0, 1.0]))  # sums to 1, but a weight is negative
    info = scan(dataset_root)
    assert [p for p, _ in info["photos"]] == [str(dataset_root / "A" / "a3.png")]
    assert any("a0.png: not a readable image" in line for line in info["skipped"])
    assert any("a1.png: not a readable image" in line for line in info["skipped"])
    assert any("a2.png: a TIFF image" in line for line in info["skipped"])
    assert any("b1.npy: unreadable style feature" in line for line in info["skipped"])
    assert any("b2.npy: style feature must be 3 finite non-negative numbers" in line for line in info["skipped"])
    assert len(info["drawings"]) == 1
    assert len(_epoch(make_dataset(dataset_root, image_size=64, load_size=64))) == 1  # what is left trains


def test_serial_mode_and_one_hot_styles(dataset_root):
    batches = _epoch(make_dataset(dataset_root, image_size=64, load_size=64, flip=False, serial=True, one_hot=True, deterministic=True))
    styles = [b["style"][0] for b in batches]
    np.testing.assert_array_equal(styles, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])


def test_sharding_splits_photos_between_input_pipelines(dataset_root):
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        seen.append(len(_epoch(make_dataset(dataset_root, image_size=64, load_size=64, input_context=context))))
    assert seen == [2, 2]
