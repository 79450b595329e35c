"""The built-in default, end to end: procedural data -> training -> int8 TFLite -> drawings -> edge demo -> report.

    python -m keras_asym.demo --output demo_out            # what `make demo` runs (about 10 minutes on 2 cores)
    python -m keras_asym.demo --output demo_out --train_minutes 20 --size 256

1. writes a procedural dataset (unpaired photos and drawings in 3 styles, and
   held-out faces with their known drawings);
2. draws the held-out faces and the photos with the shipped drawers
   (``keras_asym.pretrained``: a small paired fit, so the first thing shown is
   what clean drawings in three distinct styles look like, and, where shipped,
   a generator trained from scratch by the paper's unpaired method) and scores
   each against the known drawings and its bar;
3. trains a small asymmetric model on the dataset (``--train_minutes`` of wall time);
4. exports the trained G to TFLite (fp32 and full-integer int8, calibrated on the photos);
5. draws the photos of ``$KERAS_ASYM_SHARED/data/raw_photos`` (or a bundled
   procedural portrait) in all three styles with that int8 model;
6. runs the camera demo headless on a rendered clip;
7. scores the trained model (paired metrics, hidden-information test) and writes
   ``report.html`` with loss curves, sample grids, metrics and timings.
"""

from __future__ import annotations

import csv
import html
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.progress import clock
from export import exporter
from export.exporter import gpu_summary
from keras_asym import pretrained
from keras_asym.data.clip import write_clip
from keras_asym.data.procedural import render_photo, sample_face, write_dataset
from keras_asym.evaluation.scoring import (
    HIDDEN_ROWS,
    PAIRED_COLUMNS,
    evaluate,
    load_test_pairs,
    paired_metrics,
    write_samples,
    write_styles,
)
from keras_asym.models.networks import discriminator_layers_for
from keras_asym.pretrained.recipe import BAR, baselines, meets_bar
from keras_asym.training.callbacks import TimeBudget
from keras_asym.training.config import TrainConfig
from keras_asym.training.loop import run_training
from keras_asym.utils.config_flags import bounds_of
from keras_asym.utils.imageio import list_images, read_rgb, write_bytes_atomic, write_image_atomic
from keras_asym.utils.pages import html_page

_OUTPUT = flags.DEFINE_string("output", "demo_out", "Output folder.")
_SIZE = flags.DEFINE_integer("size", 128, "Working resolution (multiple of 32).", lower_bound=32, upper_bound=1024)
_NGF = flags.DEFINE_integer("ngf", 16, "Generator width.", **bounds_of(TrainConfig, "ngf"))
_BLOCKS = flags.DEFINE_integer("n_blocks", 4, "ResNet blocks.", **bounds_of(TrainConfig, "n_blocks"))
_MINUTES = flags.DEFINE_float("train_minutes", 6.0, "Training wall-time budget.", lower_bound=0.1, upper_bound=10_000.0)
_EPOCHS = flags.DEFINE_integer(
    "epochs", 8, "Epochs (half constant, half decaying), cut short by --train_minutes.", lower_bound=2, upper_bound=100_000
)
_STEPS = flags.DEFINE_integer("steps_per_epoch", 150, "Steps per epoch.", lower_bound=1, upper_bound=10**6)
_PHOTOS = flags.DEFINE_integer("photos", 200, "Procedural training photos (and as many drawings).", lower_bound=8, upper_bound=100_000)
_CLIP_FRAMES = flags.DEFINE_integer("clip_frames", 120, "Frames of the edge-demo clip.", lower_bound=1, upper_bound=100_000)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.", **bounds_of(TrainConfig, "seed"))
_JIT = flags.DEFINE_boolean("jit_compile", True, "Compile the training step with XLA (its compile pays off after a few dozen steps).")
flags.register_validator("size", lambda size: size % 32 == 0, "--size must be a multiple of 32 (the generator's stride).")


def real_photos() -> Path:
    """Step 5's photos: the shared data's raw photos (``$KERAS_ASYM_SHARED``, by default ``../shared`` beside the
    checkout where ``make demo`` runs); not part of the installed package."""
    return Path(os.environ.get("KERAS_ASYM_SHARED", "../shared")) / "data" / "raw_photos"


HERE = Path(__file__).resolve().parents[1]


STAGES = ("dataset", "pretrained", "train", "export", "draw", "edge", "evaluate")


