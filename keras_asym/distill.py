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
learns those drawings with L1, an edge and an SSIM term (``keras_asym.distillation.model``),
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

import json
import sys
from pathlib import Path

from absl import flags

from edge_demo.runtime import cli
from keras_asym.distillation.config import CONFIG_NAME, DistillConfig
from keras_asym.utils import config_flags
from keras_asym.utils.config_flags import define_flags, from_flags
from keras_asym.utils.imageio import write_json_atomic

FLAGS = flags.FLAGS
define_flags(DistillConfig)  # every option of a run, from its one definition
flags.adopt_module_key_flags(config_flags)  # --helpshort lists them as this command's own
flags.DEFINE_boolean("resume", False, "Continue the run in --output (teacher and data from its config).")
flags.DEFINE_integer("verbose", 2, "Keras progress output.")


def main(argv):
    del argv
    config = from_flags(DistillConfig)
    run_dir = Path(config.output)
    saved = run_dir / CONFIG_NAME
    if FLAGS.resume:
        if not saved.is_file():
            print(f"distill: error: {saved}: nothing to resume.", file=sys.stderr)
            return 2
        config = DistillConfig.from_json(json.loads(saved.read_text()))
    else:
        if not config.teacher:
            print("distill: error: --teacher is required.", file=sys.stderr)
            return 2
        if saved.is_file():
            print(f"distill: error: {run_dir} already holds a run (use --resume or another --output).", file=sys.stderr)
            return 2
        config = config.resolved()
        try:
            config.validate()
        except ValueError as err:
            cli.error("distill", err)
            return 2
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(saved, config.to_json())
    from keras_asym.distillation.recipe import run  # lazy: TensorFlow, once the recipe and the run folder are checked
    from keras_asym.training.backup import BackupError  # lazy: as above
    from keras_asym.training.callbacks import NonFiniteLossError  # lazy: as above

    try:
        report = run(config, resume=FLAGS.resume, verbose=FLAGS.verbose)
    except NonFiniteLossError as err:
        cli.error("distill", err, word="stopped")
        return 1
    except (FileNotFoundError, BackupError, ValueError) as err:
        cli.error("distill", err)
        return 2
    scores = ", ".join(f"{k} SSIM {v['ssim']:.3f} edge-F1 {v['edge_f1']:.3f}" for k, v in report["vs_teacher"].items())
    print(f"distill: {report['generator']} ({report['student']['gflops']:.2f} GFLOP at {report['size']}px); vs teacher: {scores}")
    return 0


if __name__ == "__main__":
    cli.run(main)
