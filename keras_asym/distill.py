"""Distil a teacher style generator (the paper's G) into a mobile generator, with ``fit``.

    python -m keras_asym.distill --teacher runs/x/generators/generator.keras --output runs/student
    python -m keras_asym.distill --teacher t.keras --photos data/aligned --procedural 400 --alpha 0.5 --output runs/s
    python -m keras_asym.distill --output runs/student --resume

Photos (``--photos``: aligned faces; ``--procedural N`` adds procedural
portraits) are drawn by the teacher once, in each of the three styles and in
one random style mixture, and cached in the run folder
(``teacher_cache.npz``); the student then learns those drawings with L1 +
an edge term (``keras_asym.distillation``). A held-out share of the photos
scores the student against the teacher (SSIM, edge-F1 per style) into
``eval.json``. The run folder gets the same backups, checkpoints and
TensorBoard logs as ``train``, and ``generators/generator.keras``, ready for
``python -m export``. Exit status: 0 done, 1 non-finite loss, 2 bad input.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

_TEACHER = flags.DEFINE_string("teacher", None, "Teacher generator .keras (train, import_official).")
_OUTPUT = flags.DEFINE_string("output", None, "Run folder.", required=True)
_RESUME = flags.DEFINE_boolean("resume", False, "Continue the run in --output (teacher and data from its config).")
_PHOTOS = flags.DEFINE_list("photos", [], "Folders of aligned face photos.")
_PROCEDURAL = flags.DEFINE_integer("procedural", 0, "Procedural portraits to add (default 400 when --photos is empty).")
_SIZE = flags.DEFINE_integer("size", 256, "Training and evaluation resolution (multiple of 8).")
_ALPHA = flags.DEFINE_float("alpha", 1.0, "Student width multiplier.")
_BLOCKS = flags.DEFINE_integer("n_blocks", 6, "Student inverted-residual blocks.")
_EDGE = flags.DEFINE_float("edge_weight", 1.0, "Weight of the edge term.")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Epochs.")
_STEPS = flags.DEFINE_integer("steps_per_epoch", 200, "Batches per epoch.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Batch size.")
_LR = flags.DEFINE_float("lr", 2e-3, "Adam learning rate (cosine decay to 1% over the run).")
_HOLDOUT = flags.DEFINE_float("holdout", 0.1, "Share of photos held out for evaluation.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_VERBOSE = flags.DEFINE_integer("verbose", 2, "Keras progress output.")

CONFIG_NAME = "distill_config.json"


def load_photos(folders: list[str], procedural: int, size: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """uint8 photos at ``size`` from folders (unreadable files skipped and reported) plus procedural ones."""
    from keras_asym.imageio import ImageReadError, fit_to_size, list_images, read_rgb

    photos, skipped = [], []
    for folder in folders:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{folder}: no such photo folder.")
        for path in list_images(folder):
            try:
                photos.append(fit_to_size(read_rgb(path), size, size))
            except ImageReadError as err:
                skipped.append(str(err))
    if procedural:
        from keras_asym.data.procedural import render_photo, sample_face

        rng = np.random.default_rng(seed + 1)
        photos += [render_photo(sample_face(rng), size)[0] for _ in range(procedural)]
    if not photos:
        raise ValueError("no photos: give --photos folders or --procedural N.")
    return np.stack(photos), skipped


def teacher_drawings(teacher, photos: np.ndarray, seed: int, batch: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo index, style, drawing) for every photo in the 3 one-hot styles and one random mixture."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    styles = np.concatenate([np.eye(3, dtype=np.float32)[None].repeat(len(photos), 0), rng.dirichlet([1, 1, 1], (len(photos), 1)).astype(np.float32)], axis=1)
    index = np.repeat(np.arange(len(photos)), 4)
    styles = styles.reshape(-1, 3)
    run = tf.function(lambda p, s: teacher({"photo": p, "style": s}, training=False), jit_compile=True)
    drawings = []
    for i in range(0, len(index), batch):
        x = photos[index[i : i + batch]].astype(np.float32) / 127.5 - 1.0
        drawings.append(np.asarray(run(x, styles[i : i + batch])))
    drawings = np.concatenate(drawings)
    return index, styles, np.clip((drawings[..., 0] + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def make_dataset(photos, index, styles, drawings, batch_size: int, seed: int, training: bool):
    import tensorflow as tf

    def to_example(i, style, drawing):
        photo = tf.cast(tf.gather(photos, i), tf.float32) / 127.5 - 1.0
        drawing = tf.cast(drawing[..., None], tf.float32) / 127.5 - 1.0
        if training:
            flip = tf.random.stateless_uniform((), seed=tf.stack([tf.cast(i, tf.int64), tf.cast(seed, tf.int64)])) < 0.5
            photo = tf.where(flip, photo[:, ::-1], photo)
            drawing = tf.where(flip, drawing[:, ::-1], drawing)
        return {"photo": photo, "style": style}, drawing

    photos = tf.constant(photos)
    dataset = tf.data.Dataset.from_tensor_slices((index, styles, drawings))
    if training:
        dataset = dataset.shuffle(len(index), seed=seed, reshuffle_each_iteration=True).repeat()
    return dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)


def evaluate_student(student, teacher_cache: dict, photos: np.ndarray, held_out: np.ndarray) -> dict:
    """SSIM and edge-F1 of the student against the teacher, per style, on held-out photos."""
    from keras_asym import metrics

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
    import keras

    from keras_asym.drawing import load_generator
    from keras_asym import training
    from keras_asym.distillation import DistillationModel
    from keras_asym.metrics import conv_gflops
    from keras_asym.mobile import MobileStyleGenerator

    run_dir = Path(config["output"])
    keras.utils.set_random_seed(config["seed"])
    cache_path = run_dir / "teacher_cache.npz"
    if resume and cache_path.is_file():
        with np.load(cache_path) as data:
            cache = dict(data)
        photos = cache.pop("photos")
    else:
        teacher = load_generator(config["teacher"])
        photos, skipped = load_photos(config["photos"], config["procedural"], config["size"], config["seed"])
        for line in skipped:
            print(f"skipped: {line}", file=sys.stderr)
        started = time.perf_counter()
        index, styles, drawings = teacher_drawings(teacher, photos, config["seed"])
        print(f"distill: teacher drew {len(index)} examples from {len(photos)} photos in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        cache = {"index": index, "styles": styles, "drawings": drawings}
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / ".teacher_cache.partial.npz"
        np.savez(tmp, photos=photos, **cache)
        tmp.replace(cache_path)
    rng = np.random.default_rng(config["seed"])
    order = rng.permutation(len(photos))
    held_out = order[: max(1, int(round(config["holdout"] * len(photos))))]
    train_rows = np.flatnonzero(~np.isin(cache["index"], held_out))
    eval_rows = np.flatnonzero(np.isin(cache["index"], held_out))

    student = MobileStyleGenerator(alpha=config["alpha"], n_blocks=config["n_blocks"])
    model = DistillationModel(student, edge_weight=config["edge_weight"])
    total = config["epochs"] * config["steps_per_epoch"]
    schedule = keras.optimizers.schedules.CosineDecay(config["lr"], total, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    model({"photo": np.zeros((1, config["size"], config["size"], 3), np.float32), "style": np.eye(3, dtype=np.float32)[:1]})
    model.optimizer.build(student.trainable_variables)  # so backups carry the optimizer state from the start
    train = make_dataset(photos, cache["index"][train_rows], cache["styles"][train_rows], cache["drawings"][train_rows], config["batch_size"], config["seed"], True)
    val = make_dataset(photos, cache["index"][eval_rows], cache["styles"][eval_rows], cache["drawings"][eval_rows], config["batch_size"], config["seed"], False)
    callbacks = [
        training.StopOnNonFiniteLoss(),
        training.AtomicBackupAndRestore(run_dir / "backup"),
        training.EpochCheckpoint(run_dir, keep=2, export_every=0),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), update_freq="epoch", write_graph=False),
    ]
    history = model.fit(train, validation_data=val, epochs=config["epochs"], steps_per_epoch=config["steps_per_epoch"], callbacks=callbacks, verbose=verbose)
    final = run_dir / "generators" / "generator.keras"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(".generator.partial.keras")
    student.save(tmp)
    tmp.replace(final)
    size = config["size"]
    report = {
        "student": {"alpha": config["alpha"], "n_blocks": config["n_blocks"], "params": int(student.count_params()), "gflops": conv_gflops(student, size, size)},
        "teacher": config["teacher"],
        "size": size,
        "held_out_photos": int(len(held_out)),
        "vs_teacher": evaluate_student(student, cache, photos, held_out),
        "logs": {k: float(v[-1]) for k, v in history.history.items()},
        "generator": str(final),
    }
    training.write_json_atomic(run_dir / "eval.json", report)
    return report


def main(argv):
    del argv
    from keras_asym.training import NonFiniteLossError, write_json_atomic

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
            "teacher": _TEACHER.value, "output": str(run_dir), "photos": _PHOTOS.value, "procedural": procedural,
            "size": _SIZE.value, "alpha": _ALPHA.value, "n_blocks": _BLOCKS.value, "edge_weight": _EDGE.value,
            "epochs": _EPOCHS.value, "steps_per_epoch": _STEPS.value, "batch_size": _BATCH.value, "lr": _LR.value,
            "holdout": _HOLDOUT.value, "seed": _SEED.value,
        }
        if _SIZE.value % 8:
            print(f"distill: error: --size {_SIZE.value} is not a multiple of 8.", file=sys.stderr)
            return 2
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(saved, config)
    try:
        report = run(config, resume=_RESUME.value, verbose=_VERBOSE.value)
    except NonFiniteLossError as err:
        print(f"distill: stopped: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"distill: error: {err}", file=sys.stderr)
        return 2
    scores = ", ".join(f"{k} SSIM {v['ssim']:.3f} edge-F1 {v['edge_f1']:.3f}" for k, v in report["vs_teacher"].items())
    print(f"distill: {report['generator']} ({report['student']['gflops']:.2f} GFLOP at {report['size']}px); vs teacher: {scores}")
    return 0


if __name__ == "__main__":
    app.run(main)