@contextmanager
def _stage(name: str, timings: dict):
    """Prints a stage's start (k/N, with the time so far) and duration, and records the seconds in ``timings``."""
    k = STAGES.index(name) + 1
    print(f"[demo] stage {k}/{len(STAGES)}: {name} ... ({clock(sum(timings.values()))} so far)", flush=True)
    started = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - started, 1)
    print(f"[demo] stage {k}/{len(STAGES)}: {name} done in {clock(timings[name])}", flush=True)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False, cwd=HERE)
    if result.returncode not in (0, 1):  # 1: some inputs skipped (reported in the output)
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result


def loss_plot(run: Path, path: Path) -> list[dict]:
    """One point per epoch from the run's ``history.csv`` (every epoch; the checkpoints keep only the last few)."""
    matplotlib.use("Agg")

    history = run / "history.csv"

    def numbers(row: dict) -> dict:  # CSVLogger writes "NA" for a value an epoch did not log
        out = {}
        for key, value in row.items():
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                pass
        return out

    rows = [numbers(row) for row in csv.DictReader(history.open())] if history.is_file() else []
    records = list({int(r["epoch"]): r for r in rows}.values())  # an epoch re-run after a kill appears twice: keep the last
    if not records:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = [int(r["epoch"]) + 1 for r in records]
    for key in ("generator", "relaxed_cycle", "truncation_cycle", "drawing_cycle"):
        if key in records[0]:
            axes[0].plot(epochs, [r[key] for r in records], marker="o", label=key)
    for key in ("gan_drawing", "gan_photo", "style_cls", "d_drawing", "d_photo"):
        if key in records[0]:
            axes[1].plot(epochs, [r[key] for r in records], marker="o", label=key)
    for ax, title in zip(axes, ("generator terms (loss, epoch mean)", "adversarial / style terms (loss, epoch mean)")):
        ax.set_xlabel(f"epoch (1-{epochs[-1]})")
        ax.set_xticks(epochs)
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return records


def draw_with_pretrained(folder: Path, data: Path, photos_dir: Path, model: Path = pretrained.DEMO_DRAWER) -> dict:
    """A shipped drawer (sha256-checked) on the held-out faces, scored against their known drawings and its bar,
    and on the photos; writes ``styles.png``, ``samples.png`` and ``drawings/`` into ``folder``."""
    path, record = pretrained.verified(model), pretrained.record(model)
    size = record["settings"]["size"]
    drawer = keras.saving.load_model(path, compile=False)
    photos, drawings, _ = load_test_pairs(data, size)
    paired, outputs = paired_metrics(drawer, photos, drawings)
    floors = baselines(drawings)
    write_styles(folder / "styles.png", photos, outputs, count=4)
    write_samples(folder / "samples.png", photos, outputs, drawings)
    _run(
        [
            "-m",
            "keras_asym.draw",
            f"--model={path}",
            f"--input={photos_dir}",
            f"--output={folder / 'drawings'}",
            f"--size={size}",
            "--paste_back",
        ]
    )
    return {
        "model": str(path),
        "what": record["what"],
        "command": record["command"],
        "sha256": record["sha256"],
        "size": size,
        "paired": paired,
        "baselines": floors,
        "bar": BAR,
        "meets_bar": meets_bar(paired, floors),
        "drawing_files": sorted(f"{folder.name}/drawings/{p.name}" for p in (folder / "drawings").glob("*_style*.png"))[:12],
        "folder": folder.name,
    }


def _optimizer_steps(run: Path) -> int:
    """Optimizer steps of the newest end-of-epoch checkpoint."""
    metas = sorted((run / "checkpoints").glob("epoch-*.json"))
    return json.loads(metas[-1].read_text())["iterations"] if metas else 0


