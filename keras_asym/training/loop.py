"""Training a model with ``fit``: strategies, precision, run folders and callbacks.

A run folder holds everything a run needs to be resumed or inspected:

    RUN/config.json                 the resolved options
    RUN/backup/gen-<step>/          crash-safe backups (every network, optimizer, pool and the data position), two generations
    RUN/checkpoints/epoch-NNNN.weights.h5 (+ .json)   end-of-epoch checkpoints, the last few kept
    RUN/generators/generator-epoch-NNNN.keras         the style generator every N epochs
    RUN/history.csv                 every epoch's losses, learning rate and progress (one row per epoch)
    RUN/logs/                       TensorBoard: every loss term, learning rate, progress, image grids

Every file is written to a temporary name and renamed, so a killed run never
leaves a half-written checkpoint. ``--resume`` continues at the exact step of
the newest complete backup, with the same data and schedule values as an
uninterrupted run (``keras_asym.training.backup``).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path

import keras
import tensorflow as tf

from edge_demo.runtime import cli
from keras_asym.data.pipeline import make_stream, resolve_load_size, scan
from keras_asym.models.cycle_gan import AsymmetricCycleGAN, build_model, check_trainable_size
from keras_asym.training.backup import BackupError, BackupStore, StepBackup
from keras_asym.training.callbacks import (
    EpochCheckpoint,
    EpochSchedule,
    ImageGrids,
    ProgressCallback,
    ScalarExtras,
    StopOnNonFiniteLoss,
    TimeBudget,
)
from keras_asym.training.config import PRECISIONS, STRATEGIES, TrainConfig
from keras_asym.utils.config_flags import model_options
from keras_asym.utils.imageio import save_keras_atomic, write_json_atomic
from keras_asym.utils.keras_archive import load_checked


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def set_precision(policy: str) -> None:
    if policy not in PRECISIONS:
        raise ValueError(f"Unknown mixed precision {policy!r}; expected one of {PRECISIONS}.")
    keras.mixed_precision.set_global_policy("float32" if policy == "off" else policy)


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
    if config.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def create_model(config: TrainConfig) -> AsymmetricCycleGAN:
    """Builds and compiles the model in the current strategy scope (optimizers built there too)."""
    model = build_model(**model_options(config))
    if config.cycle_distance == "hed_lpips":
        load_perceptual_weights(model, config.hed_weights, config.lpips_weights)
    model.compile(g_optimizer=make_optimizer(config), d_optimizer=make_optimizer(config), jit_compile=config.jit_compile)
    return model


def load_perceptual_weights(model: AsymmetricCycleGAN, hed: str, lpips: str) -> None:
    """HED and LPIPS weights from ``import_official`` outputs (``hed.keras``, ``lpips.keras``).

    Without them ``hed_lpips`` would compare random features: refuse.
    """
    if not hed or not lpips:
        raise ValueError("cycle_distance=hed_lpips needs --hed_weights and --lpips_weights (hed.keras / lpips.keras from import_official).")
    for path, net in ((hed, model.cycle_distance.hed), (lpips, model.cycle_distance.lpips)):
        source = load_checked(path, (keras.saving.get_registered_name(type(net)),), f"a {type(net).__name__} network")
        net.set_weights(source.get_weights())


def prepare_output(config: TrainConfig, resume: bool) -> Path:
    """Creates the run folder and checks, before any training, that it can be written."""
    run = Path(config.output)
    config_path = run / "config.json"
    if config_path.is_file() and not resume:
        raise FileExistsError(f"{run}: a run already exists here; pass --resume to continue it or choose another --output.")
    try:
        for sub in ("backup", "checkpoints", "generators", "logs"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        probe = run / ".write_probe"
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 1024)
        probe.unlink()
    except OSError as err:
        raise OSError(f"{run}: cannot write the run folder ({err.strerror or err}).") from err
    free = shutil.disk_usage(run).free
    needed = _estimated_checkpoint_bytes(config) * 4
    if free < needed:
        raise OSError(f"{run}: only {free / 1e9:.2f} GB free, checkpoints need about {needed / 1e9:.2f} GB.")
    if resume and config_path.is_file():
        saved = json.loads(config_path.read_text())
        for key in ("image_size", "ngf", "ndf", "n_blocks", "model0_res", "cycle_distance", "use_truncation"):
            if saved.get(key) != getattr(config, key):
                raise ValueError(f"{run}: --resume with {key}={getattr(config, key)!r}, but the run was started with {saved.get(key)!r}.")
    write_json_atomic(config_path, asdict(config))
    return run


def _estimated_checkpoint_bytes(config: TrainConfig) -> int:
    g = (config.ngf / 64) ** 2 * 11.4e6
    d = (config.ndf / 64) ** 2 * 2.8e6 * (2 + len(config.parts))
    return int((2 * g + d) * 4 * 3)  # weights + two Adam moments, float32


def fit_resumable(
    model: keras.Model, data_at, *, start_step: int, first_epoch: int, epochs: int, steps_per_epoch: int, callbacks: list, **fit_kwargs
) -> list:
    """Runs epochs ``[first_epoch, epochs)`` from global step ``start_step``, which may lie inside an epoch.

    ``data_at(step)`` returns the training data positioned at global step
    ``step``. An interrupted epoch is finished with its remaining batches
    (its callbacks see the same epoch index, so per-epoch schedules match),
    then the remaining epochs run whole. Returns the ``History`` objects.
    """
    histories = []
    epoch, batch = divmod(start_step, steps_per_epoch)
    if epoch < first_epoch:
        epoch, batch = first_epoch, 0
    if batch and epoch < epochs:
        histories.append(
            model.fit(
                data_at(start_step),
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=steps_per_epoch - batch,
                callbacks=callbacks,
                **fit_kwargs,
            )
        )
        if model.stop_training:
            return histories
        epoch += 1
    if epoch < epochs:
        histories.append(
            model.fit(
                data_at(epoch * steps_per_epoch),
                initial_epoch=epoch,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                callbacks=callbacks,
                **fit_kwargs,
            )
        )
    return histories


def make_callbacks(config: TrainConfig, run: Path, sample_batch: dict | None, backup: StepBackup) -> list:
    callbacks = [
        StopOnNonFiniteLoss(),
        EpochSchedule(config.learning_rate, config.niter, config.niter_decay),
        EpochCheckpoint(run, keep=config.keep_checkpoints, export_every=config.export_every),
        ScalarExtras(),
        # Every epoch's logs, never pruned (the checkpoints keep only the last few); appended across resumes.
        # Before the backup: a kill between the two repeats the epoch's row rather than losing it.
        keras.callbacks.CSVLogger(str(run / "history.csv"), append=True),
        backup,  # after the epoch checkpoint and the history: see StepBackup.on_epoch_end
        keras.callbacks.TensorBoard(log_dir=str(run / "logs"), update_freq="epoch", write_graph=False),
    ]
    if sample_batch is not None and config.image_every:
        callbacks.append(ImageGrids(run / "logs", sample_batch, config.image_every))
    return callbacks


def run_training(config: TrainConfig, resume: bool = False, verbose: int = 1, extra_callbacks: list | None = None) -> dict:
    """Trains per ``config`` with ``fit`` (the ``train`` CLI); returns the final epoch's logs."""
    config.validate(networks=False)
    set_precision(config.mixed_precision)
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    check_trainable_size(config.image_size, config.n_layers_d, config.parts)
    config = replace(config, load_size=resolve_load_size(config.image_size, config.load_size))  # config.json records it
    run_dir = prepare_output(config, resume)
    info = scan(config.dataset, tuple(config.parts))
    for line in info["skipped"]:
        cli.skipped(line)
    replicas = strategy.num_replicas_in_sync
    if replicas > 1 and config.jit_compile and not tf.config.list_physical_devices("GPU"):
        # XLA cannot address variables mirrored on other (logical) CPU devices.
        print("train: XLA disabled for several replicas on CPU devices.", file=sys.stderr)
        config = replace(config, jit_compile=False)
    if config.batch_size % replicas:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the {replicas} replicas.")

    stream = dict(
        image_size=config.image_size,
        load_size=config.load_size,
        batch_size=config.batch_size,
        parts=tuple(config.parts),
        one_hot=config.one_hot_style,
        seed=config.seed,
        scanned=info,
    )

    with strategy.scope():
        model = create_model(config)
    # An endless stream with a fixed number of steps per epoch: Keras 3 runs one
    # step too many per epoch on datasets of unknown length (skipping bad files
    # makes the length unknown), and an endless stream lets a dropped file simply
    # be replaced by the next photo.
    steps = config.steps_per_epoch or max(1, len(info["photos"]) // config.batch_size)
    store = BackupStore(run_dir / "backup")
    state = store.restore(model) if resume else None
    start_step = int(state["step"]) if state else 0
    if state and state.get("steps_per_epoch", steps) != steps:
        raise ValueError(
            f"{run_dir}: the run was backed up with {state['steps_per_epoch']} steps per epoch, now {steps}; keep --steps_per_epoch and the dataset."
        )
    if resume and not state:
        progressed = sorted((run_dir / "checkpoints").glob("epoch-*.weights.h5")) + sorted((run_dir / "generators").glob("*.keras"))
        if progressed:
            raise BackupError(
                f"{run_dir / 'backup'}: holds no backup, but the run has trained ({progressed[-1].name}); "
                "refusing to start it over (remove the run folder to start anew)."
            )
        print(f"train: {run_dir / 'backup'} holds no backup yet: starting at step 0.", file=sys.stderr)
    for callback in extra_callbacks or []:
        if isinstance(callback, TimeBudget):
            callback.attach(run_dir, resume=state is not None)
    backup = StepBackup(store, steps, every=config.backup_every, start_step=start_step, position=lambda: int(model.data_position.numpy()))
    # The image grids' fixed batch: the training stream's first element (no second input pipeline).
    sample = None
    if replicas == 1 and config.image_every:
        sample = {k: v for k, v in next(iter(make_stream(config.dataset, start=0, **stream))).items() if k != "position"}
    callbacks = make_callbacks(config, run_dir, sample, backup) + list(extra_callbacks or [])
    if verbose == 1 and not sys.stderr.isatty():
        # Keras' bar only prints at epoch ends off a terminal: one line per 30 s with an ETA instead.
        budget = next((c.seconds - c.spent_before for c in extra_callbacks or [] if isinstance(c, TimeBudget)), None)
        callbacks.append(
            ProgressCallback(
                "train", steps * config.epochs, interval=30.0, keys=("generator", "discriminator"), start=start_step, budget=budget
            )
        )
        verbose = 2
    histories = fit_resumable(
        model,
        lambda step: make_stream(config.dataset, start=int(model.data_position.numpy()), **stream),
        start_step=start_step,
        first_epoch=0,
        epochs=config.epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
    )
    final = run_dir / "generators" / "generator.keras"
    save_keras_atomic(model.generator, final)
    logs = {k: float(v[-1]) for history in histories for k, v in history.history.items() if v}
    write_json_atomic(run_dir / "final.json", {"epochs": config.epochs, "logs": logs, "generator": str(final)})
    return logs
