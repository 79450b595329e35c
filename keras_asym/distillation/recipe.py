"""Distilling a teacher style generator (the paper's G) into the mobile generator: data and the run.

``DistillConfig`` (``config.py``) is the recipe; ``run`` draws the photos
with the teacher once (cached in the run folder), trains the student with ``fit`` (resumable at the
exact step) and scores it against the teacher on held-out photos.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge_demo.runtime import cli
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import ONE_HOTS
from keras_asym.data.jitter import jitter_photo
from keras_asym.data.procedural import render_photo, sample_face
from keras_asym.distillation.config import DistillConfig
from keras_asym.distillation.model import DistillationModel
from keras_asym.distillation.teacher import targets, teacher_features
from keras_asym.evaluation import metrics
from keras_asym.evaluation.metrics import conv_gflops
from keras_asym.inference.keras_generator import load_generator
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.training.backup import BackupStore, StepBackup
from keras_asym.training.callbacks import EpochCheckpoint, ProgressCallback, StopOnNonFiniteLoss
from keras_asym.training.loop import fit_resumable
from keras_asym.utils.imageio import (
    ImageReadError,
    fit_to_size,
    list_images,
    read_rgb,
    save_keras_atomic,
    write_bytes_atomic,
    write_json_atomic,
)


def load_photos(folders: list[str], procedural: int, size: int, seed: int, augment: int = 0) -> dict:
    """uint8 photos at ``size``: folder photos (unreadable files skipped and reported), procedural ones,
    then ``augment`` jittered copies of each folder photo.

    Returns ``{"photos", "source", "real", "skipped"}``: ``source[i]`` is the photo a copy was made from
    (``i`` itself for originals), so held-out photos take their copies with them; ``real`` marks folder photos.
    """
    photos, skipped = [], []
    for folder in folders:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{folder}: no such photo folder.")
        for path in list_images(folder):
            try:
                photos.append(fit_to_size(read_rgb(path), size, size))
            except ImageReadError as err:
                skipped.append(str(err))
    n_real = len(photos)
    if procedural:
        rng = np.random.default_rng(seed + 1)
        photos += [render_photo(sample_face(rng), size)[0] for _ in range(procedural)]
    if not photos:
        raise ValueError("no photos: give --photos folders or --procedural N.")
    source = list(range(len(photos)))
    rng = np.random.default_rng(seed + 2)
    for i in range(n_real):
        photos += [jitter_photo(photos[i], rng) for _ in range(augment)]
        source += [i] * augment
    real = np.array([s < n_real for s in source])
    return {"photos": np.stack(photos), "source": np.array(source), "real": real, "skipped": skipped}


def example_rows(source: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo index, style) rows: every original photo in the 3 one-hot styles and one random mixture; every
    jittered copy in one of those four, in turn (the copies add faces, not styles)."""
    rng = np.random.default_rng(seed)
    index, styles = [], []
    for i, s in enumerate(source):
        mixture = rng.dirichlet([1, 1, 1]).astype(np.float32)
        choices = [*ONE_HOTS, mixture]
        if s == i:
            index += [i] * 4
            styles += choices
        else:
            index.append(i)
            styles.append(choices[(i - s) % 4])
    return np.array(index), np.stack(styles)


def teacher_drawings(
    teacher, photos: np.ndarray, source: np.ndarray, seed: int, batch: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo index, style, drawing) rows of ``example_rows``, drawn by the teacher."""
    index, styles = example_rows(source, seed)
    return index, styles, targets(teacher, photos, index, styles, batch=batch)["drawings"]


def split_examples(source: np.ndarray, index: np.ndarray, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(held-out original photos, training rows, evaluation rows): a held-out photo's jittered copies
    are neither trained on nor scored, so the score is on faces the student never saw."""
    originals = np.flatnonzero(source == np.arange(len(source)))
    held_out = np.random.default_rng(seed).permutation(originals)[: max(1, int(round(holdout * len(originals))))]
    example_rows = np.isin(source[index], held_out)
    return held_out, np.flatnonzero(~example_rows), np.flatnonzero(example_rows & np.isin(index, held_out))


