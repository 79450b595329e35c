"""Score a trained run: paired drawing metrics, style accuracy, the hidden-information test, FID/KID.

    python -m keras_asym.evaluate --run runs/demo --dataset data/procedural --output eval/demo
    python -m keras_asym.evaluate --run runs/x --dataset d --real_drawings drawings/ --inception_weights inception.h5

- Paired metrics (datasets with ``test/A`` photos and ``test/B_style{1,2,3}``
  drawings of the same faces, as ``keras_asym.generate`` writes): SSIM,
  edge-F1 and Chamfer distance of G's drawing in each style against the known
  drawing.
- Style accuracy: G's drawings in style k classified by ``--style_classifier``
  (from ``python -m keras_asym.style``); skipped without one.
- Hidden information (the paper's argument for the truncation loss): the
  reconstruction error of F(G(x)) against that of F(trunc(G(x))), where
  trunc quantizes G(x) to 6 bits, and the amplitude of G(x) - trunc(G(x)). A
  generator that hides the photo in invisible low-amplitude signals
  reconstructs well from G(x) and badly from its truncation; the asymmetric
  model should show a small gap. Needs a run folder (F comes from its
  latest checkpoint).
- FID/KID per style against ``--real_drawings/style{k}`` with InceptionV3
  weights from ``--inception_weights`` (``imagenet`` to let Keras download
  them); skipped, saying so, otherwise.

Writes ``evaluation.md``, ``evaluation.json`` and ``samples.png`` into ``--output``.
"""

from __future__ import annotations

from absl import flags

from edge_demo.runtime import cli
from keras_asym.evaluation.scoring import evaluate, markdown

_RUN = flags.DEFINE_string("run", None, "Train run folder (config.json + checkpoints), or use --generator.")
_GENERATOR = flags.DEFINE_string("generator", None, "A generator .keras alone (no hidden-information test).")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset with test/A and test/B_style{1,2,3} (procedural).", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.", required=True)
_SIZE = flags.DEFINE_integer("size", 0, "Evaluation size (default: the run's image size, else 256).", lower_bound=0, upper_bound=4096)
_STYLE_CLASSIFIER = flags.DEFINE_string("style_classifier", None, "Style classifier .keras (python -m keras_asym.style).")
_REAL_DRAWINGS = flags.DEFINE_string("real_drawings", None, "Folder with style1/ style2/ style3/ real drawings for FID/KID.")
_INCEPTION = flags.DEFINE_string("inception_weights", None, "InceptionV3 no-top weights .h5, or 'imagenet'.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Use at most this many test photos (0: all).", lower_bound=0, upper_bound=1000000000)


def main(argv):
    del argv
    try:
        report = evaluate(
            _RUN.value,
            _GENERATOR.value,
            _DATASET.value,
            _OUTPUT.value,
            _SIZE.value,
            _STYLE_CLASSIFIER.value,
            _REAL_DRAWINGS.value,
            _INCEPTION.value,
            _LIMIT.value,
        )
    except (FileNotFoundError, ValueError) as err:
        cli.error("evaluate", err)
        return 2
    print(markdown(report))
    return 0


if __name__ == "__main__":
    cli.run(main)
