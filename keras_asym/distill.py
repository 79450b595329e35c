"""Distil a teacher style generator (the paper's G) into a mobile generator, with ``fit``.

    python -m keras_asym.distill --teacher runs/x/generators/generator.keras --output runs/student
    python -m keras_asym.distill --teacher t.keras --photos data/aligned --procedural 400 --alpha 0.5 --output runs/s
    python -m keras_asym.distill --teacher t.keras --photos data/aligned --augment 12 --crop 128 --full_size_epochs 2 --output runs/s
    python -m keras_asym.distill --output runs/student --resume

Photos (``--photos``: aligned faces; ``--procedural N`` adds procedural
portraits) are drawn by the teacher once, in each of the three styles and in
one random style mixture, and cached in the run folder
(``teacher_cache.npz``). ``--augment K`` adds K jittered copies of every
folder photo (small warp, light, colour, blur, noise; one style each), so a
few dozen real faces become a few hundred teacher drawings. The student then
learns those drawings with L1, an edge and an SSIM term (``keras_asym.models.distillation``),
on random ``--crop`` squares (4x cheaper steps at half size; the network is
fully convolutional) cornered on an 8-pixel grid (``--crop_grid``), with
``--real_share`` of every batch from real photos. ``--full_size_epochs N``
trains the last N epochs on whole images: a student that only saw crops
meets a whole face, and its borders, for the first time when it is scored.
A held-out share of the photos (and their copies) scores the student against
the teacher at full size (SSIM, edge-F1 per style) into ``eval.json``. The
run folder gets the same backups, checkpoints and TensorBoard logs as
``train``, and ``generators/generator.keras``, ready for ``python -m export``.
Exit status: 0 done, 1 non-finite loss, 2 bad input.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS
from keras_asym.data.jitter import jitter_photo
from keras_asym.data.procedural import render_photo, sample_face
from keras_asym.evaluation import metrics
from keras_asym.evaluation.metrics import conv_gflops
from keras_asym.inference.drawer import load_generator
from keras_asym.models.distillation import DistillationModel
from keras_asym.models.mobile import MobileStyleGenerator
from keras_asym.training import loop
from keras_asym.training.backup import BackupError, BackupStore, StepBackup, fit_resumable
from keras_asym.training.loop import NonFiniteLossError
from keras_asym.training.progress import ProgressCallback
from keras_asym.utils.imageio import (
    ImageReadError,
    fit_to_size,
    list_images,
    read_rgb,
    save_keras_atomic,
    write_bytes_atomic,
    write_json_atomic,
)

_TEACHER = flags.DEFINE_string("teacher", None, "Teacher generator .keras (train, import_official).")
_OUTPUT = flags.DEFINE_string("output", None, "Run folder.", required=True)
_RESUME = flags.DEFINE_boolean("resume", False, "Continue the run in --output (teacher and data from its config).")
_PHOTOS = flags.DEFINE_list("photos", [], "Folders of aligned face photos.")
_PROCEDURAL = flags.DEFINE_integer("procedural", 0, "Procedural portraits to add (default 400 when --photos is empty).")
_SIZE = flags.DEFINE_integer("size", 256, "Training and evaluation resolution (multiple of 8).")
_ALPHA = flags.DEFINE_float("alpha", 1.0, "Student width multiplier.")
_BLOCKS = flags.DEFINE_integer("n_blocks", 6, "Student inverted-residual blocks.")
_AUGMENT = flags.DEFINE_integer("augment", 0, "Jittered copies of every --photos photo for the teacher to draw.")
_CROP = flags.DEFINE_integer("crop", 0, "Train on random crops of this size (multiple of 8; 0: whole images).")
_CROP_GRID = flags.DEFINE_integer(
    "crop_grid", 8, "Crop corners on this pixel grid: 8, the student's stride (a multiple of G's 4), keeps the pixel phase of whole images."
)
_FULL_SIZE_EPOCHS = flags.DEFINE_integer(
    "full_size_epochs", 0, "Train the last N of --epochs on whole images, the size the student is scored and run at (with --crop)."
)
_FULL_SIZE_BATCH = flags.DEFINE_integer("full_size_batch", 4, "Batch size of the whole-image epochs.")
_REAL_SHARE = flags.DEFINE_float("real_share", 0.5, "Share of training examples from --photos when procedural ones are mixed in.")
_EDGE = flags.DEFINE_float("edge_weight", 1.0, "Weight of the edge term.")
_SSIM = flags.DEFINE_float("ssim_weight", 1.0, "Weight of the SSIM dissimilarity to the teacher's drawing.")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Epochs.")
_STEPS = flags.DEFINE_integer("steps_per_epoch", 200, "Batches per epoch.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Batch size.")
_LR = flags.DEFINE_float("lr", 2e-3, "Adam learning rate (cosine decay to 1% over the run).")
_HOLDOUT = flags.DEFINE_float("holdout", 0.1, "Share of photos held out for evaluation.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_BACKUP_EVERY = flags.DEFINE_integer(
    "backup_every", 100, "Steps between crash-safe backups (0: at epoch ends only); --resume continues at that exact step."
)
_VERBOSE = flags.DEFINE_integer("verbose", 2, "Keras progress output.")

CONFIG_NAME = "distill_config.json"


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


def teacher_drawings(
    teacher, photos: np.ndarray, source: np.ndarray, seed: int, batch: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo index, style, drawing) rows: every original photo in the 3 one-hot styles and one random
    mixture; every jittered copy in one of those four, in turn (the copies add faces, not styles)."""
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
    index, styles = np.array(index), np.stack(styles)
    run = tf.function(lambda p, s: teacher({"photo": p, "style": s}, training=False), jit_compile=True)
    drawings = []
    progress = Progress(len(index), "distill: teacher drawings", unit="drawings", interval=30.0)
    for i in range(0, len(index), batch):
        x = photos[index[i : i + batch]].astype(np.float32) / 127.5 - 1.0
        drawings.append(np.asarray(run(x, styles[i : i + batch])))
        progress.update(min(i + batch, len(index)))
    drawings = np.concatenate(drawings)
    return index, styles, np.clip((drawings[..., 0] + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


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
    """Batches ``({"photo", "style"}, teacher drawing)`` in [-1, 1] from ``(photo index, style, drawing)`` arrays.

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
    parts = [tf.data.Dataset.from_tensor_slices(e) for e, _ in kept]
    if not training:
        dataset = parts[0]
        for part in parts[1:]:
            dataset = dataset.concatenate(part)
        return (
            dataset.map(
                lambda i, style, drawing: (
                    {"photo": tf.cast(tf.gather(photos, i), tf.float32) / 127.5 - 1.0, "style": style},
                    tf.cast(drawing[..., None], tf.float32) / 127.5 - 1.0,
                )
            )
            .batch(batch_size)
            .prefetch(2)
        )

    def to_example(step, example):
        i, style, drawing = example
        pair = tf.concat([tf.cast(tf.gather(photos, i), tf.float32), tf.cast(drawing[..., None], tf.float32)], axis=-1) / 127.5 - 1.0
        if crop:
            corners = (tf.shape(pair)[:2] - crop) // crop_grid + 1
            draw = tf.random.stateless_uniform([2], seed=tf.stack([step, tf.cast(seed, tf.int64)]), minval=0, maxval=2**30, dtype=tf.int32)
            corner = draw % corners * crop_grid
            pair = tf.slice(pair, tf.concat([corner, [0]], 0), [crop, crop, 4])
        return {"photo": pair[..., :3], "style": style}, pair[..., 3:]

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


def evaluate_student(student, teacher_cache: dict, photos: np.ndarray, held_out: np.ndarray) -> dict:
    """SSIM and edge-F1 of the student against the teacher, per style, on held-out photos."""
    result = {}
    index, styles, drawings = teacher_cache["index"], teacher_cache["styles"], teacher_cache["drawings"]
    for k in range(3):
        rows = [r for r in np.flatnonzero(np.isin(index, held_out)) if styles[r, k] == 1.0]
        ssim, f1 = [], []
        for r in rows:
            x = photos[index[r]][None].astype(np.float32) / 127.5 - 1.0
            y = np.asarray(student({"photo": x, "style": styles[r][None]}, training=False))[0, ..., 0]
            y = np.clip((y + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
            ssim.append(metrics.ssim(y, drawings[r]))
            f1.append(metrics.edge_f1(y, drawings[r]))
        result[f"style{k + 1}"] = {"ssim": float(np.mean(ssim)), "edge_f1": float(np.mean(f1)), "photos": len(rows)}
    return result


def run(config: dict, resume: bool = False, verbose: int = 2) -> dict:
    run_dir = Path(config["output"])
    keras.utils.set_random_seed(config["seed"])
    cache_path = run_dir / "teacher_cache.npz"
    if resume and cache_path.is_file():
        with np.load(cache_path) as data:
            cache = dict(data)
    else:
        teacher = load_generator(config["teacher"])
        loaded = load_photos(config["photos"], config["procedural"], config["size"], config["seed"], config.get("augment", 0))
        for line in loaded.pop("skipped"):
            print(f"skipped: {line}", file=sys.stderr)
        started = time.perf_counter()
        index, styles, drawings = teacher_drawings(teacher, loaded["photos"], loaded["source"], config["seed"])
        print(
            f"distill: teacher drew {len(index)} examples from {len(loaded['photos'])} photos in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        cache = {**loaded, "index": index, "styles": styles, "drawings": drawings}
        run_dir.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **cache)
        write_bytes_atomic(cache_path, buffer.getvalue())
    photos = cache["photos"]
    source = cache.get("source", np.arange(len(photos)))
    real = cache.get("real", np.zeros(len(photos), bool))
    held_out, train_rows, eval_rows = split_examples(source, cache["index"], config["holdout"], config["seed"])

    def examples(rows):
        return (cache["index"][rows], cache["styles"][rows], cache["drawings"][rows])

    from_real = real[cache["index"][train_rows]]
    share = config.get("real_share", 0.5)

    student = MobileStyleGenerator(alpha=config["alpha"], n_blocks=config["n_blocks"])
    model = DistillationModel(student, edge_weight=config["edge_weight"], ssim_weight=config.get("ssim_weight", 0.0))
    total = config["epochs"] * config["steps_per_epoch"]
    schedule = keras.optimizers.schedules.CosineDecay(config["lr"], total, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    model({"photo": np.zeros((1, config["size"], config["size"], 3), np.float32), "style": ONE_HOTS[:1]})
    model.optimizer.build(student.trainable_variables)  # so backups carry the optimizer state from the start
    val = make_dataset(photos, [examples(eval_rows)], config["batch_size"], config["seed"], False)
    steps = config["steps_per_epoch"]
    store = BackupStore(run_dir / "backup")
    state = store.restore(model) if resume else None
    start_step = int(state["step"]) if state else 0
    callbacks = [
        loop.StopOnNonFiniteLoss(),
        loop.EpochCheckpoint(run_dir, keep=2, export_every=0),
        StepBackup(store, steps, every=config.get("backup_every", 0), start_step=start_step),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), update_freq="epoch", write_graph=False),
    ]
    if verbose:  # one line per 30 s with an ETA over all phases (Keras prints per epoch at most, off a terminal)
        callbacks.append(ProgressCallback("distill", config["epochs"] * steps, interval=30.0, keys=("loss",), start=start_step))
    logs, phases = {}, []
    for first, end, crop, batch_size in training_phases(
        config["epochs"], config.get("crop", 0), config.get("full_size_epochs", 0), config["batch_size"], config.get("full_size_batch", 4)
    ):

        def train_at(step, first=first, crop=crop, batch_size=batch_size):
            return make_dataset(
                photos,
                [examples(train_rows[from_real]), examples(train_rows[~from_real])],
                batch_size,
                config["seed"] + first,
                True,
                crop=crop,
                weights=[share, 1.0 - share],
                crop_grid=config.get("crop_grid", 1),
                start=(step - first * steps) * batch_size,
            )

        size = crop or config["size"]
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
    size = config["size"]
    by_source = {
        name: subset for name, subset in (("photos", held_out[real[held_out]]), ("procedural", held_out[~real[held_out]])) if len(subset)
    }
    report = {
        "student": {
            "alpha": config["alpha"],
            "n_blocks": config["n_blocks"],
            "params": int(student.count_params()),
            "gflops": conv_gflops(student, size, size),
        },
        "teacher": config["teacher"],
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


def main(argv):
    del argv

    run_dir = Path(_OUTPUT.value)
    saved = run_dir / CONFIG_NAME
    if _RESUME.value:
        if not saved.is_file():
            print(f"distill: error: {saved}: nothing to resume.", file=sys.stderr)
            return 2
        config = json.loads(saved.read_text())
    else:
        if not _TEACHER.value:
            print("distill: error: --teacher is required.", file=sys.stderr)
            return 2
        if saved.is_file():
            print(f"distill: error: {run_dir} already holds a run (use --resume or another --output).", file=sys.stderr)
            return 2
        procedural = _PROCEDURAL.value or (0 if _PHOTOS.value else 400)
        config = {
            "teacher": _TEACHER.value,
            "output": str(run_dir),
            "photos": _PHOTOS.value,
            "procedural": procedural,
            "augment": _AUGMENT.value,
            "crop": _CROP.value,
            "crop_grid": _CROP_GRID.value,
            "full_size_epochs": _FULL_SIZE_EPOCHS.value,
            "full_size_batch": _FULL_SIZE_BATCH.value,
            "real_share": _REAL_SHARE.value,
            "size": _SIZE.value,
            "alpha": _ALPHA.value,
            "n_blocks": _BLOCKS.value,
            "edge_weight": _EDGE.value,
            "ssim_weight": _SSIM.value,
            "epochs": _EPOCHS.value,
            "steps_per_epoch": _STEPS.value,
            "batch_size": _BATCH.value,
            "lr": _LR.value,
            "holdout": _HOLDOUT.value,
            "seed": _SEED.value,
            "backup_every": _BACKUP_EVERY.value,
        }
        if _SIZE.value % 8 or _CROP.value % 8 or _CROP.value > _SIZE.value or _CROP.value < 0:
            print(
                f"distill: error: --size {_SIZE.value} and --crop {_CROP.value} must be multiples of 8, the crop no larger.",
                file=sys.stderr,
            )
            return 2
        if not 0.0 <= _REAL_SHARE.value <= 1.0 or _AUGMENT.value < 0 or _CROP_GRID.value < 1 or _FULL_SIZE_BATCH.value < 1:
            print(
                "distill: error: --real_share must be in [0, 1], --augment >= 0, --crop_grid and --full_size_batch >= 1.", file=sys.stderr
            )
            return 2
        if not 0 <= _FULL_SIZE_EPOCHS.value <= _EPOCHS.value:
            print(
                f"distill: error: --full_size_epochs {_FULL_SIZE_EPOCHS.value} must be in [0, --epochs {_EPOCHS.value}].", file=sys.stderr
            )
            return 2
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(saved, config)
    try:
        report = run(config, resume=_RESUME.value, verbose=_VERBOSE.value)
    except NonFiniteLossError as err:
        print(f"distill: stopped: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, BackupError, ValueError) as err:
        print(f"distill: error: {err}", file=sys.stderr)
        return 2
    scores = ", ".join(f"{k} SSIM {v['ssim']:.3f} edge-F1 {v['edge_f1']:.3f}" for k, v in report["vs_teacher"].items())
    print(f"distill: {report['generator']} ({report['student']['gflops']:.2f} GFLOP at {report['size']}px); vs teacher: {scores}")
    return 0


if __name__ == "__main__":
    cli.run(main)