def make_dataset(
    photos: np.ndarray,
    examples: list,
    batch_size: int,
    seed: int,
    training: bool,
    crop: int = 0,
    weights=None,
    crop_grid: int = 1,
    start: int = 0,
):
    """Batches ``({"photo", "style"}, teacher drawing)`` in [-1, 1] from ``(photo index, style, drawing)`` arrays;
    from ``(photo index, style, drawing, features)`` arrays the target is ``{"drawing", "features"}``, the features
    (at 1/8 of the photo's resolution) cropped with the photo.

    Training: each array triple in ``examples`` is shuffled and repeated, the triples are mixed by
    ``weights``, and every example gets its own seeded random crop (``crop`` > 0) whose corner lies on a
    ``crop_grid`` pixel grid. A strided network's output depends on where an edge falls on its stride grid
    (the paper's G shifted by 1 px scores SSIM 0.88 against itself, by its stride 4 px 0.96), so crops
    off the grid ask the student for a drawing the teacher makes at another phase. Pairs are never
    mirrored: a trained G is not mirror-equivariant (teacher(mirrored photo), mirrored back, scores
    SSIM 0.83 against teacher(photo)), so a mirrored pair would teach a drawing the teacher does not
    make; mirrored faces come from the jittered copies, drawn by the teacher itself.
    The training stream is a pure function of the seed: ``start`` skips that many examples (only their
    indices are drawn, nothing is decoded or cropped), so a resumed run continues with the very batches an
    uninterrupted run would have seen next.
    Evaluation: whole images, once, in order.
    """
    kept = [(tuple(e), w) for e, w in zip(examples, weights or [1.0] * len(examples)) if len(e[0])]
    photos = tf.constant(photos)

    def with_features(drawing, row):  # the target: the drawing, and the teacher's features where the rows have them
        return {"drawing": drawing, "features": tf.cast(row[3], tf.float32)} if len(row) == 4 else drawing

    parts = [tf.data.Dataset.from_tensor_slices(e) for e, _ in kept]
    if not training:
        dataset = parts[0]
        for part in parts[1:]:
            dataset = dataset.concatenate(part)
        return (
            dataset.map(
                lambda *row: (
                    {"photo": to_model(tf.cast(tf.gather(photos, row[0]), tf.float32)), "style": row[1]},
                    with_features(to_model(tf.cast(row[2][..., None], tf.float32)), row),
                )
            )
            .batch(batch_size)
            .prefetch(2)
        )

    def to_example(step, example):
        i, style, drawing = example[:3]
        pair = to_model(tf.concat([tf.cast(tf.gather(photos, i), tf.float32), tf.cast(drawing[..., None], tf.float32)], axis=-1))
        if crop:
            corners = (tf.shape(pair)[:2] - crop) // crop_grid + 1
            draw = tf.random.stateless_uniform([2], seed=tf.stack([step, tf.cast(seed, tf.int64)]), minval=0, maxval=2**30, dtype=tf.int32)
            corner = draw % corners * crop_grid
            pair = tf.slice(pair, tf.concat([corner, [0]], 0), [crop, crop, 4])
            if len(example) == 4:  # the features' crop: the same square at their resolution
                stride = tf.shape(drawing)[0] // tf.shape(example[3])[0]
                cell = crop // stride
                example = (*example[:3], tf.slice(example[3], tf.concat([corner // stride, [0]], 0), [cell, cell, -1]))
        return {"photo": pair[..., :3], "style": style}, with_features(pair[..., 3:], example)

    parts = [
        part.shuffle(len(e[0]), seed=seed + k, reshuffle_each_iteration=True).repeat() for k, (part, (e, _)) in enumerate(zip(parts, kept))
    ]
    dataset = parts[0] if len(parts) == 1 else tf.data.Dataset.sample_from_datasets(parts, weights=[w for _, w in kept], seed=seed)
    dataset = dataset.enumerate().skip(start)
    return (
        dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size, drop_remainder=True).prefetch(2)
    )


def training_phases(
    epochs: int, crop: int, full_size_epochs: int, batch_size: int, full_size_batch: int
) -> list[tuple[int, int, int, int]]:
    """``(first epoch, end epoch, crop, batch size)`` of each ``fit``: crops, then whole images (crop 0).

    The student runs on whole images; after crops alone it has never seen a face's whole context or the
    image borders (on the reference teacher, 400 whole-image steps after 7,200 crop steps raise the
    held-out real-photo SSIM from 0.838 to 0.849). Empty phases are left out.
    """
    if not crop:
        return [(0, epochs, 0, batch_size)]
    switch = max(0, epochs - full_size_epochs)
    phases = [(0, switch, crop, batch_size), (switch, epochs, 0, full_size_batch)]
    return [phase for phase in phases if phase[1] > phase[0]]


def _save_cache(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **cache)
    write_bytes_atomic(path, buffer.getvalue())


def evaluate_student(student, teacher_cache: dict, photos: np.ndarray, held_out: np.ndarray) -> dict:
    """SSIM and edge-F1 of the student against the teacher, per style, on held-out photos."""
    result = {}
    index, styles, drawings = teacher_cache["index"], teacher_cache["styles"], teacher_cache["drawings"]
    for k in range(3):
        rows = [r for r in np.flatnonzero(np.isin(index, held_out)) if styles[r, k] == 1.0]
        ssim, f1 = [], []
        for r in rows:
            x = to_model(photos[index[r]][None])
            y = np.asarray(student({"photo": x, "style": styles[r][None]}, training=False))[0, ..., 0]
            y = to_pixels(y)
            ssim.append(metrics.ssim(y, drawings[r]))
            f1.append(metrics.edge_f1(y, drawings[r]))
        result[f"style{k + 1}"] = {"ssim": float(np.mean(ssim)), "edge_f1": float(np.mean(f1)), "photos": len(rows)}
    return result


def run(config: DistillConfig, resume: bool = False, verbose: int = 2) -> dict:
    """Distils ``config.teacher`` into a student in ``config.output``; returns the report written to ``eval.json``."""
    run_dir = Path(config.output)
    keras.utils.set_random_seed(config.seed)
    cache_path = run_dir / "teacher_cache.npz"
    teacher = None
    if resume and cache_path.is_file():
        with np.load(cache_path) as data:
            cache = dict(data)
    else:
        teacher = load_generator(config.teacher)
        loaded = load_photos(config.photos, config.procedural, config.size, config.seed, config.augment)
        for line in loaded.pop("skipped"):
            cli.skipped(line)
        started = time.perf_counter()
        index, styles = example_rows(loaded["source"], config.seed)
        drawn = targets(teacher, loaded["photos"], index, styles, features=bool(config.feature_weight))
        print(
            f"distill: teacher drew {len(index)} examples from {len(loaded['photos'])} photos in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        cache = {**loaded, "index": index, "styles": styles, **drawn}
        _save_cache(cache_path, cache)
    if config.feature_weight and "features" not in cache:  # a cache made without them: added once
        started = time.perf_counter()
        teacher = teacher or load_generator(config.teacher)
        cache["features"] = teacher_features(teacher, cache["photos"], cache["index"], cache["styles"])
        print(f"distill: teacher features of {len(cache['index'])} examples in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        _save_cache(cache_path, cache)
    photos = cache["photos"]
    source = cache.get("source", np.arange(len(photos)))
    real = cache.get("real", np.zeros(len(photos), bool))
    held_out, train_rows, eval_rows = split_examples(source, cache["index"], config.holdout, config.seed)

    def examples(rows):
        features = (cache["features"][rows],) if config.feature_weight else ()
        return (cache["index"][rows], cache["styles"][rows], cache["drawings"][rows], *features)

    from_real = real[cache["index"][train_rows]]
    share = config.real_share

    student = MobileStyleGenerator(
        alpha=config.alpha,
        n_blocks=config.n_blocks,
        full_res_conv=config.full_res_conv,
        global_context=config.global_context,
        context_everywhere=config.context_everywhere,
        instance_norm=config.instance_norm,
        transposed_up=config.transposed_up,
        teacher_grid=config.teacher_grid,
        bottleneck_stride=config.bottleneck_stride,
    )
    model = DistillationModel(
        student,
        edge_weight=config.edge_weight,
        ssim_weight=config.ssim_weight,
        feature_weight=config.feature_weight,
        feature_channels=cache["features"].shape[-1] if config.feature_weight else 0,
    )
    total = config.epochs * config.steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(config.lr, total, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    model({"photo": np.zeros((1, config.size, config.size, 3), np.float32), "style": ONE_HOTS[:1]})
    model.optimizer.build(model.trained_variables)  # so backups carry the optimizer state from the start
    val = make_dataset(photos, [examples(eval_rows)], config.batch_size, config.seed, False)
    steps = config.steps_per_epoch
    store = BackupStore(run_dir / "backup")
    state = store.restore(model) if resume else None
    start_step = int(state["step"]) if state else 0
    callbacks = [
        StopOnNonFiniteLoss(),
        EpochCheckpoint(run_dir, keep=2, export_every=0),
        StepBackup(store, steps, every=config.backup_every, start_step=start_step),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), update_freq="epoch", write_graph=False),
    ]
    if verbose:  # one line per 30 s with an ETA over all phases (Keras prints per epoch at most, off a terminal)
        callbacks.append(ProgressCallback("distill", config.epochs * steps, interval=30.0, keys=("loss",), start=start_step))
    logs, phases = {}, []
    for first, end, crop, batch_size in training_phases(
        config.epochs, config.crop, config.full_size_epochs, config.batch_size, config.full_size_batch
    ):

        def train_at(step, first=first, crop=crop, batch_size=batch_size):
            return make_dataset(
                photos,
                [examples(train_rows[from_real]), examples(train_rows[~from_real])],
                batch_size,
                config.seed + first,
                True,
                crop=crop,
                weights=[share, 1.0 - share],
                crop_grid=config.crop_grid,
                start=(step - first * steps) * batch_size,
            )

        size = crop or config.size
        phases.append({"epochs": [first + 1, end], "batch": [batch_size, size, size, 3]})
        if start_step >= end * steps:
            continue  # finished before the resume
        # A new trace per batch shape: a retrace would relax it to unknown sizes, which bilinear UpSampling2D cannot trace.
        model.make_train_function(force=True)
        for history in fit_resumable(
            model,
            train_at,
            start_step=max(start_step, first * steps),
            first_epoch=first,
            epochs=end,
            steps_per_epoch=steps,
            callbacks=callbacks,
            validation_data=val,
            verbose=verbose,
        ):
            logs.update({k: float(v[-1]) for k, v in history.history.items() if v})
    final = run_dir / "generators" / "generator.keras"
    final.parent.mkdir(parents=True, exist_ok=True)
    save_keras_atomic(student, final)
    size = config.size
    by_source = {
        name: subset for name, subset in (("photos", held_out[real[held_out]]), ("procedural", held_out[~real[held_out]])) if len(subset)
    }
    report = {
        "student": {
            "alpha": config.alpha,
            "n_blocks": config.n_blocks,
            "full_res_conv": config.full_res_conv,
            "global_context": config.global_context,
            "context_everywhere": config.context_everywhere,
            "instance_norm": config.instance_norm,
            "transposed_up": config.transposed_up,
            "teacher_grid": config.teacher_grid,
            "bottleneck_stride": config.bottleneck_stride,
            "params": int(student.count_params()),
            "gflops": conv_gflops(student, size, size),
        },
        "teacher": config.teacher,
        "feature_weight": config.feature_weight,
        "size": size,
        "held_out_photos": int(len(held_out)),
        "training_examples": {"photos": int(from_real.sum()), "procedural": int((~from_real).sum())},
        "vs_teacher": evaluate_student(student, cache, photos, held_out),
        "vs_teacher_by_source": {name: evaluate_student(student, cache, photos, subset) for name, subset in by_source.items()},
        "phases": phases,
        "logs": logs,
        "generator": str(final),
    }
    write_json_atomic(run_dir / "eval.json", report)
    return report
