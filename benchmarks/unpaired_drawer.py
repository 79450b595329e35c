"""A generator trained from scratch by the paper's unpaired method, judged on held-out faces against a bar
fixed before training (``BAR`` below, committed before the first run's results).

    python -m benchmarks.unpaired_drawer --preset cpu            # trains (resuming), scores every export, writes results
    python -m benchmarks.unpaired_drawer --preset cpu --notrain  # scores what the run has so far
    python -m benchmarks.unpaired_drawer --preset cpu --ship     # ...and ships the final generator into keras_asym/pretrained/
    python -m benchmarks.unpaired_drawer --preset cpu --mixed_precision mixed_bfloat16  # the same run in bfloat16

The data: procedural portraits (textured photos) and procedural drawings of *other* faces in the three
styles, as ``make demo`` makes them; held-out test faces have their known drawing in every style, which
the training never sees. The model: ``python -m keras_asym.train`` with the full objective (relaxed edge
cycle, truncation loss and its schedule, three local discriminators, D_A's style head, soft-style
weighting, history pools). Nothing is paired.

The judge: a style classifier fitted only on the dataset's training drawings (never on G's), the known
drawings of the held-out faces, and the part masks of those faces. Every generator export of the run
(every ``export_every`` epochs) is scored, so the JSON holds the curve, not only the end.

Writes ``docs/results/unpaired_drawer.{json,md,png}`` (``--results``) and, with ``--ship``,
``keras_asym/pretrained/unpaired_drawer.{keras,json}``. The run folder lives in ``--output`` (outside
the work tree by default, so a later session on the same machine resumes it).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
from absl import app, flags

from benchmarks import machine
from benchmarks.common import style_judge
from benchmarks.common.session_time import SessionTime
from edge_demo.runtime.hashing import file_sha256
from edge_demo.runtime.pixels import to_model
from edge_demo.runtime.progress import Progress
from keras_asym.data.procedural import write_dataset
from keras_asym.evaluation import metrics
from keras_asym.evaluation.scoring import load_test_pairs, paired_metrics, write_samples, write_styles
from keras_asym.face.masks import LOCAL_ORDER
from keras_asym.models.networks import StyleGenerator
from keras_asym.pretrained import HERE as PRETRAINED
from keras_asym.pretrained.recipe import baselines
from keras_asym.training.config import PRECISIONS
from keras_asym.utils.imageio import list_images, read_rgb, save_keras_atomic, write_bytes_atomic

PRESETS = {
    # 128 px (the smallest size at which the official 3-layer style head has statistics), G as wide as the
    # paired demo drawer; about 1 s per step on one core of the 2-core Xeon.
    "cpu": {
        "size": 128,
        "ngf": 24,
        "ndf": 24,
        "n_blocks": 6,
        "n_layers_d": 3,
        "batch_size": 1,
        "epochs": 20,
        "steps": 500,
        "photos": 1000,
        "drawings": 1000,
        "test": 60,
        "export_every": 2,
    },
    # seconds: every step of this script (tests)
    "smoke": {
        "size": 32,
        "ngf": 4,
        "ndf": 4,
        "n_blocks": 1,
        "n_layers_d": 1,
        "batch_size": 1,
        "epochs": 2,
        "steps": 3,
        "photos": 6,
        "drawings": 6,
        "test": 6,
        "export_every": 1,
    },
}

# The bar, fixed before the first training run (2026-12-04). On the held-out faces:
BAR = {
    "style_accuracy": 0.90,  # the classifier recognises the requested style in >= 90 % of the drawings, per style
    "beats_wrong_face": ("ssim", "edge_f1", "chamfer_px"),  # per style, against another face's known drawing
    "parts_f1_beats_wrong_face": LOCAL_ORDER,  # per part (mean over styles): line F1 inside the part's mask
}
BAR_TEXT = (
    "per style: the independent classifier recognises the requested style in at least 90% of the drawings, and the "
    "drawing is closer to the face's own known drawing than another face's known drawing is (SSIM and edge-F1 higher, "
    "Chamfer lower); per part (eyes, nose, lips): line F1 inside the part's mask beats the other face's drawing"
)

_PRESET = flags.DEFINE_enum("preset", "cpu", list(PRESETS), "Data, networks and budget (see PRESETS).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the training run (weights, order, pools).")
_OUTPUT = flags.DEFINE_string(
    "output", str(Path("~/.cache/keras_asym/work/unpaired_drawer").expanduser()), "Work folder: dataset, classifier and run."
)
_RESULTS = flags.DEFINE_string("results", "docs/results", "Where the JSON, table and figure go.")
_TRAIN = flags.DEFINE_boolean("train", True, "Train (or resume) before scoring; --notrain scores what exists.")
_THREADS = flags.DEFINE_integer("threads", 0, "Threads of the training process (0: every core).", lower_bound=0)
_SHIP = flags.DEFINE_boolean("ship", False, "Copy the final generator into keras_asym/pretrained/ with its record.")
_PRECISION = flags.DEFINE_enum(
    "mixed_precision",
    "off",
    PRECISIONS,
    "Keras precision policy of the training run; any but off trains its own run folder and writes "
    "unpaired_drawer_<policy>.* beside the float32 results, judged by the same held-out scores.",
)


def make_dataset(root: Path, preset: dict) -> Path:
    dataset = root / "dataset"
    if not (dataset / "manifest.json").is_file():
        write_dataset(dataset, photos=preset["photos"], drawings=preset["drawings"], test=preset["test"], size=preset["size"], seed=123)
    return dataset


def train_args(preset: dict, dataset: Path, run: Path, seed: int, precision: str = "off") -> list[str]:
    half = max(1, preset["epochs"] // 2)
    policy = [] if precision == "off" else [f"--mixed_precision={precision}"]
    return [
        "-m",
        "keras_asym.train",
        f"--dataset={dataset}",
        f"--output={run}",
        f"--image_size={preset['size']}",
        f"--batch_size={preset['batch_size']}",
        f"--ngf={preset['ngf']}",
        f"--ndf={preset['ndf']}",
        f"--n_blocks={preset['n_blocks']}",
        f"--n_layers_d={preset['n_layers_d']}",
        f"--niter={half}",
        f"--niter_decay={preset['epochs'] - half}",
        f"--steps_per_epoch={preset['steps']}",
        f"--export_every={preset['export_every']}",
        "--backup_every=250",
        "--image_every=0",
        f"--seed={seed}",
        "--cycle_distance=edges",
        "--truncation",
        "--parts=eyes,nose,lips",
        "--verbose=1",
        *policy,
    ]


def train(preset: dict, dataset: Path, run: Path, seed: int, threads: int, precision: str = "off") -> float:
    """Trains or resumes the run to its end (``train``'s own progress lines go to ``run``.log); returns seconds.

    ``RUN/cpu_seconds.json`` adds up the wall time of every session, updated every minute, so a session stopped
    mid-run still counts."""
    args = [sys.executable, *train_args(preset, dataset, run, seed, precision)]
    if (run / "config.json").is_file():
        args.append("--resume")
    env = dict(os.environ)
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS="1")
    account = SessionTime(run, threads).account
    started = time.perf_counter()
    with open(f"{run}.log", "a") as log:
        print(f"unpaired_drawer: training in {run} (log: {run}.log)", flush=True)
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).resolve().parents[1])
        last = started
        while process.poll() is None:
            time.sleep(1.0)
            if time.perf_counter() - last >= 60.0:
                last = time.perf_counter()
                account(last - started)
    seconds = time.perf_counter() - started
    account(seconds)
    if process.returncode != 0:
        raise RuntimeError(f"train exited {process.returncode}; see {run}.log")
    return seconds


def fit_classifier(dataset: Path, size: int, seed: int = 7) -> keras.Model:
    """The style judge fitted only on the dataset's training drawings and their labels."""
    files = list_images(dataset / "B")
    drawings = np.stack([read_rgb(f)[..., 0] for f in files])
    labels = np.array([int(np.argmax(np.load(dataset / "B_feat" / f"{f.stem}.npy"))) for f in files])
    return style_judge.fit(drawings, labels, seed)


style_accuracy = style_judge.accuracy


def load_part_masks(dataset: Path, size: int) -> dict[str, np.ndarray]:
    import cv2

    files = list_images(dataset / "test" / "A")
    return {
        part: np.stack(
            [
                cv2.resize(read_rgb(dataset / "test" / f"A_{part}" / f.name)[..., 0], (size, size), interpolation=cv2.INTER_NEAREST)
                for f in files
            ]
        )
        for part in LOCAL_ORDER
    }


def part_scores(outputs: dict, drawings: dict, masks: dict) -> dict:
    """Per part: line precision, recall and F1 inside the part's mask, mean over faces, per style and their mean."""
    result = {}
    for part, mask in masks.items():
        per_style = {}
        for k, own in drawings.items():
            scores = [metrics.edge_scores_in(o, r, m) for o, r, m in zip(outputs[k], own, mask)]
            per_style[f"style{k}"] = {key: float(np.mean([s[key] for s in scores])) for key in ("precision", "recall", "f1")}
        result[part] = {
            **per_style,
            "mean": {key: float(np.mean([v[key] for v in per_style.values()])) for key in ("precision", "recall", "f1")},
        }
    return result


def score(generator, photos, drawings, masks, classifier, floors, part_floors) -> dict:
    paired, outputs = paired_metrics(generator, photos, drawings)
    accuracy = style_accuracy(classifier, outputs)
    parts = part_scores(outputs, drawings, masks)
    checks = {}
    for style, row in paired.items():
        wrong = floors[style]["wrong_face"]
        checks[f"{style}: style recognised >= {BAR['style_accuracy']:.0%}"] = accuracy[style] >= BAR["style_accuracy"]
        checks[f"{style}: SSIM above the wrong face"] = row["ssim"] > wrong["ssim"]
        checks[f"{style}: edge-F1 above the wrong face"] = row["edge_f1"] > wrong["edge_f1"]
        checks[f"{style}: Chamfer below the wrong face"] = row["chamfer_px"] < wrong["chamfer_px"]
    for part in BAR["parts_f1_beats_wrong_face"]:
        checks[f"{part}: line F1 in the mask above the wrong face"] = parts[part]["mean"]["f1"] > part_floors[part]["mean"]["f1"]
    return {
        "paired": paired,
        "style_accuracy": accuracy,
        "parts": parts,
        "checks": checks,
        "meets_bar": all(checks.values()),
        "_outputs": outputs,
    }


def loss_plot(run: Path, path: Path) -> None:
    """Every epoch's mean of the terms that say whether the model learns (``history.csv``), against ln 3 for the style terms."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {int(r["epoch"]): r for r in csv.DictReader((run / "history.csv").open())} if (run / "history.csv").is_file() else {}
    if not rows:
        return
    epochs = sorted(rows)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    groups = (
        ("cycles", ("relaxed_cycle", "truncation_cycle", "drawing_cycle")),
        ("adversarial", ("gan_drawing", "gan_photo", "local_eyes", "local_nose", "local_lips", "d_drawing", "d_photo")),
        ("style (chance: ln 3)", ("style_cls", "d_style_cls")),
    )
    for ax, (title, keys) in zip(axes, groups):
        for key in keys:
            if key in rows[epochs[0]]:
                ax.plot([e + 1 for e in epochs], [float(rows[e][key]) for e in epochs], marker=".", label=key)
        if title.startswith("style"):
            ax.axhline(np.log(3), color="gray", linestyle="--", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.partial.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def discriminator_view(run: Path, photos: np.ndarray, drawings: dict) -> dict | None:
    """How the run's own D_A (newest end-of-epoch checkpoint) classifies the known drawings and G's drawings of
    each style: beside the independent judge, this tells a G that draws a style from one that only satisfies
    D_A's head (which the official objective also trains on G's fakes, labelled with the requested style)."""
    from keras_asym.training.config import TrainConfig
    from keras_asym.training.loop import create_model

    checkpoints = sorted((run / "checkpoints").glob("epoch-*.weights.h5"))
    if not checkpoints:
        return None
    model = create_model(TrainConfig.from_json(run / "config.json"))
    model.load_weights(checkpoints[-1])

    def shares(images: np.ndarray) -> list[float]:
        x = to_model(images[..., None])
        predicted = np.argmax(np.asarray(model.drawing_discriminator(x)[1]), -1)
        return [float(v) for v in np.bincount(predicted, minlength=3) / len(predicted)]

    _, outputs = paired_metrics(model.generator, photos, drawings)
    return {
        "checkpoint": checkpoints[-1].name,
        "known_drawings": {f"style{k}": shares(d) for k, d in drawings.items()},
        "generator_drawings": {f"style{k}": shares(outputs[k]) for k in drawings},
        "note": "share of drawings D_A's style head calls style 1, 2, 3",
    }


def _steps_of(export: Path, run: Path, preset: dict) -> int:
    if export.name == "generator.keras":
        return preset["epochs"] * preset["steps"]
    return int(export.stem.split("-")[-1]) * preset["steps"]


def _policy_name(precision: str) -> str:
    return "float32" if precision == "off" else precision


def markdown(result: dict) -> str:
    p = result["preset"]
    lines = [
        f"Procedural data at {p['size']} px: {p['photos']} photos and {p['drawings']} drawings of other faces; "
        f"{result['test_faces']} held-out faces with their known drawings. G: ngf {p['ngf']}, {p['n_blocks']} blocks; "
        f"D's: ndf {p['ndf']}, {p['n_layers_d']} layers; batch {p['batch_size']}; {p['epochs']} epochs x {p['steps']} steps planned; "
        f"precision {_policy_name(result.get('mixed_precision', 'off'))}. "
        f"Style classifier (fitted on the training drawings only): {result['classifier_accuracy_on_known_drawings']:.3f} on the held-out "
        f"known drawings. Machine: {result['machine']}, {result['date']}.",
        "",
        f"The bar (fixed before training): {BAR_TEXT}.",
        "",
        "| steps | style acc. 1 / 2 / 3 | SSIM 1 / 2 / 3 | edge-F1 1 / 2 / 3 | Chamfer px 1 / 2 / 3 | part F1 eyes / nose / lips | bar |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [("another face's known drawing", None)] + [(str(c["steps"]), c) for c in result["curve"]]
    for label, c in rows:
        if c is None:
            f = result["baselines"]
            acc = "—"
            ssim = " / ".join(f"{f[s]['wrong_face']['ssim']:.3f}" for s in ("style1", "style2", "style3"))
            ef1 = " / ".join(f"{f[s]['wrong_face']['edge_f1']:.3f}" for s in ("style1", "style2", "style3"))
            cham = " / ".join(f"{f[s]['wrong_face']['chamfer_px']:.2f}" for s in ("style1", "style2", "style3"))
            parts = " / ".join(f"{result['part_baselines'][q]['mean']['f1']:.3f}" for q in LOCAL_ORDER)
            bar = ""
        else:
            acc = " / ".join(f"{c['style_accuracy'][s]:.2f}" for s in ("style1", "style2", "style3"))
            ssim = " / ".join(f"{c['paired'][s]['ssim']:.3f}" for s in ("style1", "style2", "style3"))
            ef1 = " / ".join(f"{c['paired'][s]['edge_f1']:.3f}" for s in ("style1", "style2", "style3"))
            cham = " / ".join(f"{c['paired'][s]['chamfer_px']:.2f}" for s in ("style1", "style2", "style3"))
            parts = " / ".join(f"{c['parts'][q]['mean']['f1']:.3f}" for q in LOCAL_ORDER)
            bar = "met" if c["meets_bar"] else f"not met ({sum(not v for v in c['checks'].values())} of {len(c['checks'])} checks fail)"
        lines.append(f"| {label} | {acc} | {ssim} | {ef1} | {cham} | {parts} | {bar} |")
    view = result.get("discriminator_view")
    if view:
        lines += [
            "",
            f"The run's own D_A ({view['checkpoint']}): share of drawings its style head calls style 1 / 2 / 3.",
            "",
            "| drawings | style 1 | style 2 | style 3 |",
            "|---|---|---|---|",
        ]
        for source, label in (("known_drawings", "known {} drawings"), ("generator_drawings", "G's drawings, {} requested")):
            for style, row in view[source].items():
                lines.append(f"| {label.format(style)} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    return "\n".join(lines) + "\n"


def ship(export: Path, result: dict, last: dict) -> Path:
    """The final generator (weights only) and its record into ``keras_asym/pretrained/``."""
    source = keras.saving.load_model(export, compile=False)
    shipped = StyleGenerator.from_config(source.get_config())
    shipped.set_weights(source.get_weights())
    target = PRETRAINED / "unpaired_drawer.keras"
    save_keras_atomic(shipped, target)
    record = {
        "what": "the paper's generator trained from scratch by the paper's unpaired method (keras_asym.train, full objective) "
        "on procedural photos and drawings of different faces",
        "command": result["command"],
        "train_command": "python " + " ".join(result["train_args"]),
        "settings": result["preset"],
        "steps": last["steps"],
        "train_wall_seconds": result["train_wall_seconds"],
        "held_out": {k: last[k] for k in ("paired", "style_accuracy", "parts", "checks", "meets_bar")},
        "baselines": result["baselines"],
        "bar": BAR_TEXT,
        "sha256": file_sha256(target),
        "bytes": target.stat().st_size,
        "machine": result["machine"],
        "date": result["date"],
        "results": "docs/results/unpaired_drawer.json",
    }
    write_bytes_atomic(target.with_suffix(".json"), json.dumps(record, indent=1).encode())
    return target


def main(argv):
    del argv
    preset = PRESETS[_PRESET.value]
    root = Path(_OUTPUT.value) / _PRESET.value
    root.mkdir(parents=True, exist_ok=True)
    dataset = make_dataset(root, preset)
    precision = _PRECISION.value
    suffix = "" if precision == "off" else f"_{precision}"
    run = root / f"run_seed{_SEED.value}{suffix}"
    if _TRAIN.value:
        train(preset, dataset, run, _SEED.value, _THREADS.value, precision)

    size = preset["size"]
    photos, drawings, _ = load_test_pairs(dataset, size)
    masks = load_part_masks(dataset, size)
    classifier = fit_classifier(dataset, size)
    known = style_accuracy(classifier, drawings)
    floors = baselines(drawings)
    wrong = {k: np.roll(d, 1, axis=0) for k, d in drawings.items()}
    part_floors = part_scores(wrong, drawings, masks)

    exports = sorted((run / "generators").glob("generator-epoch-*.keras"))
    if (run / "generators" / "generator.keras").is_file() and (run / "final.json").is_file():
        exports.append(run / "generators" / "generator.keras")
    if not exports:
        print(f"unpaired_drawer: {run} has no generator export yet.", file=sys.stderr)
        return 1
    curve, last_outputs = [], None
    progress = Progress(len(exports), "unpaired_drawer: scoring", unit="exports", interval=0.0)
    for export in exports:
        generator = keras.saving.load_model(export, compile=False)
        scored = score(generator, photos, drawings, masks, classifier, floors, part_floors)
        last_outputs = scored.pop("_outputs")
        curve.append({"export": export.name, "steps": _steps_of(export, run, preset), **scored})
        progress.update(progress.done + 1, note=f"{export.name}: bar {'met' if scored['meets_bar'] else 'not met'}")
    if exports[-1].name == "generator.keras" and len(curve) > 1 and curve[-2]["steps"] == curve[-1]["steps"]:
        curve.pop(-2)  # the last epoch's export and the final generator are the same weights

    results = Path(_RESULTS.value)
    results.mkdir(parents=True, exist_ok=True)
    wall = json.loads((run / "cpu_seconds.json").read_text()) if (run / "cpu_seconds.json").is_file() else {}
    result = {
        "command": " ".join(["python -m benchmarks.unpaired_drawer", *sys.argv[1:]]),
        "train_args": train_args(preset, Path("DATASET"), Path("RUN"), _SEED.value, precision),
        "preset": {"name": _PRESET.value, **preset},
        "seed": _SEED.value,
        "mixed_precision": precision,
        "bar": BAR_TEXT,
        "software": {"python": platform.python_version(), "keras": keras.__version__},
        "machine": machine.cpu_model(),
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "train_wall_seconds": round(wall.get("train_wall_seconds", 0.0), 1),
        # per session of training: its threads and wall seconds (records before sessions were kept: one entry)
        "train_sessions": wall.get("sessions", [{"threads": wall.get("threads"), "seconds": wall.get("train_wall_seconds")}]),
        "finished": (run / "final.json").is_file(),
        "test_faces": int(len(photos)),
        "classifier_accuracy_on_known_drawings": float(np.mean(list(known.values()))),
        "classifier_accuracy_per_style": known,
        "baselines": floors,
        "part_baselines": part_floors,
        "curve": curve,
        "discriminator_view": discriminator_view(run, photos, drawings),
    }
    stem = results / f"unpaired_drawer{suffix}"
    write_bytes_atomic(stem.with_suffix(".json"), json.dumps(result, indent=1).encode())
    table = markdown(result)
    write_bytes_atomic(stem.with_suffix(".md"), table.encode())
    write_samples(stem.with_name(f"{stem.name}_samples.png"), photos, last_outputs, drawings)
    write_styles(stem.with_name(f"{stem.name}_styles.png"), photos, last_outputs, count=4)
    loss_plot(run, stem.with_name(f"{stem.name}_losses.png"))
    print(table)
    if _SHIP.value:
        if precision != "off":
            print("unpaired_drawer: only the float32 run ships.", file=sys.stderr)
            return 1
        if not result["finished"]:
            print("unpaired_drawer: the run has not finished; nothing shipped.", file=sys.stderr)
            return 1
        print(f"unpaired_drawer: shipped {ship(exports[-1], result, curve[-1])}")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
