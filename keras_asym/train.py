"""Train the asymmetric cycle model with ``keras.Model.fit``.

    python -m keras_asym.train --dataset DATASET --output runs/my_run
    python -m keras_asym.train --flagfile configs/official.flags --dataset DATASET --output runs/official
    python -m keras_asym.train --output runs/my_run --resume            # continue a killed run

``DATASET`` is a folder in the ``prepare`` layout. The run folder gets
``config.json``, a mid-epoch backup (``backup/``), end-of-epoch checkpoints,
generator exports (``generators/*.keras``) and TensorBoard logs (``logs/``).
``--strategy mirrored`` uses every local GPU; ``multi_worker`` reads the
cluster from ``TF_CONFIG`` (see the README). Exit status: 0 when training
finished, 1 when it stopped on a non-finite loss, 2 when it could not start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from absl import flags

from edge_demo import cli
from keras_asym.training import PRECISIONS, STRATEGIES, TrainConfig, run_training

_D = TrainConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", None, "Dataset folder (prepare layout).")
flags.DEFINE_string("output", None, "Run folder.", required=True)
flags.DEFINE_boolean("resume", False, "Continue the run in --output from its last backup.")
flags.DEFINE_integer("image_size", _D.image_size, "Crop size (official 512).")
flags.DEFINE_integer("load_size", _D.load_size, "Resize before cropping (official 572; 0 = image_size * 572 / 512).")
flags.DEFINE_integer("batch_size", _D.batch_size, "Global batch size (split across replicas).")
flags.DEFINE_integer("ngf", _D.ngf, "Generator width.")
flags.DEFINE_integer("ndf", _D.ndf, "Discriminator width.")
flags.DEFINE_integer("n_blocks", _D.n_blocks, "ResNet blocks per generator.")
flags.DEFINE_integer("model0_res", _D.model0_res, "Blocks of G before the style is inserted.")
flags.DEFINE_float("lambda_cycle", _D.lambda_cycle, "Relaxed forward cycle weight (official lambda_A).")
flags.DEFINE_float("lambda_drawing_cycle", _D.lambda_drawing_cycle, "Backward cycle weight (lambda_B).")
flags.DEFINE_float("lambda_truncation", _D.lambda_truncation, "Truncation cycle weight (lambda_A_trunc).")
flags.DEFINE_float("lambda_local", _D.lambda_local, "Local discriminators' weight in G's loss (lambda_G_A_l).")
flags.DEFINE_float("trunc_a", _D.truncation_levels, "Truncation levels: floor((y+1)*a)/a-1 (31.875 = 6 bits).")
flags.DEFINE_boolean("truncation", _D.use_truncation, "Use the truncation loss and its schedule (ntrunc_trunc).")
flags.DEFINE_boolean("weighted_style_loss", _D.weighted_style_loss, "Weight style cross-entropy by the soft style vector.")
flags.DEFINE_boolean("style_control", _D.style_control, "Condition G on the style vector.")
flags.DEFINE_boolean("one_hot_style", _D.one_hot_style, "Use argmax one-hot style vectors instead of soft ones.")
flags.DEFINE_list("parts", list(_D.parts), "Local discriminators: any of eyes,nose,lips (empty for none).")
flags.DEFINE_enum("cycle_distance", _D.cycle_distance, ["edges", "hed_lpips", "l1"], "Relaxed-cycle distance.")
flags.DEFINE_string("hed_weights", "", "hed.keras from import_official (for hed_lpips).")
flags.DEFINE_string("lpips_weights", "", "lpips.keras from import_official (for hed_lpips).")
flags.DEFINE_integer("pool_size", _D.pool_size, "History pool size.")
flags.DEFINE_integer("niter", _D.niter, "Epochs at the initial learning rate.")
flags.DEFINE_integer("niter_decay", _D.niter_decay, "Epochs of linear decay to zero.")
flags.DEFINE_float("lr", _D.learning_rate, "Adam learning rate.")
flags.DEFINE_float("beta1", _D.beta1, "Adam beta_1.")
flags.DEFINE_integer("seed", _D.seed, "Seed of weights, data order, augmentation and pools.")
flags.DEFINE_enum("strategy", _D.strategy, list(STRATEGIES), "tf.distribute strategy.")
flags.DEFINE_enum("mixed_precision", _D.mixed_precision, list(PRECISIONS), "Keras mixed precision policy.")
flags.DEFINE_boolean("jit_compile", _D.jit_compile, "Compile the training step with XLA.")
flags.DEFINE_integer("backup_every", _D.backup_every, "Batches between mid-epoch backups (0 = end of epoch).")
flags.DEFINE_integer("keep_checkpoints", _D.keep_checkpoints, "End-of-epoch checkpoints kept.")
flags.DEFINE_integer("export_every", _D.export_every, "Epochs between generator .keras exports (0 = never).")
flags.DEFINE_integer("image_every", _D.image_every, "Epochs between TensorBoard image grids (0 = never).")
flags.DEFINE_integer("steps_per_epoch", _D.steps_per_epoch, "Limit batches per epoch (0 = every photo once).")
flags.DEFINE_integer("verbose", 1, "Keras progress output: 0 silent, 1 bar, 2 one line per epoch.")


def config_from_flags() -> TrainConfig:
    return TrainConfig(
        dataset=FLAGS.dataset or "",
        output=FLAGS.output,
        image_size=FLAGS.image_size,
        load_size=FLAGS.load_size or round(FLAGS.image_size * 572 / 512),
        batch_size=FLAGS.batch_size,
        ngf=FLAGS.ngf,
        ndf=FLAGS.ndf,
        n_blocks=FLAGS.n_blocks,
        model0_res=FLAGS.model0_res,
        lambda_cycle=FLAGS.lambda_cycle,
        lambda_drawing_cycle=FLAGS.lambda_drawing_cycle,
        lambda_truncation=FLAGS.lambda_truncation,
        lambda_local=FLAGS.lambda_local,
        truncation_levels=FLAGS.trunc_a,
        use_truncation=FLAGS.truncation,
        weighted_style_loss=FLAGS.weighted_style_loss,
        style_control=FLAGS.style_control,
        one_hot_style=FLAGS.one_hot_style,
        parts=tuple(p for p in FLAGS.parts if p),
        cycle_distance=FLAGS.cycle_distance,
        hed_weights=FLAGS.hed_weights,
        lpips_weights=FLAGS.lpips_weights,
        pool_size=FLAGS.pool_size,
        niter=FLAGS.niter,
        niter_decay=FLAGS.niter_decay,
        learning_rate=FLAGS.lr,
        beta1=FLAGS.beta1,
        seed=FLAGS.seed,
        strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        backup_every=FLAGS.backup_every,
        keep_checkpoints=FLAGS.keep_checkpoints,
        export_every=FLAGS.export_every,
        image_every=FLAGS.image_every,
        steps_per_epoch=FLAGS.steps_per_epoch,
    )


def main(argv):
    del argv
    from keras_asym.backup import BackupError
    from keras_asym.data.pipeline import DatasetLayoutError
    from keras_asym.training import NonFiniteLossError

    config = config_from_flags()
    if FLAGS.resume:
        saved = Path(config.output) / "config.json"
        if not saved.is_file():
            print(f"train: error: {saved}: nothing to resume.", file=sys.stderr)
            return 2
        if not FLAGS.dataset:
            config = TrainConfig.from_json(saved)
    if not config.dataset:
        print("train: error: --dataset is required.", file=sys.stderr)
        return 2
    try:
        logs = run_training(config, resume=FLAGS.resume, verbose=FLAGS.verbose)
    except NonFiniteLossError as err:
        print(f"train: stopped: {err}", file=sys.stderr)
        return 1
    except (FileExistsError, DatasetLayoutError, BackupError, ValueError, OSError) as err:
        print(f"train: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"finished": True, "logs": logs}))
    return 0


if __name__ == "__main__":
    cli.run(main)
