"""docs/benchmarks.md, generated from the benchmark JSON in docs/results/ (never edited by hand).

    python -m benchmarks.report            # after make bench, or any single benchmark

Each section names the machine, date and command its numbers came from; a
benchmark that has not been run says so instead of showing old numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path("docs/results")
OUTPUT = Path("docs/benchmarks.md")
README = Path("README.md")
START, END = "<!-- results:start", "<!-- results:end -->"
QUALITY_BAR_DB = 30.0

CONTENDER_NOTES = {
    "pytorch": "official G in PyTorch (same weights)",
    "keras": "Keras, tf.function (the `draw` path for .keras)",
    "keras_xla": "Keras, tf.function + XLA",
}
STEP_NAMES = {"official": "official (PyTorch)", "ours-on": "keras_asym, XLA", "ours-off": "keras_asym, no XLA"}


def step_name(kind: str) -> str:
    """``ours-on-mixed_bfloat16`` -> ``keras_asym, XLA, mixed_bfloat16``."""
    base, _, precision = kind.partition("-mixed")
    return STEP_NAMES.get(base, base) + (f", mixed{precision}" if precision else "")


def machine_line(machine: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v != "not installed")
    return (
        f"{machine.get('cpu', '?')} ({', '.join(machine.get('flags', [])) or 'flags unknown'}), {machine.get('cores_visible', '?')} cores visible, "
        f"{machine.get('threads', '?')} threads per framework, {machine.get('date', '?')}; {versions}"
    )


def preamble(record: dict) -> list[str]:
    return [f"Machine: {machine_line(record['machine'])}.", f"Command: `{record['command']}`", ""]


def speed_cell(row: dict, key: str, reference: bool) -> str:
    """``1.04x (1.04-1.05)`` from a row's ``key``/``key_min``/``key_max``; 1.00x for the reference itself."""
    if key in row:
        return f"{row[key]:.2f}x ({row[key + '_min']:.2f}-{row[key + '_max']:.2f})"
    return "1.00x" if reference else "not measured"


