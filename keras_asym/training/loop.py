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

import dataclasses
import json
import shutil
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import tensorflow as tf

from edge_demo.runtime import cli
from keras_asym.data.pipeline import make_stream, resolve_load_size, scan
from keras_asym.face.masks import LOCAL_ORDER
from keras_asym.models.cycle_gan import AsymmetricCycleGAN, build_model, check_trainable_size
from keras_asym.objective.distances import CYCLE_DISTANCES
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
from keras_asym.utils.config_flags import check_bounds, model_options, option
from keras_asym.utils.imageio import save_keras_atomic, write_json_atomic
from keras_asym.utils.keras_archive import load_checked

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("off", "mixed_float16", "mixed_bfloat16")


@dataclass
class TrainConfig:
    """Every option of a run, written once: the ``train`` CLI's flags and the model's build options come from here."""

    dataset: str = option("", "Dataset folder (prepare layout).")
    output: str = option("runs/default", "Run folder.", required=True)
    image_size: int = option(512, "Crop size (official 512).", model=True, bounds=(16, 2048))
    load_size: int = option(0, "Resize before cropping (0 = image_size * 572 / 512, the official 572 at 512).", bounds=(0, 4096))
    batch_size: int = option(1, "Global batch size (split across replicas).", bounds=(1, 1024))
    ngf: int = option(64, "Generator width.", model=True, bounds=(1, 256))
    ndf: int = option(64, "Discriminator width.", model=True, bounds=(1, 256))
    n_blocks: int = option(9, "ResNet blocks per generator.", model=True, bounds=(0, 64))
    model0_res: int = option(0, "Blocks of G before the style is inserted.", model=True, bounds=(0, 64))
    n_layers_d: int = option(
        3, "Stride-2 layers of every discriminator (2 at 64 px, 1 at 32).", alias="n_layers_D", model=True, bounds=(1, 6)
    )
    lambda_cycle: float = option(5.0, "Relaxed forward cycle weight (official lambda_A).", model=True, bounds=(0.0, 1e4))
    lambda_drawing_cycle: float = option(5.0, "Backward cycle weight (lambda_B).", model=True, bounds=(0.0, 1e4))
    lambda_truncation: float = option(5.0, "Truncation cycle weight (lambda_A_trunc).", model=True, bounds=(0.0, 1e4))
    lambda_local: float = option(0.5, "Local discriminators' weight in G's loss (lambda_G_A_l).", model=True, bounds=(0.0, 1e4))
    truncation_levels: float = option(
        31.875, "Truncation levels: floor((y+1)*a)/a-1 (31.875 = 6 bits).", alias="trunc_a", model=True, bounds=(0.5, 32767.5)
    )
    use_truncation: bool = option(True, "Use the truncation loss and its schedule (ntrunc_trunc).", alias="truncation", model=True)
    weighted_style_loss: bool = option(True, "Weight style cross-entropy by the soft style vector.", model=True)
    style_control: bool = option(True, "Condition G on the style vector.", model=True)
    one_hot_style: bool = option(False, "Use argmax one-hot style vectors instead of soft ones.")
    parts: tuple = option(LOCAL_ORDER, "Local discriminators: any of eyes,nose,lips (empty for none).", model=True)
    cycle_distance: str = option("edges", "Relaxed-cycle distance.", choices=CYCLE_DISTANCES, model=True)
    hed_weights: str = option("", "hed.keras from import_official (for hed_lpips).")
    lpips_weights: str = option("", "lpips.keras from import_official (for hed_lpips).")
    pool_size: int = option(50, "History pool size.", model=True, bounds=(0, 10_000))
    niter: int = option(100, "Epochs at the initial learning rate.", bounds=(0, 100_000))
    niter_decay: int = option(100, "Epochs of linear decay to zero.", bounds=(0, 100_000))
    learning_rate: float = option(2e-4, "Adam learning rate.", alias="lr", bounds=(1e-12, 1.0))
    beta1: float = option(0.5, "Adam beta_1.", bounds=(0.0, 0.9999))
    seed: int = option(0, "Seed of weights, data order, augmentation and pools.", model=True, bounds=(0, 2**31 - 1))
    strategy: str = option("default", "tf.distribute strategy.", choices=STRATEGIES)
    mixed_precision: str = option("off", "Keras mixed precision policy.", choices=PRECISIONS)
    jit_compile: bool = option(True, "Compile the training step with XLA.")
    backup_every: int = option(100, "Batches between mid-epoch backups (0 = end of epoch).", bounds=(0, 10**9))
    keep_checkpoints: int = option(3, "End-of-epoch checkpoints kept.", bounds=(1, 10_000))
    export_every: int = option(10, "Epochs between generator .keras exports (0 = never).", bounds=(0, 100_000))
    image_every: int = option(1, "Epochs between TensorBoard image grids (0 = never).", bounds=(0, 100_000))
    steps_per_epoch: int = option(0, "Limit batches per epoch (0 = every photo once).", bounds=(0, 10**9))

    @property
    def epochs(self) -> int:
        return self.niter + self.niter_decay

    def validate(self, networks: bool = True) -> None:
        """Raises ``ValueError`` naming the options that cannot make a run (before anything is built or read).

        ``networks=False`` leaves out the size check that builds stand-in networks, for a caller that must create
        its ``tf.distribute`` strategy first (``MultiWorkerMirroredStrategy`` refuses an initialised runtime).
        """
        check_bounds(self)
        if self.image_size % 4:
            raise ValueError(f"--image_size {self.image_size} must be a multiple of 4 (two stride-2 downsamplings).")
        if self.load_size and self.load_size < self.image_size:
            raise ValueError(f"--load_size {self.load_size} is smaller than --image_size {self.image_size}.")
        if self.model0_res > self.n_blocks:
            raise ValueError(f"--model0_res {self.model0_res} is larger than --n_blocks {self.n_blocks}.")
        if self.epochs < 1:
            raise ValueError("--niter + --niter_decay must be at least 1.")
        if networks:
            check_trainable_size(self.image_size, self.n_layers_d, self.parts)
        if self.cycle_distance == "hed_lpips":
            for flag, path in (("hed_weights", self.hed_weights), ("lpips_weights", self.lpips_weights)):
                if not path or not Path(path).is_file():
                    raise ValueError(f"--cycle_distance hed_lpips needs --{flag}, a .keras file from import_official; got {path!r}.")

    @classmethod
    def from_json(cls, path: Path) -> TrainConfig:
        """The config a run folder's ``config.json`` recorded. An option the run predates takes the value it had
        before the option existed (``TRAIN_PREDATED``); unknown keys are ignored; a value of the wrong type is a
        ``ValueError`` naming it."""
        stored = json.loads(Path(path).read_text())
        if not isinstance(stored, dict):
            raise ValueError(f"{path}: expected a JSON object.")
        values = {**TRAIN_PREDATED}
        for field in dataclasses.fields(cls):
            if field.name not in stored:
                continue
            value, default = stored[field.name], field.default
            if isinstance(default, tuple) and isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = tuple(value)
            elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not type(default):
                raise ValueError(f"{path}: {field.name} is {value!r}, expected a {type(default).__name__}.")
            values[field.name] = value
        return cls(**values)


# What a recorded run used before each of these options existed.
TRAIN_PREDATED = {"n_layers_d": 3}


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
