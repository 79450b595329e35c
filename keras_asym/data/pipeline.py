"""The training input pipeline: unpaired photos and drawings with part masks and style vectors.

Reads the layout ``prepare`` writes (and the procedural generator):

    DATASET/A/<stem>.png              aligned photos (RGB)
    DATASET/B/<stem>.png              aligned drawings (read as grayscale)
    DATASET/{A,B}_{eyes,nose,lips}/<stem>.png   part masks (0 / 255)
    DATASET/B_feat/<stem>.npy         3-dim soft style vector per drawing

Each epoch visits every photo once, in a seeded random order, and pairs it
with a random drawing (official ``unaligned_mask_stylecls``; ``serial=True``
pairs photo i with drawing i mod |B|). As the official ``resize_and_crop``
preprocessing: resize to ``load_size``, random ``image_size`` crop, random
horizontal flip, with the *same* parameters for an image and its masks
(masks resized with nearest neighbour). Images go to [-1, 1], masks to {0, 1}.
A file that fails to decode is dropped (``ignore_errors``, logged) instead of
ending the epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.styles import ONE_HOTS
from keras_asym.face.masks import PARTS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DECODABLE = ("PNG", "JPEG", "MPO", "BMP", "GIF")  # what tf.io.decode_image reads, by content (MPO: a camera's JPEG)


class DatasetLayoutError(ValueError):
    """The dataset folder does not have the expected layout."""


def _stems(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DatasetLayoutError(f"{folder}: missing folder.")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _mask_path(root: Path, side: str, part: str, stem: str) -> Path:
    return root / f"{side}_{part}" / f"{stem}.png"


def _not_an_image(path: Path) -> str | None:
    """Why the training input pipeline could not decode ``path`` (its header, read without decoding), or None."""
    try:
        with Image.open(path) as image:
            if image.format not in DECODABLE or image.width < 1 or image.height < 1:
                return f"{path}: a {image.format} image; training reads PNG, JPEG, BMP and GIF"
            image.verify()  # a PNG's chunk checksums: a damaged file is found here, not mid-epoch
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:  # PIL raises SyntaxError for bad checksums
        return f"{path}: not a readable image ({str(err)[:120]})"
    return None


def scan(root: str | Path, parts=PARTS) -> dict:
    """File lists of a dataset; items lacking a mask or a style feature are left out and reported."""
    root = Path(root)
    photos, drawings = _stems(root / "A"), _stems(root / "B")
    skipped = []
    photo_items = []
    for stem, path in photos.items():
        if (problem := _not_an_image(path)) is not None:
            skipped.append(problem)
            continue
        masks = [_mask_path(root, "A", part, stem) for part in parts]
        missing = [str(m) for m in masks if not m.is_file()]
        if missing:
            skipped.append(f"{path}: missing mask {missing[0]}")
            continue
        photo_items.append((str(path), [str(m) for m in masks]))
    drawing_items, styles = [], []
    for stem, path in drawings.items():
        if (problem := _not_an_image(path)) is not None:
            skipped.append(problem)
            continue
        masks = [_mask_path(root, "B", part, stem) for part in parts]
        feature = root / "B_feat" / f"{stem}.npy"
        missing = [str(m) for m in masks if not m.is_file()] + ([] if feature.is_file() else [str(feature)])
        if missing:
            skipped.append(f"{path}: missing {missing[0]}")
            continue
        try:  # mapped, not read: a header may declare any shape, and only 3 numbers are wanted
            with open(feature, "rb") as handle:  # np.load would open a file starting "PK" as an .npz archive
                if handle.read(6) != b"\x93NUMPY":
                    raise ValueError("not a .npy array (no NUMPY header)")
            style = np.load(feature, mmap_mode="r", allow_pickle=False)
            if style.size != 3:
                raise ValueError(f"holds {style.size} numbers, not 3")
            style = np.asarray(style, np.float32).reshape(-1)
        except (OSError, ValueError, TypeError, EOFError) as err:  # np.load raises EOFError for an empty file
            skipped.append(f"{feature}: unreadable style feature ({str(err)[:120]})")
            continue
        if style.shape != (3,) or not np.all(np.isfinite(style)) or np.any(style < 0) or style.sum() <= 0:
            skipped.append(f"{feature}: style feature must be 3 finite non-negative numbers, got {style.tolist()}")
            continue
        drawing_items.append((str(path), [str(m) for m in masks]))
        styles.append(style / style.sum())
    if not photo_items or not drawing_items:
        raise DatasetLayoutError(
            f"{root}: no usable {'photos' if not photo_items else 'drawings'} ({len(skipped)} items skipped: {skipped[:3]})."
        )
    return {"photos": photo_items, "drawings": drawing_items, "styles": np.stack(styles), "skipped": skipped}


def _decode(path, channels: int):
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return image


def _augment(image, masks, seed, load_size: int, image_size: int, flip: bool):
    """Resize to load_size, crop image_size at a seeded random offset, maybe flip; masks follow."""
    image = tf.image.resize(tf.cast(image, tf.float32), (load_size, load_size), method="bilinear", antialias=True)
    masks = tf.image.resize(tf.cast(masks, tf.float32), (load_size, load_size), method="nearest")
    stacked = tf.concat([image, masks], axis=-1)
    offset = tf.random.stateless_uniform([2], seed, 0, load_size - image_size + 1, dtype=tf.int32)
    stacked = stacked[offset[0] : offset[0] + image_size, offset[1] : offset[1] + image_size]
    if flip:
        coin = tf.random.stateless_uniform([], seed + 1) < 0.5
        stacked = tf.cond(coin, lambda: tf.reverse(stacked, axis=[1]), lambda: stacked)
    channels = image.shape[-1]
    return stacked[..., :channels], stacked[..., channels:]


def resolve_load_size(image_size: int, load_size: int | None = 0) -> int:
    """The resize before cropping: ``load_size`` if given, else the official ratio (572 for 512, 143 for 128)."""
    load_size = load_size or int(round(image_size * 572 / 512))
    if load_size < image_size:
        raise ValueError(f"load_size {load_size} is smaller than image_size {image_size}.")
    return load_size


def _style_table(info: dict, one_hot: bool):
    styles = info["styles"]
    if one_hot:
        styles = ONE_HOTS[styles.argmax(axis=1)]
    return tf.constant(styles, tf.float32)


def _element_loader(info: dict, parts, styles, load_size: int, image_size: int, serial: bool, flip: bool):
    """``load(photo index, random draw)`` -> one training element; all its randomness comes from the draw."""
    photo_paths = tf.constant([p for p, _ in info["photos"]])
    photo_masks = tf.constant([m for _, m in info["photos"]])
    drawing_paths = tf.constant([p for p, _ in info["drawings"]])
    drawing_masks = tf.constant([m for _, m in info["drawings"]])
    n_drawings = len(info["drawings"])

    def load(index, draw):
        index = tf.cast(index, tf.int32)
        element_seed = tf.stack([tf.cast(draw % 2147483647, tf.int32), index])
        if serial:
            drawing_index = index % n_drawings
        else:
            drawing_index = tf.random.stateless_uniform([], element_seed, 0, n_drawings, dtype=tf.int32)
        photo = _decode(photo_paths[index], 3)
        drawing = _decode(drawing_paths[drawing_index], 1)
        if parts:
            p_masks = tf.concat([_decode(photo_masks[index][k], 1) for k in range(len(parts))], axis=-1)
            d_masks = tf.concat([_decode(drawing_masks[drawing_index][k], 1) for k in range(len(parts))], axis=-1)
        else:  # no local discriminators: a placeholder channel keeps the augmentation code uniform
            p_masks, d_masks = tf.zeros_like(photo[..., :1]), tf.zeros_like(drawing)
        photo, p_masks = _augment(photo, p_masks, element_seed + 11, load_size, image_size, flip)
        drawing, d_masks = _augment(drawing, d_masks, element_seed + 23, load_size, image_size, flip)
        to_unit = lambda m: tf.cast(m > 127.5, tf.float32)  # noqa: E731
        return {
            "photo": to_model(photo),
            "drawing": to_model(drawing),
            "style": styles[drawing_index],
            "style_label": tf.argmax(styles[drawing_index], output_type=tf.int32),
            "photo_masks": {part: to_unit(p_masks[..., k : k + 1]) for k, part in enumerate(parts)},
            "drawing_masks": {part: to_unit(d_masks[..., k : k + 1]) for k, part in enumerate(parts)},
        }

    return load


def make_dataset(
    root: str | Path,
    image_size: int = 512,
    load_size: int | None = None,
    batch_size: int = 1,
    parts=PARTS,
    serial: bool = False,
    flip: bool = True,
    one_hot: bool = False,
    seed: int = 0,
    deterministic: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    scanned: dict | None = None,
) -> tf.data.Dataset:
    """One epoch of batches ``{"photo", "drawing", "style", "style_label", "photo_masks", "drawing_masks"}``.

    Args:
        load_size: resize before cropping; defaults to ``image_size * 572 / 512``
            (official 572 for 512).
        batch_size: per-replica batch size; incomplete batches are dropped
            (the pools and XLA want static shapes).
        one_hot: replace soft style vectors by their argmax one-hot.
        seed: seeds the photo order, the drawing choice and the augmentation;
            every epoch draws new ones, reproducibly.
        deterministic: keep element order fixed despite parallel decoding.
        input_context: from ``strategy.distribute_datasets_from_function``;
            photos are sharded across input pipelines.
    """
    load_size = resolve_load_size(image_size, load_size)
    info = scanned or scan(root, parts)
    styles = _style_table(info, one_hot)
    n_photos = len(info["photos"])

    indices = tf.data.Dataset.range(n_photos)
    if input_context is not None and input_context.num_input_pipelines > 1:
        indices = indices.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    shard = input_context.input_pipeline_id if input_context is not None else 0
    if not serial:
        indices = indices.shuffle(n_photos, seed=seed, reshuffle_each_iteration=True)
    # One random number per element, different in every epoch, reproducible from the seed.
    draws = tf.data.Dataset.random(seed=seed + 7919 * shard, rerandomize_each_iteration=True)

    load = _element_loader(info, parts, styles, load_size, image_size, serial, flip)

    dataset = tf.data.Dataset.zip(indices, draws).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def make_stream(
    root: str | Path,
    image_size: int = 512,
    load_size: int | None = None,
    batch_size: int = 1,
    parts=PARTS,
    flip: bool = True,
    one_hot: bool = False,
    seed: int = 0,
    start: int = 0,
    scanned: dict | None = None,
) -> tf.data.Dataset:
    """The endless training stream, positioned at element ``start``: batches as ``make_dataset``'s plus ``position``.

    Element ``k`` (0, 1, 2, ...) is a pure function of ``(seed, k)``: pass ``n``
    of the photos visits each photo once in a seeded order drawn for that pass,
    and the drawing and augmentation come from a draw keyed on ``k``. So the
    stream can start anywhere without reading what comes before, and a resumed
    run (``start`` = the model's ``data_position``) sees exactly the batches an
    uninterrupted one would. Each element carries its ``position`` ``k``; an
    undecodable file is dropped (logged) and the stream moves on, still
    deterministically.
    """
    load_size = resolve_load_size(image_size, load_size)
    info = scanned or scan(root, parts)
    load = _element_loader(info, parts, _style_table(info, one_hot), load_size, image_size, False, flip)
    n_photos = len(info["photos"])

    def element(k):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n_photos, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), k // n_photos])
        )
        draw = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64) + 7919, k]), maxval=2**31 - 1, dtype=tf.int64)
        return {**load(order[k % n_photos], draw), "position": k}

    dataset = tf.data.Dataset.counter(start, dtype=tf.int64).map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.ignore_errors(log_warning=True).batch(batch_size, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
