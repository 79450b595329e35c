"""The distillation recipe, written once: ``python -m keras_asym.distill`` defines its flags from the fields of
``DistillConfig``, a run folder records it in ``distill_config.json``, and ``configs/student.flags`` is the recipe
of docs/distillation.md. TensorFlow-free, so the command checks a recipe before it loads TensorFlow."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

from keras_asym.utils.config_flags import option

CONFIG_NAME = "distill_config.json"


@dataclass(frozen=True)
class DistillConfig:
    """Every option of a distillation run; ``distill``'s flags and ``distill_config.json`` come from here."""

    teacher: str = option("", "Teacher generator .keras (train, import_official).")
    output: str = option("runs/student", "Run folder.", required=True)
    photos: tuple = option((), "Folders of aligned face photos.")
    procedural: int = option(0, "Procedural portraits to add (default 400 when --photos is empty).")
    augment: int = option(0, "Jittered copies of every --photos photo for the teacher to draw.")
    crop: int = option(0, "Train on random crops of this size (multiple of 8; 0: whole images).")
    crop_grid: int = option(
        8, "Crop corners on this pixel grid: 8, the student's stride (a multiple of G's 4), keeps the pixel phase of whole images."
    )
    full_size_epochs: int = option(
        0, "Train the last N of --epochs on whole images, the size the student is scored and run at (with --crop)."
    )
    full_size_batch: int = option(4, "Batch size of the whole-image epochs.")
    real_share: float = option(0.5, "Share of training examples from --photos when procedural ones are mixed in.")
    size: int = option(256, "Training and evaluation resolution (multiple of 8).")
    alpha: float = option(1.0, "Student width multiplier.")
    n_blocks: int = option(6, "Student inverted-residual blocks.")
    full_res_conv: bool = option(True, "The student's last 3x3 convolution at full resolution (--nofull_res_conv: at half, for 512²).")
    global_context: bool = option(
        False, "Scale and shift the student's block features by their image-wide mean (the teacher's instance norm)."
    )
    context_everywhere: bool = option(
        False, "The same after every student convolution, from the features' mean and spread (implies --global_context)."
    )
    instance_norm: bool = option(
        False, "Instance norm, as the teacher's, instead of batch norm in the student's encoder, decoder and block expansions."
    )
    transposed_up: bool = option(
        False, "Upsample the student by stride-2 transposed convolutions, as the teacher, instead of bilinear resize + convolution."
    )
    teacher_grid: bool = option(
        False, "The student's strided and transposed convolutions sample on the teacher's pixel grid (PyTorch's padding=1)."
    )
    bottleneck_stride: int = option(
        8, "The student's style fusion and blocks at 1/8 resolution, or 1/4 (4) where the teacher's blocks run (4x their cost)."
    )
    edge_weight: float = option(1.0, "Weight of the edge term.")
    ssim_weight: float = option(1.0, "Weight of the SSIM dissimilarity to the teacher's drawing.")
    feature_weight: float = option(
        0.0, "Weight of the teacher's bottleneck features as a second target of the student's (0: the drawings alone)."
    )
    epochs: int = option(10, "Epochs.")
    steps_per_epoch: int = option(200, "Batches per epoch.")
    batch_size: int = option(8, "Batch size.")
    lr: float = option(2e-3, "Adam learning rate (cosine decay to 1% over the run).")
    holdout: float = option(0.1, "Share of photos held out for evaluation.")
    seed: int = option(0, "Seed.")
    backup_every: int = option(100, "Steps between crash-safe backups (0: at epoch ends only); --resume continues at that exact step.")

    def __post_init__(self):
        object.__setattr__(self, "photos", tuple(self.photos))

    def resolved(self) -> DistillConfig:
        """The config a run records: ``procedural`` defaults to 400 portraits when there are no photo folders."""
        return replace(self, procedural=self.procedural or (0 if self.photos else 400))

    def validate(self) -> None:
        """Raises ``ValueError`` naming the flags whose values cannot make a run."""
        if self.size % 8 or self.crop % 8 or self.crop > self.size or self.crop < 0:
            raise ValueError(f"--size {self.size} and --crop {self.crop} must be multiples of 8, the crop no larger.")
        if not 0.0 <= self.real_share <= 1.0 or self.augment < 0 or self.crop_grid < 1 or self.full_size_batch < 1:
            raise ValueError("--real_share must be in [0, 1], --augment >= 0, --crop_grid and --full_size_batch >= 1.")
        if self.feature_weight < 0 or (self.feature_weight and self.crop_grid % 8):
            raise ValueError("--feature_weight must be >= 0, and with features --crop_grid a multiple of 8 (the features' grid).")
        if self.transposed_up and not self.full_res_conv:
            raise ValueError("--nofull_res_conv moves the convolution of a bilinear upsampling; --transposed_up has none.")
        if self.bottleneck_stride not in (4, 8):
            raise ValueError(f"--bottleneck_stride {self.bottleneck_stride} must be 4 or 8.")
        if not 0 <= self.full_size_epochs <= self.epochs:
            raise ValueError(f"--full_size_epochs {self.full_size_epochs} must be in [0, --epochs {self.epochs}].")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, stored: dict) -> DistillConfig:
        """The config a run folder recorded. A key the run predates takes the value it had before the option
        existed (so a resumed old run trains as it started); unknown keys are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**PREDATED, **{k: v for k, v in stored.items() if k in known}})


# What a run behaved like before each of these options existed.
PREDATED = {
    "augment": 0,
    "crop": 0,
    "crop_grid": 1,
    "full_size_epochs": 0,
    "full_size_batch": 4,
    "real_share": 0.5,
    "ssim_weight": 0.0,
    "backup_every": 0,
    "global_context": False,
    "context_everywhere": False,
    "instance_norm": False,
    "feature_weight": 0.0,
    "transposed_up": False,
    "teacher_grid": False,
    "bottleneck_stride": 8,
}
