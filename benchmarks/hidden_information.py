"""The paper's central claim, measured: does a strict cycle make G hide the photo in its drawing, and does
the asymmetric model stop it? Plus the ablations, on the same data and budget.

    # what docs/results/ come from (resumable; several sessions of a 2-core machine):
    python -m benchmarks.hidden_information --preset long --ablation_seeds= --workers 1 --threads 1   # the comparison
    python -m benchmarks.hidden_information --preset hour --seeds= --ablation_seeds=0 --workers 1 --threads 1  # ablations
    python -m benchmarks.hidden_information --preset cpu        # a quick look: 2,000 steps per run

The setting: procedural portraits rendered *plain* (flat skin, hair, clothing
and background colours, no texture or lighting): what a line drawing cannot
show is a dozen colours, a few bits a strict cycle can solve by hiding them.
Small images (``size``), narrow networks and several epochs make it a CPU job.

Runs (``python -m keras_asym.train``, same networks, data, steps and seeds):

- ``cyclegan``: strict L1 forward cycle, no truncation loss, no local discriminators;
- ``asymmetric``: the paper's model (relaxed edge cycle, truncation loss with its
  schedule, local discriminators); it is also the ablations' full model;
- ablations of the full model: ``no_truncation``, ``strict_cycle`` (L1 instead of
  the relaxed cycle), ``no_local`` (no local discriminators), ``no_style`` (G not
  conditioned on the style vector).

Measured on held-out plain test photos at every end-of-epoch checkpoint (the
trend) and reported at the last (``keras_asym.evaluation.scoring.hidden_information``):
L1 of F(G(x)), of F(trunc(G(x))) and of F(G(x) + 1 gray level of noise); the
truncation's amplitude; and how much of the photo's colour is linearly
predictable from the residual G(x) - trunc(G(x)). Ablations add paired SSIM,
edge-F1 and Chamfer per style against the known drawings, and style accuracy
from a small classifier fitted here on procedural drawings.

Writes ``docs/results/hidden_information.{json,md,png}`` when ``--seeds`` are given and
``docs/results/ablations.{json,md}`` when ``--ablation_seeds`` are (``--results``); runs
live in ``--output`` and are resumed (a finished run is not trained again).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

from edge_demo.runtime.pixels import to_model

PRESETS = {
    # ~15 min per asymmetric model with 2 runs side by side on 2 cores (one thread each)
    "cpu": {
        "size": 32,
        "ngf": 16,
        "ndf": 16,
        "n_blocks": 3,
        "n_layers_d": 1,
        "batch_size": 4,
        "epochs": 4,
        "steps": 500,
        "photos": 200,
        "test": 200,
    },
    # the issue's budget: about an hour of one core per asymmetric model
    "hour": {
        "size": 32,
        "ngf": 16,
        "ndf": 16,
        "n_blocks": 3,
        "n_layers_d": 1,
        "batch_size": 4,
        "epochs": 16,
        "steps": 500,
        "photos": 200,
        "test": 200,
    },
    # until CycleGAN's F(G(x)) can beat the mean photo: 20,000 steps per run (about 2.5 h of one core each);
    # resumable, so it may take several sessions
    "long": {
        "size": 32,
        "ngf": 16,
        "ndf": 16,
        "n_blocks": 3,
        "n_layers_d": 1,
        "batch_size": 4,
        "epochs": 40,
        "steps": 500,
        "photos": 200,
        "test": 200,
    },
    # seconds: exercises every step of this script (tests)
    "smoke": {
        "size": 32,
        "ngf": 4,
        "ndf": 4,
        "n_blocks": 1,
        "n_layers_d": 1,
        "batch_size": 2,
        "epochs": 2,
        "steps": 3,
        "photos": 8,
        "test": 20,
    },
}
STUDY = {
    # CycleGAN as its paper trains it: strict L1 cycles weighted 10 (the asymmetric paper's lambdas are 5)
    "cyclegan": ["--cycle_distance=l1", "--notruncation", "--parts=", "--lambda_cycle=10", "--lambda_drawing_cycle=10"],
    "asymmetric": ["--cycle_distance=edges", "--truncation", "--parts=eyes,nose,lips"],
}
ABLATIONS = {
    "no_truncation": ["--cycle_distance=edges", "--notruncation", "--parts=eyes,nose,lips"],
    "strict_cycle": ["--cycle_distance=l1", "--truncation", "--parts=eyes,nose,lips"],
    "no_local": ["--cycle_distance=edges", "--truncation", "--parts="],
    "no_style": ["--cycle_distance=edges", "--truncation", "--parts=eyes,nose,lips", "--nostyle_control"],
}

SCORING = "ridge drops constant features"  # part of each cached score's key: a change to the measures rescores

_PRESET = flags.DEFINE_enum("preset", "cpu", list(PRESETS), "Size, networks and budget (see PRESETS).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1"], "Seeds of the CycleGAN / asymmetric comparison.")
_ABLATION_SEEDS = flags.DEFINE_list("ablation_seeds", ["0"], "Seeds of the ablations (the full model is 'asymmetric').")
_WORKERS = flags.DEFINE_integer("workers", 2, "Trainings side by side (each gets cores / workers threads).", lower_bound=1)
_OUTPUT = flags.DEFINE_string(
    "output", str(Path("~/.cache/keras_asym/work/hidden_information").expanduser()), "Work folder: dataset and runs (kept across sessions)."
)
_THREADS = flags.DEFINE_integer("threads", 0, "Threads per training (0: cores / workers).", lower_bound=0)
_RESULTS = flags.DEFINE_string("results", "docs/results", "Where the JSON, table and figure go.")
_TRAIN = flags.DEFINE_boolean("train", True, "Train (or resume) every run first; --notrain scores the checkpoints there are.")


def run_plan(seeds: list[int], ablation_seeds: list[int]) -> list[tuple[str, int, list[str]]]:
    """(variant, seed, train flags) of every run, the comparison first."""
    plan = [(name, seed, extra) for seed in seeds for name, extra in STUDY.items()]
    # an ablation is read against the full model trained with its seed, which the comparison may not have run
    plan += [("asymmetric", seed, STUDY["asymmetric"]) for seed in ablation_seeds if seed not in seeds]
    plan += [(name, seed, extra) for seed in ablation_seeds for name, extra in ABLATIONS.items()]
    return plan


def train_args(preset: dict, dataset: Path, run: Path, seed: int, extra: list[str]) -> list[str]:
    half = max(1, preset["epochs"] // 2)
    return [
        "-m",
        "keras_asym.train",
        f"--dataset={dataset}",
        f"--output={run}",
        f"--image_size={preset['size']}",
        f"--load_size={preset['size']}",
        f"--batch_size={preset['batch_size']}",
        f"--ngf={preset['ngf']}",
        f"--ndf={preset['ndf']}",
        f"--n_blocks={preset['n_blocks']}",
        f"--n_layers_d={preset['n_layers_d']}",
        f"--niter={half}",
        f"--niter_decay={preset['epochs'] - half}",
        f"--steps_per_epoch={preset['steps']}",
        f"--keep_checkpoints={preset['epochs']}",
        f"--seed={seed}",
        "--image_every=0",
        "--export_every=0",
        "--verbose=0",
        *extra,
    ]


def train_all(preset: dict, dataset: Path, root: Path, plan, workers: int) -> None:
    """Trains every unfinished run, ``workers`` at a time, resuming interrupted ones; progress with an ETA per run.

    Each run's training time adds up across sessions in ``RUN/cpu_seconds.json`` (``benchmarks.common.session_time``)."""
    from benchmarks.common.session_time import SessionTime
    from edge_demo.runtime.progress import Progress

    todo = [(name, seed, extra) for name, seed, extra in plan if not (root / f"{name}_seed{seed}" / "finished.json").is_file()]
    progress = Progress(len(plan), "hidden_information: trainings", unit="runs", interval=0.0, start=len(plan) - len(todo))
    threads = str(_THREADS.value or max(1, (os.cpu_count() or 2) // workers))
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"}
    running: list[tuple[subprocess.Popen, Path, float, str, SessionTime]] = []
    last_account = time.perf_counter()
    while todo or running:
        while todo and len(running) < workers:
            name, seed, extra = todo.pop(0)
            run = root / f"{name}_seed{seed}"
            args = [sys.executable, *train_args(preset, dataset, run, seed, extra)]
            if (run / "config.json").is_file():
                args.append("--resume")
            log = (root / f"{name}_seed{seed}.log").open("a")
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
            running.append((process, run, time.perf_counter(), f"{name} seed {seed}", SessionTime(run, int(threads))))
        time.sleep(2.0)
        if time.perf_counter() - last_account >= 60.0:  # a session stopped mid-run still counts
            last_account = time.perf_counter()
            for _, _, started, _, session in running:
                session.account(last_account - started)
        for item in list(running):
            process, run, started, label, session = item
            if process.poll() is None:
                continue
            running.remove(item)
            seconds = time.perf_counter() - started
            session.account(seconds)
            if process.returncode != 0:
                raise RuntimeError(f"{label}: train exited {process.returncode}; see {run}.log")
            (run / "finished.json").write_text(json.dumps({"train_seconds": SessionTime.total(run)}))
            progress.update(progress.done + 1, note=f"{label} trained in {seconds:.0f} s")


def load_checkpoint(run: Path, checkpoint: Path):
    """(G, F, config, optimizer steps) of one end-of-epoch checkpoint of a run."""
    from keras_asym.training.config import TrainConfig
    from keras_asym.training.loop import create_model

    config = TrainConfig.from_json(run / "config.json")
    model = create_model(config)
    model.load_weights(checkpoint)
    meta = checkpoint.with_name(checkpoint.name.replace(".weights.h5", ".json"))
    steps = json.loads(meta.read_text())["iterations"] if meta.is_file() else None
    return model.generator, model.photo_generator, config, steps


def trend_epochs(epochs: list[int], planned: int, rows: int = 10) -> list[int]:
    """About ``rows`` evenly spaced epochs of a run planned for ``planned`` (the same for every run of a preset,
    so seeds can be averaged epoch by epoch), and the last epoch there is."""
    every = max(1, planned // rows)
    return [e for e in epochs if e % every == 0 or e == epochs[-1]]


def _epoch_of(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[1].split(".")[0])


def score_checkpoints(run: Path, photos, planned_epochs: int) -> list[dict]:
    """The hidden-information scores of about ten end-of-epoch checkpoints of a run (the last always), oldest first.

    Scores are kept in the run's ``scores.json`` keyed by checkpoint name, size and
    modification time, so a study that grows across sessions scores each checkpoint once.
    """
    from keras_asym.evaluation.scoring import hidden_information
    from keras_asym.utils.imageio import write_bytes_atomic

    cache_path = run / "scores.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    key = f"{len(photos)} photos, {SCORING}"
    trend = []
    checkpoints = {_epoch_of(c): c for c in (run / "checkpoints").glob("epoch-*.weights.h5")}
    for epoch in trend_epochs(sorted(checkpoints), planned_epochs):
        checkpoint = checkpoints[epoch]
        stat = checkpoint.stat()
        stamp = [key, stat.st_size, stat.st_mtime_ns]
        entry = cache.get(checkpoint.name)
        if entry is None or entry["stamp"] != stamp:
            generator, photo_generator, config, steps = load_checkpoint(run, checkpoint)
            scores = hidden_information(generator, photo_generator, photos, config.truncation_levels)
            entry = {"stamp": stamp, "epoch": epoch, "steps": steps, **scores}
            cache[checkpoint.name] = entry
            write_bytes_atomic(cache_path, json.dumps(cache, indent=1).encode())
        trend.append({k: v for k, v in entry.items() if k != "stamp"})
    return trend


def style_classifier(size: int, per_style: int = 300, seed: int = 7):
    """The style judge fitted on fresh procedural drawings (``benchmarks.common.style_judge``)."""
    import numpy as np

    from benchmarks.common import style_judge
    from keras_asym.data.procedural import render_drawing, sample_face

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(per_style):
        face = sample_face(rng)
        for style in (1, 2, 3):
            images.append(render_drawing(face, size, style)[0])
            labels.append(style - 1)
    return style_judge.fit(np.stack(images), np.array(labels), seed)


def classify(model, drawings: dict) -> dict:
    """Share of G's drawings in style k that the judge calls style k."""
    from benchmarks.common import style_judge

    return style_judge.accuracy(model, drawings)


def figure(path: Path, photos, models: dict, levels: float, count: int = 4) -> None:
    """Per model: photo, G(x), |G(x) - trunc(G(x))| amplified to full range, F(G(x)), F(trunc(G(x)))."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edge_demo.runtime.styles import cycling
    from keras_asym.objective.losses import truncate

    x = to_model(photos[:count])
    style = cycling(count)
    columns = ["photo", "G(x)", "|G(x) - trunc| x levels", "F(G(x))", "F(trunc(G(x)))"]
    fig, axes = plt.subplots(count * len(models), len(columns), figsize=(len(columns) * 1.6, count * len(models) * 1.6))
    for m, (name, (generator, photo_generator)) in enumerate(models.items()):
        y = np.asarray(generator({"photo": x, "style": style}, training=False))
        y_t = np.asarray(truncate(y, levels))
        cells = [
            photos[:count],
            np.repeat(y, 3, -1) / 2 + 0.5,
            np.repeat(np.abs(y - y_t) * levels / 2, 3, -1).clip(0, 1),
            np.asarray(photo_generator(y, training=False)) / 2 + 0.5,
            np.asarray(photo_generator(y_t, training=False)) / 2 + 0.5,
        ]
        for i in range(count):
            row = m * count + i
            for c, images in enumerate(cells):
                ax = axes[row, c]
                ax.imshow(np.clip(images[i], 0, 255 if images is cells[0] else 1), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(columns[c], fontsize=7)
                if c == 0:
                    ax.set_ylabel(name, fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)


def software() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": numpy.__version__}


def setting(result: dict) -> str:
    p = result["preset"]
    return (
        f"Plain procedural portraits, {p['size']} px; G and F with ngf {p['ngf']} and {p['n_blocks']} blocks; "
        f"discriminators with {p['n_layers_d']} layers; {p['epochs']} epochs x {p['steps']} steps of batch {p['batch_size']}. "
        f"{result['test_photos']} held-out photos. Machine: {result['machine']}, {result['date']}. "
        f"Command: `{result['command']}`."
    )


def study_markdown(hidden: dict) -> str:
    lines = [
        setting(hidden),
        "",
        f"L1 in [-1, 1] units (the mean test photo scores {hidden['l1_mean_photo']:.3f}); "
        "R^2 of the photo's 4x4 colour layout from the 6-bit residual (5-fold ridge).",
        "",
        f"Regime (CycleGAN's L1 F(G(x)) at most half the mean photo's, {hidden['regime']['bar_l1']:.3f}): "
        f"{len(hidden['regime']['cyclegan_runs_within'])} of {len(hidden['regime']['cyclegan_runs'])} CycleGAN runs reach it.",
        "",
        "| model | seed | steps | L1 F(G(x)) | L1 F(trunc G(x)) | L1 F(G(x)+noise) | trunc / plain | residual, gray levels | colour R^2 from residual | from visible |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in hidden["runs"]:
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['steps']} | {r['l1_reconstruction']:.3f} | {r['l1_truncated_reconstruction']:.3f} | "
            f"{r['l1_noisy_reconstruction']:.3f} | {r['ratio']:.3f} | {r['truncation_amplitude_gray_levels']:.2f} | "
            f"{r['residual_colour_r2']:.3f} | {r['visible_colour_r2']:.3f} |"
        )
    lines += [
        "",
        "Trend (mean over the seeds that reached each checkpoint):",
        "",
        "| model | steps | L1 F(G(x)) | trunc / plain | seeds |",
        "|---|---|---|---|---|",
    ]
    for model in STUDY:
        runs = [r for r in hidden["runs"] if r["model"] == model]
        by_steps: dict[int, list[dict]] = {}
        for r in runs:
            for point in r["trend"]:
                by_steps.setdefault(point["steps"], []).append(point)
        for steps, points in sorted(by_steps.items()):
            lines.append(
                f"| {model} | {steps} | {sum(q['reconstruction_l1'] for q in points) / len(points):.3f} | "
                f"{sum(q['ratio'] for q in points) / len(points):.3f} | {len(points)} |"
            )
    return "\n".join(lines) + "\n"


def ablation_markdown(ablations: dict) -> str:
    lines = [
        setting(ablations),
        "",
        f"Ablations of the full model (seed {', '.join(str(s) for s in ablations['seeds'])}); the style judge recognises "
        f"{ablations['classifier_accuracy_on_known_drawings']:.3f} of the known drawings. SSIM, edge-F1 and Chamfer against "
        "the known drawing of the same face, mean over styles; L1 of F(G(x)) in [-1, 1] units "
        f"(the mean test photo scores {ablations['l1_mean_photo']:.3f}).",
        "",
        "| variant | seed | SSIM | edge-F1 | Chamfer px | style accuracy (1 / 2 / 3) | L1 F(G(x)) | trunc / plain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ablations["runs"]:
        m = r["mean"]
        per_style = " / ".join(f"{v:.2f}" for v in r["style_accuracy"].values())
        lines.append(
            f"| {r['variant']} | {r['seed']} | {m['ssim']:.3f} | {m['edge_f1']:.3f} | {m['chamfer_px']:.2f} | "
            f"{m['style_accuracy']:.3f} ({per_style}) | {r['l1_reconstruction']:.3f} | {r['ratio']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    import numpy as np

    from benchmarks import machine
    from edge_demo.runtime.progress import Progress
    from keras_asym.data.procedural import write_dataset
    from keras_asym.evaluation.scoring import load_test_pairs, paired_metrics
    from keras_asym.utils.imageio import write_bytes_atomic

    preset = PRESETS[_PRESET.value]
    root, results = Path(_OUTPUT.value) / _PRESET.value, Path(_RESULTS.value)
    dataset = root / "dataset"
    if not (dataset / "manifest.json").is_file():
        write_dataset(
            dataset, photos=preset["photos"], drawings=preset["photos"], test=preset["test"], size=preset["size"], seed=123, plain=True
        )
    seeds, ablation_seeds = [int(s) for s in _SEEDS.value], [int(s) for s in _ABLATION_SEEDS.value]
    plan = run_plan(seeds, ablation_seeds)
    if _TRAIN.value:
        train_all(preset, dataset, root, plan, _WORKERS.value)
    plan = [item for item in plan if list((root / f"{item[0]}_seed{item[1]}" / "checkpoints").glob("epoch-*.weights.h5"))]
    if not plan:
        print(f"hidden_information: no run in {root} has a checkpoint yet.", file=sys.stderr)
        return 1

    photos, drawings, _ = load_test_pairs(dataset, preset["size"])
    classifier = style_classifier(preset["size"])
    known = classify(classifier, drawings)
    hidden_runs, ablation_runs, finals = [], [], {}
    progress = Progress(len(plan), "hidden_information: evaluation", unit="runs", interval=0.0)
    for name, seed, _ in plan:
        run = root / f"{name}_seed{seed}"
        trend = score_checkpoints(run, photos, preset["epochs"])
        last = trend[-1]
        generator, photo_generator, _, _ = load_checkpoint(run, sorted((run / "checkpoints").glob("epoch-*.weights.h5"))[-1])
        row = {
            "model" if name in STUDY else "variant": name,
            "seed": seed,
            "steps": last["steps"],
            "l1_reconstruction": last["reconstruction_l1"],
            "l1_truncated_reconstruction": last["truncated_reconstruction_l1"],
            "l1_noisy_reconstruction": last["noisy_reconstruction_l1"],
            "ratio": last["ratio"],
            "truncation_amplitude_gray_levels": last["truncation_amplitude_gray_levels"],
            "residual_colour_r2": last["residual_colour_r2"],
            "visible_colour_r2": last["visible_colour_r2"],
            "finished": (run / "finished.json").is_file(),
            "train_seconds": round(json.loads((run / "finished.json").read_text())["train_seconds"], 1)
            if (run / "finished.json").is_file()
            else None,
        }
        if name == "asymmetric" and seed in ablation_seeds or name in ABLATIONS:
            paired, outputs = paired_metrics(generator, photos, drawings)
            accuracy = classify(classifier, outputs)
            ablation_runs.append(
                {
                    **{k: v for k, v in row.items() if k != "model"},
                    "variant": "full" if name == "asymmetric" else name,
                    "paired": paired,
                    "style_accuracy": accuracy,
                    "mean": {
                        **{key: float(np.mean([v[key] for v in paired.values()])) for key in ("ssim", "edge_f1", "chamfer_px")},
                        "style_accuracy": float(np.mean(list(accuracy.values()))),
                    },
                }
            )
        if name in STUDY and seed in seeds:
            hidden_runs.append({**row, "trend": trend})
            if seed == seeds[0]:
                finals[name] = (generator, photo_generator)
        progress.update(progress.done + 1, note=f"{name} seed {seed}")

    command = " ".join(["python -m benchmarks.hidden_information", *sys.argv[1:]])
    common = {
        "command": command,
        "preset": {"name": _PRESET.value, **preset},
        "software": software(),
        "machine": machine.cpu_model(),
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "test_photos": int(len(photos)),
        # what an F that ignores its input can reach: the mean test photo, scored like F(G(x))
        "l1_mean_photo": float(np.abs(to_model(photos, np.float64) - to_model(photos, np.float64).mean(0)).mean()),
    }
    hidden = {**common, "seeds": seeds, "runs": hidden_runs}
    # the regime where hiding can pay: CycleGAN's F(G(x)) at most half as far from the photo as the mean photo
    bar = common["l1_mean_photo"] / 2
    hidden["regime"] = {
        "bar_l1": bar,
        "cyclegan_runs_within": [r["seed"] for r in hidden_runs if r["model"] == "cyclegan" and r["l1_reconstruction"] <= bar],
        "cyclegan_runs": [r["seed"] for r in hidden_runs if r["model"] == "cyclegan"],
    }
    ablations = {
        **common,
        "seeds": ablation_seeds,
        "classifier_accuracy_on_known_drawings": float(np.mean(list(known.values()))),
        "classifier_accuracy_per_style": known,
        "runs": ablation_runs,
    }
    # the comparison and the ablations are separate results: a run of one leaves the other's files alone
    results.mkdir(parents=True, exist_ok=True)
    if seeds:
        table = study_markdown(hidden)
        write_bytes_atomic(results / "hidden_information.json", json.dumps(hidden, indent=1).encode())
        write_bytes_atomic(results / "hidden_information.md", table.encode())
        figure(results / "hidden_information.png", photos, finals, 31.875)
        print(table)
    if ablation_seeds:
        table = ablation_markdown(ablations)
        write_bytes_atomic(results / "ablations.json", json.dumps(ablations, indent=1).encode())
        write_bytes_atomic(results / "ablations.md", table.encode())
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