def write_report(out: Path, summary: dict) -> Path:
    def table(rows: dict, columns: dict, first: str = "") -> str:
        """``columns``: key -> header saying what the number is, its unit and what it is compared with."""
        head = "".join(f"<th>{html.escape(text)}</th>" for text in [first, *columns.values()])
        body = "".join(
            "<tr><td>" + html.escape(str(name)) + "</td>" + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
            for name, row in rows.items()
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    def gallery(files: list[str]) -> str:
        return "".join(
            f'<figure><img src="{html.escape(p)}" height="160"><figcaption>{html.escape(Path(p).stem)}</figcaption></figure>' for p in files
        )

    train = summary["training"]
    hidden = summary["evaluation"].get("hidden_information", {})
    edge = summary["edge"]
    epochs = f"{train['epochs_run']} epoch{'s' if train['epochs_run'] != 1 else ''}"
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}figure{display:inline-block;margin:4px}"
    )
    parts = ["<h1>keras-asym demo report</h1>", "<h2>1. The drawers shipped with the package</h2>"]
    shipped = [("1a", "paired fit (not the paper's method)", summary["pretrained"])]
    if summary.get("pretrained_unpaired"):
        shipped.append(("1b", "trained from scratch by the paper's unpaired method", summary["pretrained_unpaired"]))
    for number, kind, pre in shipped:
        rows = {f"{s}: this drawer": row for s, row in pre["paired"].items()}
        rows.update(
            {
                f"{s}: another face's known drawing (baseline)": {k: b["wrong_face"][k] for k in PAIRED_COLUMNS}
                for s, b in pre["baselines"].items()
            }
        )
        parts += [
            f"<h3>{number}. {html.escape(kind)}</h3>",
            f"<p>{html.escape(pre['what'])}; made by <code>{html.escape(pre['command'])}</code>, sha256 {pre['sha256'][:16]}..., "
            f"{pre['size']} px. Each row: a held-out procedural face, then its drawing in style 1, 2 and 3.</p>"
            f"<img src='{pre['folder']}/styles.png'>",
            "<p>Scores against the known drawing of the same face, mean over the "
            f"{summary['dataset']['test']} held-out faces. The bar: {html.escape(pre['bar'])}: "
            f"<b>{'met' if pre['meets_bar'] else 'not met'}</b>.</p>" + table(rows, PAIRED_COLUMNS),
            f"<p>Photos drawn by it ({html.escape(summary['photos_source'])}); it saw procedural faces only.</p>"
            + gallery(pre["drawing_files"]),
        ]
    parts += [
        "<h2>2. The model trained in this run</h2>",
        f"<p>Procedural dataset: {summary['dataset']['photos']} photos, {summary['dataset']['drawings']} drawings, "
        f"{summary['dataset']['test']} held-out faces, at {summary['size']} px. G with ngf {summary['ngf']} and {summary['n_blocks']} blocks, "
        f"trained with the paper's unpaired objective for {epochs} ({train['steps']} steps) in {summary['timings'].get('train', 0)} s"
        f"{' (stopped by the time budget)' if train['stopped_by_time_budget'] else ''}. "
        "Minutes of CPU show every stage of the pipeline and the trend, not the paper's quality.</p>",
        f"<h3>Losses per epoch (epochs 1 to {train['epochs_run']})</h3><img src='losses.png' width='100%'>",
        "<h3>Held-out faces: the photo, then per style this model's drawing and the known drawing</h3><img src='evaluation/samples.png'>",
        "<h3>Scores against the known drawings (mean over the held-out faces)</h3>"
        + table(summary["evaluation"].get("paired", {}), PAIRED_COLUMNS),
        "<h3>Hidden-information test</h3>" + table({k: {"value": hidden.get(k)} for k in HIDDEN_ROWS if k in hidden}, {"value": "value"}),
        f"<h3>Photos drawn with its int8 TFLite export ({html.escape(summary['photos_source'])})</h3>{gallery(summary['drawing_files'])}",
        "<h3>Export</h3>"
        + table(
            {
                v: {
                    "MB": e["bytes"] / 1e6,
                    "psnr": e["quality_vs_keras"]["psnr_db"],
                    "gpu": gpu_summary(e["gpu"]),
                }
                for v, e in summary["export"]["variants"].items()
            },
            {"MB": "file size, MB", "psnr": "PSNR against the Keras model's drawing, dB", "gpu": "LiteRT GPU accelerator (measured)"},
            "variant",
        ),
        f"<h3>Camera demo, headless ({edge['frames']} frames of a rendered clip)</h3><p>{edge['fps']} frames per second end to end; "
        f"generator median {edge['stages_ms']['infer']['p50']} ms per frame; a face in {edge['faces_found']} of {edge['frames']} frames; "
        f"{edge['dropped_frames']} frames dropped. Video: <a href='edge/edge_demo.mp4'>edge/edge_demo.mp4</a></p>",
        "<h2>Time per stage (seconds, on this machine)</h2>" + table({"seconds": summary["timings"]}, {k: k for k in summary["timings"]}),
    ]
    path = out / "report.html"
    write_bytes_atomic(path, html_page("keras-asym demo", "\n".join(parts), style).encode())
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def main(argv):
    del argv

    out = Path(_OUTPUT.value).resolve()
    out.mkdir(parents=True, exist_ok=True)
    size, timings = _SIZE.value, {}
    keras.utils.set_random_seed(_SEED.value)

    with _stage("dataset", timings):
        data = out / "data"
        dataset = write_dataset(data, photos=_PHOTOS.value, drawings=_PHOTOS.value, test=12, size=size, seed=_SEED.value)
        raw = real_photos()
        photos_dir, photos_source = raw, f"{raw}"
        if not (raw.is_dir() and list_images(raw)):
            photos_dir = out / "bundled_photo"
            write_image_atomic(
                photos_dir / "procedural_portrait.png", render_photo(sample_face(np.random.default_rng(_SEED.value + 99)), 2 * size)[0]
            )
            photos_source = "a bundled procedural portrait (no raw_photos in $KERAS_ASYM_SHARED)"

    with _stage("pretrained", timings):
        paired_drawer = draw_with_pretrained(out / "pretrained", data, photos_dir)
        unpaired_drawer = None
        if pretrained.UNPAIRED_DRAWER.is_file():
            unpaired_drawer = draw_with_pretrained(out / "pretrained_unpaired", data, photos_dir, pretrained.UNPAIRED_DRAWER)

    run = out / "run"
    half = max(1, _EPOCHS.value // 2)
    config = TrainConfig(
        dataset=str(data),
        output=str(run),
        image_size=size,
        n_layers_d=discriminator_layers_for(size),  # below 128 px the official 3 layers cannot learn styles
        ngf=_NGF.value,
        ndf=_NGF.value,
        n_blocks=_BLOCKS.value,
        niter=half,
        niter_decay=_EPOCHS.value - half,
        steps_per_epoch=_STEPS.value,
        seed=_SEED.value,
        jit_compile=_JIT.value,
        pool_size=20,
        image_every=0,
        export_every=0,
        backup_every=50,
    )
    budget = TimeBudget(_MINUTES.value * 60)
    with _stage("train", timings):
        if run.exists():
            shutil.rmtree(run)
        run_training(config, verbose=1, extra_callbacks=[budget])  # progress with an ETA (one line per 30 s off a terminal)
    records = loss_plot(run, out / "losses.png")
    generator_path = run / "generators" / "generator.keras"

    with _stage("export", timings):
        export_summary = exporter.export_generator(
            generator_path,
            out / "export",
            (size, size),
            ("fp32", "int8"),
            calibration_dir=data / "A",
            calibration_count=32,
            per_op_report=False,
            log=lambda *a: None,
        )
    int8 = out / "export" / "drawing_int8.tflite"

    with _stage("draw", timings):
        _run(
            [
                "-m",
                "keras_asym.draw",
                f"--model={int8}",
                f"--input={photos_dir}",
                f"--output={out / 'drawings'}",
                f"--size={size}",
                "--paste_back",
            ]
        )
        drawing_files = sorted(f"drawings/{p.name}" for p in (out / "drawings").glob("*_style*.png"))[:12]

    with _stage("edge", timings):
        faces = [read_rgb(p) for p in list_images(data / "test" / "A")[:3]]
        clip = write_clip(out / "edge" / "clip.avi", faces, frames=_CLIP_FRAMES.value, frames_per_face=40)
        _run(
            [
                "-m",
                "edge_demo",
                f"--model={int8}",
                f"--source={clip}",
                "--headless",
                f"--output={out / 'edge' / 'edge_demo.mp4'}",
                f"--stats={out / 'edge' / 'stats.json'}",
            ]
        )
        edge = json.loads((out / "edge" / "stats.json").read_text())

    with _stage("evaluate", timings):
        evaluation = evaluate(str(run), None, str(data), str(out / "evaluation"))

    summary = {
        "size": size,
        "ngf": _NGF.value,
        "n_blocks": _BLOCKS.value,
        "dataset": {k: dataset[k] for k in ("photos", "drawings", "test")},
        "training": {
            "epochs_run": len(records),
            "steps": _optimizer_steps(run),
            "stopped_by_time_budget": budget.stopped_early,
            "final_logs": records[-1] if records else {},
        },
        "export": export_summary,
        "photos_source": photos_source,
        "pretrained": paired_drawer,
        "pretrained_unpaired": unpaired_drawer,
        "drawing_files": drawing_files,
        "edge": edge,
        "evaluation": evaluation,
        "timings": timings,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    report = write_report(out, summary)
    print(f"\n[demo] done in {sum(timings.values()):.0f} s. Report: {report}")
    print(f"[demo] int8 model: {int8} (try: python -m edge_demo --model {int8} --source 0)")
    return 0


if __name__ == "__main__":
    cli.run(main)
