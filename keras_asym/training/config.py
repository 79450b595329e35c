"""The options of a training run, written once: ``python -m keras_asym.train`` defines its flags from the fields
of ``TrainConfig``, a run folder records them in ``config.json``, and ``build_model`` takes the model's. Free of
TensorFlow, so the command checks a run's options (and a resumed run's record) before it loads TensorFlow."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from keras_asym.face.masks import LOCAL_ORDER
from keras_asym.objective import CYCLE_DISTANCES
from keras_asym.utils.config_flags import check_bounds, option

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
            from keras_asym.models.cycle_gan import check_trainable_size  # lazy: Keras builds stand-in networks, when asked

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