def render_inference_size(size: str, entry: dict) -> str:
    lines = [
        f"**{size}x{size}** ({entry['gflop']:.1f} GFLOP per drawing; quality: {entry['quality_photos']}, against the fp32 TFLite drawings)",
        "",
        "| contender | median s | min-max s | speed vs PyTorch, median of rounds (min-max) | first call s | MB | PSNR dB | SSIM | edge-F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in sorted(entry["rows"].items(), key=lambda item: item[1]["median_s"]):
        speed = speed_cell(row, "speed_vs_pytorch", False)
        label = CONTENDER_NOTES.get(name, name.replace("tflite_", "TFLite ") + " (LiteRT, XNNPACK)")
        mb = f"{row['mb']:.1f}" if "mb" in row else "-"
        first = f"{row['first_call_s']:.1f}" if "first_call_s" in row else "-"
        lines.append(
            f"| {label} | {row['median_s']:.3f} | {row['min_s']:.3f}-{row['max_s']:.3f} | {speed} | {first} | {mb} | "
            f"{row['psnr_db_vs_fp32']:.1f} | {row['ssim_vs_fp32']:.4f} | {row['edge_f1_vs_fp32']:.3f} |"
        )
    return "\n".join(lines)


def render_inference(record: dict) -> str:
    before, after = record["sgemm_before"], record.get("sgemm_after", record["sgemm_before"])
    out = [
        preamble(record)[0],
        f"fp32 GEMM peak measured in the same run: {before['gflops']:.0f} GFLOP/s before, {after['gflops']:.0f} after ({before['library']}).",
        f"Weights: `{record['model']}`, shared with PyTorch through `{record.get('pth')}` (max weight difference after the round trip: "
        f"{record.get('weights_max_abs_after_round_trip', float('nan')):g}).",
        f"Command: `{record['command']}`",
        "",
    ]
    for size, entry in record["sizes"].items():
        out += [render_inference_size(size, entry), ""]
    out += [
        "Speed is PyTorch's time divided by the contender's, per round, then the median (> 1: faster than PyTorch). "
        "The first call at a size includes tracing, XLA compilation or the delegate's set-up; every later call is timed. "
        "Quality is each drawing (uint8) against the fp32 TFLite drawing of the same photo and style; PSNR is capped at 99 dB.",
        "",
    ]
    return "\n".join(out)


def render_train_step(record: dict) -> str:
    lines = [
        *preamble(record),
        f"Full training step, {record['size']}x{record['size']}, batch {record['batch']}, relaxed cycle {record['cycle_distance']}:",
        "",
        "| implementation | s/step median | min-max | first step s | peak RSS GB | speed vs official, median of rounds (min-max) |",
        "|---|---|---|---|---|---|",
    ]
    for kind, row in record["rows"].items():
        speed = speed_cell(row, "speed_vs_official", kind == "official")
        lines.append(
            f"| {step_name(kind)} | {row['median_s']:.2f} | {row['min_s']:.2f}-{row['max_s']:.2f} | {row['first_step_s']:.1f} | "
            f"{row['peak_rss_mb'] / 1024:.1f} | {speed} |"
        )
    return "\n".join(lines)


def render_layer_profile(record: dict) -> str:
    lines = [
        *preamble(record),
        f"Each layer shape of G at {record['size']}x{record['size']} alone, median of alternating runs:",
        "",
        "| layer | used | TFLite (XNNPACK) ms | PyTorch ms | TFLite time / PyTorch time |",
        "|---|---|---|---|---|",
    ]
    for row in record["rows"]:
        lines.append(
            f"| {row['layer']} | {row['count']}x | {row['tflite_s'] * 1e3:.2f} | {row['pytorch_s'] * 1e3:.2f} | {row['tflite_over_pytorch']:.2f} |"
        )
    lines += [
        "",
        f"Sum over G's layers (count x time): TFLite {record['total_tflite_s']:.3f} s, PyTorch {record['total_pytorch_s']:.3f} s.",
    ]
    return "\n".join(lines)


SECTIONS = (
    (
        "Drawing a photo: the official generator in PyTorch beside ours",
        "inference.json",
        render_inference,
        "python -m benchmarks.inference",
    ),
    ("Where the float time goes: G's layers alone", "layer_profile.json", render_layer_profile, "python -m benchmarks.layer_profile"),
    ("One training step beside the official one", "train_step*.json", render_train_step, "python -m benchmarks.train_step"),
    ("GPU accelerator coverage", "gpu_coverage.md", None, "python benchmarks/gpu_coverage.py"),
)


def build(results: Path = RESULTS) -> str:
    out = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.report` from the JSON in `docs/results/` (`make bench` runs every benchmark, then this).",
        "Every ratio is measured in one run with its contenders alternating; nothing here is a typed-in baseline.",
        "",
    ]
    for title, pattern, render, command in SECTIONS:
        out += [f"## {title}", ""]
        paths = sorted(results.glob(pattern))  # a pattern: one benchmark may have several runs (e.g. precisions)
        if not paths:
            out += [f"Not measured yet: run `{command}`.", ""]
        for path in paths:
            out += [path.read_text().strip() if render is None else render(json.loads(path.read_text())), ""]
    return "\n".join(out)


def headline(results: Path = RESULTS) -> str:
    """The README's one results table: per size, PyTorch against our float paths and the fastest variant at >= 30 dB."""
    path = results / "inference.json"
    if not path.is_file():
        return "Not measured yet: run `make bench`."
    record = json.loads(path.read_text())
    lines = [
        f"Seconds per drawing of the paper's G (ngf 64, 9 blocks), one photo, {record['machine']['threads']} threads, "
        f"{record['machine']['cpu']}, {record['machine']['date'][:10]}; PyTorch timed in the same run with the same weights "
        f"(speed = PyTorch's time / ours, median of alternating rounds). Quality: PSNR of the drawing against fp32.",
        "",
        "| size | PyTorch (official G) | Keras, best of tf.function / XLA | TFLite fp32 | fastest TFLite at >= 30 dB |",
        "|---|---|---|---|---|",
    ]

    def cell(row):
        speed = f", {row['speed_vs_pytorch']:.2f}x" if "speed_vs_pytorch" in row else ""
        return f"{row['median_s']:.3f} s{speed}"

    for size, entry in record["sizes"].items():
        rows = entry["rows"]
        keras_best = min((rows[k] for k in ("keras", "keras_xla") if k in rows), key=lambda r: r["median_s"])
        keras_name = min((k for k in ("keras", "keras_xla") if k in rows), key=lambda k: rows[k]["median_s"])
        good = [(k, r) for k, r in rows.items() if k.startswith("tflite_") and r["psnr_db_vs_fp32"] >= QUALITY_BAR_DB]
        fast_name, fast = min(good, key=lambda item: item[1]["median_s"]) if good else ("-", None)
        torch_cell = f"{rows['pytorch']['median_s']:.3f} s" if "pytorch" in rows else "not measured"
        fast_cell = f"{fast_name[len('tflite_') :]}: {cell(fast)}, {fast['psnr_db_vs_fp32']:.1f} dB" if fast else "none"
        fp32 = cell(rows["tflite_fp32"]) if "tflite_fp32" in rows else "-"
        lines.append(f"| {size}² | {torch_cell} | {keras_name}: {cell(keras_best)} | {fp32} | {fast_cell} |")
    for step in sorted(results.glob("train_step*.json")):
        record = json.loads(step.read_text())
        for kind, row in record["rows"].items():
            if "speed_vs_official" in row:
                lines += [
                    "",
                    f"One full training step at {record['size']}² ({step_name(kind)}): {row['median_s']:.1f} s against the official "
                    f"{record['rows']['official']['median_s']:.1f} s, {row['speed_vs_official']:.2f}x, same run ({record['machine']['date'][:10]}).",
                ]
    lines += ["", "All tables, with spreads and machines: [docs/benchmarks.md](docs/benchmarks.md)."]
    return "\n".join(lines)


def update_readme(readme: Path = README, results: Path = RESULTS) -> str:
    text = readme.read_text()
    start = text.index(START)
    begin = text.index("\n", start) + 1
    end = text.index(END)
    return text[:begin] + headline(results) + "\n" + text[end:]


def main() -> int:
    from keras_asym.utils.imageio import write_bytes_atomic

    write_bytes_atomic(OUTPUT, build().encode())
    write_bytes_atomic(README, update_readme().encode())
    print(f"wrote {OUTPUT} and the results table of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
