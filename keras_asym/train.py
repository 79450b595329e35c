"""Train the asymmetric cycle model with ``keras.Model.fit``.

    python -m keras_asym.train --dataset DATASET --output runs/my_run
    python -m keras_asym.train --flagfile configs/official.flags --dataset DATASET --output runs/official
    python -m keras_asym.train --output runs/my_run --resume            # continue a killed run

``--resume`` continues the run in the folder named by ``--output`` (wherever it
has been moved) with the options it recorded in ``config.json``; an option given
on the command line that differs from the recorded one is refused unless
``--allow_changes`` (the dataset may be given again to say where it now lives).

``DATASET`` is a folder in the ``prepare`` layout. The run folder gets
``config.json``, a mid-epoch backup (``backup/``), end-of-epoch checkpoints,
generator exports (``generators/*.keras``) and TensorBoard logs (``logs/``).
``--strategy mirrored`` uses every local GPU; ``multi_worker`` reads the
cluster from ``TF_CONFIG`` (see the README). Exit status: 0 when training
finished, 1 when it stopped on a non-finite loss, 2 when it could not start.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from absl import flags

from edge_demo.runtime import cli
from keras_asym.training.config import TrainConfig
from keras_asym.utils import config_flags
from keras_asym.utils.config_flags import define_flags, from_flags

FLAGS = flags.FLAGS
define_flags(TrainConfig)  # every option of a run, from its one definition
flags.adopt_module_key_flags(config_flags)  # --helpshort lists them as this command's own
flags.DEFINE_boolean("resume", False, "Continue the run in --output from its last backup, with its recorded options.")
flags.DEFINE_integer("verbose", 1, "Keras progress output: 0 silent, 1 bar, 2 one line per epoch.")
flags.DEFINE_boolean("allow_changes", False, "With --resume: continue with the options given here where they differ from the run's.")

# Options a resumed run may take from the command line without --allow_changes: where things are, not what they are.
LOCATIONS = ("output", "dataset")


def resumed_config(given: TrainConfig, saved: Path, allow_changes: bool) -> TrainConfig:
    """The recorded config with ``--output`` as given, the options given on the command line, and a clear error
    (``ValueError``) when those change the run and ``allow_changes`` is off."""
    try:
        recorded = TrainConfig.from_json(saved)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"{saved}: not a readable run configuration ({err}).") from err
    explicit = [f.name for f in dataclasses.fields(TrainConfig) if f.name in FLAGS and FLAGS[f.name].present]
    changed = [n for n in explicit if n not in LOCATIONS and getattr(given, n) != getattr(recorded, n)]
    if changed and not allow_changes:
        details = ", ".join(f"--{n} {getattr(given, n)!r} (run: {getattr(recorded, n)!r})" for n in changed)
        raise ValueError(f"{saved.parent}: --resume with changed options {details}; pass --allow_changes to continue with them.")
    return dataclasses.replace(recorded, output=given.output, **{n: getattr(given, n) for n in explicit if n != "output"})


def main(argv):
    del argv

    config = from_flags(TrainConfig)
    if FLAGS.resume:
        saved = Path(config.output) / "config.json"
        if not saved.is_file():
            print(f"train: error: {saved}: nothing to resume.", file=sys.stderr)
            return 2
        try:
            config = resumed_config(config, saved, FLAGS.allow_changes)
        except ValueError as err:
            cli.error("train", err)
            return 2
    if not config.dataset:
        print("train: error: --dataset is required.", file=sys.stderr)
        return 2
    try:
        config.validate(networks=False)  # what run_training checks first, before TensorFlow is loaded
    except ValueError as err:
        cli.error("train", err)
        return 2
    from keras_asym.data.pipeline import DatasetLayoutError  # lazy: TensorFlow, once the options are checked
    from keras_asym.training.backup import BackupError  # lazy: as above
    from keras_asym.training.callbacks import NonFiniteLossError  # lazy: as above
    from keras_asym.training.loop import run_training  # lazy: as above

    try:
        logs = run_training(config, resume=FLAGS.resume, verbose=FLAGS.verbose)
    except NonFiniteLossError as err:
        cli.error("train", err, word="stopped")
        return 1
    except (FileExistsError, DatasetLayoutError, BackupError, ValueError, OSError) as err:
        cli.error("train", err)
        return 2
    print(json.dumps({"finished": True, "logs": logs}))
    return 0


if __name__ == "__main__":
    cli.run(main)
