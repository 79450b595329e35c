"""The paper's hidden-information claim, tested: CycleGAN vs the asymmetric model at equal budgets.

    python benchmarks/hidden_information.py --size 128 --epochs 8 --steps 100 --seeds 0,1

Builds a procedural dataset, trains (a) a CycleGAN (strict L1 forward cycle,
no truncation loss, no local discriminators) and (b) the asymmetric model
(relaxed edge cycle, truncation loss with its schedule, local
discriminators) with identical networks, data, seeds and steps, then runs
``keras_asym.evaluate`` on each: reconstruction error from G(x) and from its
6-bit truncation, and paired drawing metrics. Writes
``hidden_information.{md,json,png}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

_OUTPUT = flags.DEFINE_string("output", "benchmarks/results/hidden_information", "Work and results folder.")
_SIZE = flags.DEFINE_integer("size", 128, "Image size (multiple of 32).")
_NGF = flags.DEFINE_integer("ngf", 16, "Generator width.")
_NDF = flags.DEFINE_integer("ndf", 16, "Discriminator width.")
_BLOCKS = flags.DEFINE_integer("n_blocks", 4, "ResNet blocks per generator.")
_EPOCHS = flags.DEFINE_integer("epochs", 8, "Epochs (half at the initial rate, half decaying).")
_STEPS = flags.DEFINE_integer("steps", 100, "Steps per epoch.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1"], "Seeds.")
_PHOTOS = flags.DEFINE_integer("photos", 300, "Training photos (and as many drawings).")

CONFIGS = {
    "cyclegan": ["--cycle_distance=l1", "--notruncation", "--parts="],
    "asymmetric": ["--cycle_distance=edges", "--truncation", "--parts=eyes,nose,lips"],
}


def main(argv):
    del argv
    root = Path(_OUTPUT.value)
    dataset = root / "dataset"
    if not (dataset / "manifest.json").is_file():
        from keras_asym.data.procedural import write_dataset

        write_dataset(dataset, photos=_PHOTOS.value, drawings=_PHOTOS.value, test=24, size=_SIZE.value, seed=123)
    half = max(1, _EPOCHS.value // 2)
    rows = []
    for seed in _SEEDS.value:
        for name, extra in CONFIGS.items():
            run = root / f"{name}_seed{seed}"
            if not (run / "final.json").is_file():
                args = [
                    sys.executable,
                    "-m",
                    "keras_asym.train",
                    f"--dataset={dataset}",
                    f"--output={run}",
                    f"--image_size={_SIZE.value}",
                    f"--load_size={_SIZE.value}",
                    f"--ngf={_NGF.value}",
                    f"--ndf={_NDF.value}",
                    f"--n_blocks={_BLOCKS.value}",
                    f"--niter={half}",
                    f"--niter_decay={_EPOCHS.value - half}",
                    f"--steps_per_epoch={_STEPS.value}",
                    f"--seed={seed}",
                    "--image_every=0",
                    "--export_every=0",
                    "--verbose=0",
                    *extra,
                ]
                if (run / "config.json").is_file():
                    args.append("--resume")
                started = time.perf_counter()
                result = subprocess.run(args, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    print(result.stderr[-3000:], file=sys.stderr)
                    return 1
                (run / "train_seconds.txt").write_text(f"{time.perf_counter() - started:.0f}\n")
            evaluation = root / f"eval_{name}_seed{seed}"
            subprocess.run(
                [sys.executable, "-m", "keras_asym.evaluate", f"--run={run}", f"--dataset={dataset}", f"--output={evaluation}"],
                capture_output=True,
                text=True,
                check=True,
            )
            report = json.loads((evaluation / "evaluation.json").read_text())
            hidden = report["hidden_information"]
            paired = report["paired"]
            row = {
                "model": name,
                "seed": int(seed),
                **hidden,
                "ssim": sum(v["ssim"] for v in paired.values()) / len(paired),
                "edge_f1": sum(v["edge_f1"] for v in paired.values()) / len(paired),
                "train_seconds": float((run / "train_seconds.txt").read_text()) if (run / "train_seconds.txt").is_file() else None,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = [
        f"Hidden-information test on procedural portraits ({_SIZE.value} px, ngf {_NGF.value}, {_BLOCKS.value} blocks, "
        f"{_EPOCHS.value} x {_STEPS.value} steps, batch 1, 2 CPU cores). L1 in [-1, 1] units over the test photos.",
        "",
        "| model | seed | L1 F(G(x)) | L1 F(trunc G(x)) | ratio | mean abs G(x) - trunc, gray levels | SSIM vs known drawing | edge-F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['reconstruction_l1']:.4f} | {r['truncated_reconstruction_l1']:.4f} | {r['ratio']:.2f} | "
            f"{r['truncation_amplitude_gray_levels']:.2f} | {r['ssim']:.3f} | {r['edge_f1']:.3f} |"
        )
    table = "\n".join(lines)
    print(table)
    (root / "hidden_information.md").write_text(table + "\n")
    (root / "hidden_information.json").write_text(json.dumps(rows, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, marker in (("cyclegan", "o"), ("asymmetric", "s")):
        pts = [(r["reconstruction_l1"], r["truncated_reconstruction_l1"]) for r in rows if r["model"] == name]
        ax.scatter(*zip(*pts), marker=marker, label=name, s=50)
    limit = max(max(r["truncated_reconstruction_l1"], r["reconstruction_l1"]) for r in rows) * 1.1
    ax.plot([0, limit], [0, limit], "k--", lw=0.8)
    ax.set_xlabel("L1 of F(G(x))")
    ax.set_ylabel("L1 of F(trunc(G(x)))")
    ax.legend()
    fig.tight_layout()
    fig.savefig(root / "hidden_information.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
