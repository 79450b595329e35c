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
    "keras": "Keras, tf.function (`draw --nojit_compile`)",
    "keras_xla": "Keras, tf.function + XLA (the `draw` path for .keras)",
    "tflite_fp32_xnnpack_fp16": "TFLite fp32 file, XNNPACK fp16 arithmetic (LiteRT CompiledModel, FORCE_FP16)",
}
STEP_NAMES = {"official": "official (PyTorch)", "ours-on": "keras_asym, XLA", "ours-off": "keras_asym, no XLA"}


def step_name(kind: str) -> str:
    """``ours-on-mixed_bfloat16`` -> ``keras_asym, XLA, mixed_bfloat16``."""
    base, _, precision = kind.partition("-mixed")
    return STEP_NAMES.get(base, base) + (f", mixed{precision}" if precision else "")


def cpu_note(machine: dict) -> str:
    """``Intel Xeon, AMX`` or ``AMD EPYC, no AMX``: a bfloat16 step's speed turns on the CPU."""
    cpu = machine.get("cpu", "?").replace("(R)", "").replace(" Processor", "")
    return f"{cpu}, AMX" if "amx_bf16" in machine.get("flags", []) else f"{cpu}, no AMX"


def machine_line(machine: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v != "not installed")
    cap = f"; oneDNN capped at {machine['onednn_max_cpu_isa']} (ONEDNN_MAX_CPU_ISA)" if "onednn_max_cpu_isa" in machine else ""
    return (
        f"{machine.get('cpu', '?')} ({', '.join(machine.get('flags', [])) or 'flags unknown'}{cap}), {machine.get('cores_visible', '?')} cores visible, "
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
    int8 = entry.get("int8_export") or {}
    if int8.get("norm_inputs_clipped_at") is not None:
        ranges = int8.get("activation_range_quantile")
        lines += [
            "",
            f"int8: norm inputs clipped at quantile {int8['norm_inputs_clipped_at']:g}"
            + (f", activation ranges at quantile {ranges:g}" if ranges is not None else "")
            + " (chosen by the exporter).",
        ]
    search = int8.get("clip_search")
    if search:
        before = search.get("int8_psnr_db_before_variance_correction", {})
        lines.append(
            "Clip search, int8 dB on the calibration photos per clip, as shipped"
            + (" (in brackets: before the variance correction)" if before else "")
            + ": "
            + ", ".join(
                f"{label} {db:.2f}" + (f" ({before[label]:.2f})" if label in before else "")
                for label, db in search["int8_psnr_db_on_calibration"].items()
            )
            + "."
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


def _run_scores(point: dict) -> str:
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    styles = ("style1", "style2", "style3")
    return (
        f"{mean([point['style_accuracy'][k] for k in styles]):.2f} | {mean([point['paired'][k]['ssim'] for k in styles]):.3f} | "
        f"{mean([point['paired'][k]['edge_f1'] for k in styles]):.3f} | {mean([point['paired'][k]['chamfer_px'] for k in styles]):.2f} | "
        f"{mean([point['parts'][p]['mean']['f1'] for p in ('eyes', 'nose', 'lips')]):.3f} | "
        + ("met" if point["meets_bar"] else f"{sum(not v for v in point['checks'].values())} of {len(point['checks'])} checks fail")
    )


def render_precision_run(record: dict) -> str:
    """A whole ``benchmarks.unpaired_drawer`` run in a reduced precision beside the float32 run, export by export."""
    reference_path = RESULTS / "unpaired_drawer.json"
    if not reference_path.is_file():
        return f"`{record['mixed_precision']}` run without its float32 run (`python -m benchmarks.unpaired_drawer`)."
    reference = json.loads(reference_path.read_text())
    ours = {c["steps"]: c for c in record["curve"]}
    theirs = {c["steps"]: c for c in reference["curve"]}
    lines = [
        f"Command: `{record['command']}` beside `{reference['command']}` ({record['machine']}, {record['date']}; float32 run: "
        f"{reference['date']}). Same preset, seed, data and schedule; the held-out scores of `benchmarks.unpaired_drawer` (means "
        "over the three styles; its bar per style and part). Only exports both runs reached are compared.",
        "",
        "| steps | precision | style accuracy | SSIM | edge-F1 | Chamfer px | part F1 (eyes, nose, lips) | bar |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for steps in sorted(set(ours) & set(theirs)):
        lines.append(f"| {steps} | float32 | {_run_scores(theirs[steps])} |")
        lines.append(f"| {steps} | {record['mixed_precision']} | {_run_scores(ours[steps])} |")
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


def render_input_pipeline(record: dict) -> str:
    return "\n".join(
        [
            *preamble(record),
            f"The training input pipeline (`make_dataset`: decode, resize, crop, flip, masks) over {record['source']}, "
            f"{record['examples']} examples after warm-up:",
            "",
            "| size | batch | examples/s | ms/example |",
            "|---|---|---|---|",
            f"| {record['size']} | {record['batch']} | {record['examples_per_s']:.1f} | {record['ms_per_example']:.1f} |",
        ]
    )


def render_train_throughput(record: dict) -> str:
    lines = [
        *preamble(record),
        f"Full-size networks through `fit`, relaxed cycle `{record['cycle_distance']}`, each configuration in its own process "
        "(XLA where one device runs it; two logical CPUs cannot share an XLA program):",
        "",
        "| size | global batch | replicas | device | s/step | images/s | first step s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in record["runs"]:
        lines.append(
            f"| {r['size']} | {r['batch']} | {r['replicas']} | {r['device']} | {r['s_per_step']:.1f} | {r['images_per_s']:.3f} | {r['first_step_s']:.0f} |"
        )
    return "\n".join(lines)


NETWORK_LABELS = {
    "student": "student α 1",
    "student_half_res_conv": "student α 1, last conv at half resolution",
    "student_alpha2": "student α 2",
    "student_global_context": "student α 1 with global context",
    "student_instance_norm": "student α 1 with instance norm",
    "student_transposed_up": "student α 1 with global context and transposed upsampling",
    "student_bottleneck4": "student α 1 with global context, transposed upsampling and blocks at 1/4 resolution",
    "paper_g": "paper's G",
}


def edge_label(name: str) -> str:
    """``student_256/drawing_int8`` -> ``student α 1 int8 (256²)``; a model of ``--export_dirs``/``--models`` keeps its
    folder and file name and says its weights are the export's own."""
    folder, _, model = name.partition("/")
    network, _, size = folder.rpartition("_")
    if network in NETWORK_LABELS and size.isdigit():
        return f"{NETWORK_LABELS[network]} {model.removeprefix('drawing_')} ({size}²)"
    return f"`{name}` (its own weights)"


def render_edge_fps(record: dict) -> str:
    clip, soak = record["clip"], record.get("soak")
    lines = [
        *preamble(record),
        f"The camera demo end to end (`python -m edge_demo --headless`: detection, tracking, alignment, generator, paste-back) "
        f"over {clip['frames']} frames of a {clip['size']} clip of {clip['faces']}, {record['machine']['threads']} generator threads. "
        f"Weights: {record['weights']}.",
        "",
        "| model | size | FPS | generator p50 ms | detect p50 ms | faces | dropped |"
        + (" RSS after warm-up MB | growth MB |" if soak else ""),
        "|---|---|---|---|---|---|---|" + ("---|---|" if soak else ""),
    ]
    for name, row in record["rows"].items():
        extra = f" {row['rss_after_warmup_mb']} | {row['rss_growth_mb']} |" if soak else ""
        lines.append(
            f"| {edge_label(name)} | {row['size'][0]}x{row['size'][1]} | {row['fps']:.1f} | {row['infer_p50_ms']:.1f} | {row['detect_p50_ms']:.1f} | "
            f"{row['faces']}/{row['frames']} | {row['dropped']} |{extra}"
        )
    return "\n".join(lines)


def render_winograd(record: dict) -> str:
    lines = [
        *preamble(record),
        f"One 3x3 convolution (stride 1, as many channels out as in), fp32 TFLite on XNNPACK, {record['machine']['threads']} threads, "
        f"direct and Winograd F(2x2, 3x3) alternating, median of {record['runs']}; `export.winograd` rewrites layers of at least "
        f"{record['min_channels']} channels:",
        "",
        "| map | channels | direct ms | Winograd ms | Winograd / direct time | MB direct / Winograd | max difference / max value |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in record["rows"].values():
        lines.append(
            f"| {row['side']}x{row['side']} | {row['channels']} | {row['direct_ms']:.2f} | {row['winograd_ms']:.2f} | {row['time_ratio']:.2f} | "
            f"{row['direct_mb']:.2f} / {row['winograd_mb']:.2f} | {row['max_abs_diff_over_max']:.1e} |"
        )
    return "\n".join(lines)


def render_subpixel(record: dict) -> str:
    lines = [
        *preamble(record),
        f"G's layers alone (`export.subpixel`), fp32 and full int8 TFLite on XNNPACK, {record['machine']['threads']} threads, "
        f"direct and on space-to-depth maps alternating, median of {record['runs']}; stem and head: 7x7 on the padded map, "
        "up: 3x3 stride-2 transposed. Int8 difference in output levels (same output scale):",
        "",
        "| layer | map | in / out channels | fp32 ms direct / space-to-depth | int8 ms direct / space-to-depth | fp32 time ratio | "
        "int8 time ratio | fp32 max difference / max | int8 levels apart (share of outputs) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in record["rows"].values():
        lines.append(
            f"| {row['kind']} | {row['side']}x{row['side']} | {row['channels']} / {row['filters']} | "
            f"{row['direct_fp32_ms']:.2f} / {row['subpixel_fp32_ms']:.2f} | {row['direct_int8_ms']:.2f} / {row['subpixel_int8_ms']:.2f} | "
            f"{row['fp32_time_ratio']:.2f} | {row['int8_time_ratio']:.2f} | {row['fp32_max_abs_diff_over_max']:.1e} | "
            f"{row['int8_max_levels_apart']:.0f} ({row['int8_share_apart']:.3f}) |"
        )
    return "\n".join(lines)


def render_distill_report(record: dict) -> str:
    lines = [
        *preamble(record),
        f"Teacher `{record['teacher']}` against the distilled student `{record['student']}` at {record['size']}x{record['size']}; "
        "latency: LiteRT + XNNPACK, 2 threads, median of 20.",
        "",
        "| model | params (M) | GFLOP/frame | fp32 MB | int8 MB | fp32 ms | int8 ms | int8 FPS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in record["models"].items():
        timed = (f"{r[key]:.1f}" if key in r else "not timed" for key in ("fp32_ms", "int8_ms", "int8_fps"))
        lines.append(
            f"| {name} | {r['params_M']:.2f} | {r['gflops']:.2f} | {r['fp32_MB']:.1f} | {r['int8_MB']:.2f} | " + " | ".join(timed) + " |"
        )
    lines += [
        "",
        "Student against teacher on held-out photos (SSIM / edge-F1):",
        "",
        "| photos | style | fp32 | int8 |",
        "|---|---|---|---|",
    ]

    def mean(scores: list[dict]) -> str:  # the one number per set that docs quote
        return " / ".join(f"{sum(s[m] for s in scores) / len(scores):.3f}" for m in ("ssim", "edge_f1"))

    sets = {}
    for key, a in record["quality"].items():
        set_name, style, variant = key.split("/")
        if variant == "fp32":
            b = record["quality"][f"{set_name}/{style}/int8"]
            sets.setdefault(set_name, []).append((a, b))
            lines.append(
                f"| {set_name} ({a['photos']}) | {style} | {a['ssim']:.3f} / {a['edge_f1']:.3f} | {b['ssim']:.3f} / {b['edge_f1']:.3f} |"
            )
    for set_name, pairs in sets.items():
        if len(pairs) > 1:
            fp32, int8 = zip(*pairs)
            lines.append(f"| {set_name} ({fp32[0]['photos']}) | mean of the styles | {mean(fp32)} | {mean(int8)} |")
    if record.get("seen_photos"):
        seen = record["seen_photos"]
        lines += [
            "",
            f"Student fp32 on the {seen['style1']['photos']} photos of the folder it was distilled from (less any its run "
            "held out of training to score itself): "
            + ", ".join(f"{name} {r['ssim']:.3f} / {r['edge_f1']:.3f}" for name, r in seen.items())
            + f"; mean {mean(list(seen.values()))}",
        ]
    lines += [
        "",
        "The teacher against itself, photo moved and moved back (how much of its drawing follows pixel phase; "
        "not a bound on a student, which sees the same pixels; SSIM / edge-F1):",
        "",
        "| photos, move | SSIM / edge-F1 |",
        "|---|---|",
    ]
    for key, r in record["teacher_self_consistency"].items():
        lines.append(f"| {key} | {r['ssim']:.3f} / {r['edge_f1']:.3f} |")
    if record.get("teacher_blurred"):
        lines += [
            "",
            "The teacher's own drawing blurred by a Gaussian of sigma px, against itself (what a drawing right in every line "
            "but soft scores; SSIM / edge-F1):",
            "",
            "| photos, blur | SSIM / edge-F1 |",
            "|---|---|",
        ]
        lines += [f"| {key} | {r['ssim']:.3f} / {r['edge_f1']:.3f} |" for key, r in record["teacher_blurred"].items()]
    return "\n".join(lines)


def render_teacher_context(record: dict) -> str:
    lines = [
        *preamble(record),
        f"The centre of {record['photos']} drawn at {record['size']}² in style {record['style']} with every pixel beyond a margin "
        "around it replaced (by white, the alignment's fill, or by the next photo's pixels there), against the drawing of the "
        "whole photo: SSIM of the centre window. A network of convolutions alone scores 1.000 wherever the margin covers its "
        "reach (its kernels' half-widths times their strides, along its layers); below that, the drawing there depends on "
        "pixels the margin left out.",
        "",
        "| model | reach px | window px | margin px | SSIM, beyond replaced by white | by another photo |",
        "|---|---|---|---|---|---|",
    ]
    for row in record["rows"]:
        for case in row["cases"]:
            lines.append(
                f"| `{row['model']}` | {row['reach_px']:.0f} | {case['window']} | {case['margin']} | {case['white']:.3f} | "
                f"{case['other_photo']:.3f} |"
            )
    return "\n".join(lines)


def render_pixel_phase(record: dict) -> str:
    grid = record["grid"]
    moves = list(record["rows"][0]["moved"])
    lines = [
        *preamble(record),
        f"{record['photos']} drawn at {record['size']}² in style {record['style']}, each photo moved down and right by the pixels "
        f"named, drawn and moved back, scored against the drawing of the photo (SSIM, {record['margin']} px from the borders "
        f"left out); the phase mean is the mean of the drawings at all {grid * grid} moves of 0 to {grid - 1} pixels.",
        "",
        "| model | " + " | ".join(f"moved {m} px" for m in moves) + " | against its own phase mean |",
        "|---|" + "---|" * (len(moves) + 1),
    ]
    for row in record["rows"]:
        lines.append(
            f"| `{row['model']}` | " + " | ".join(f"{row['moved'][m]:.3f}" for m in moves) + f" | {row['vs_own_phase_mean']:.3f} |"
        )
    students = [row for row in record["rows"] if "vs_teacher" in row]
    if students:
        lines += [
            "",
            f"Each student against the teacher (`{record['rows'][0]['model']}`): SSIM to its drawing, to its phase mean, and of the two "
            "phase means; then how far the student's change under each move follows the teacher's (Pearson correlation of "
            "the two differences, pixel by pixel; 1 if it drew the teacher's phase-dependent strokes).",
            "",
            "| student | SSIM to the teacher | to its phase mean | phase mean to phase mean | "
            + " | ".join(f"follows, moved {m} px" for m in moves)
            + " |",
            "|---|---|---|---|" + "---|" * len(moves),
        ]
        for row in students:
            lines.append(
                f"| `{row['model']}` | {row['vs_teacher']:.3f} | {row['vs_teacher_phase_mean']:.3f} | "
                f"{row['phase_mean_vs_teacher_phase_mean']:.3f} | " + " | ".join(f"{row['follows_teacher'][m]:.3f}" for m in moves) + " |"
            )
    return "\n".join(lines)


def render_export_variants(record: dict) -> str:
    height, width = record["size"]
    threads = record["threads"]
    lines = [
        *preamble(record),
        f"Every exported variant of `{record['model']}` at {height}x{width} ({record['gflops']:.1f} GFLOP/frame), each in its own "
        f"TensorFlow-free process (LiteRT + XNNPACK, median of {record['runs']}); quality against the float Keras drawing on {record['photos']}:",
        "",
        "| variant | MB | peak RSS MB | "
        + " | ".join(f"{t} thread{'s' if t > 1 else ''} s" for t in threads)
        + " | PSNR dB | SSIM | edge-F1 |",
        "|---|---|---|" + "---|" * len(threads) + "---|---|---|",
    ]
    for variant, row in record["rows"].items():
        timings = " | ".join(f"{row[f'latency_{t}t_s']:.3f}" for t in threads)
        lines.append(
            f"| {variant} | {row['mb']:.1f} | {row['peak_rss_mb']:.0f} | {timings} | {row['psnr_db']:.1f} | {row['ssim']:.4f} | {row['edge_f1']:.4f} |"
        )
    return "\n".join(lines)


def _compare_cell(entry: dict) -> str:
    if not entry.get("frames"):
        return "no frames to compare"
    same = (
        "identical"
        if entry["identical_frames"] == entry["frames"]
        else f"min {entry['psnr_db_min']:.1f} dB, max difference {entry['max_abs_diff']}"
    )
    return (
        f"{entry['frames']} frames: {same}"
        if same == "identical"
        else f"{entry['frames']} frames, {same} ({entry['identical_frames']} identical)"
    )


def render_pi_check(record: dict) -> str:
    offline = record["assets_offline"]
    libraries = record["system_libraries"]
    named = ", ".join(f"`{r['package']}`" for r in libraries["rounds"]) or "none"
    lines = [
        *preamble(record),
        f"Userland: Debian {record['userland']['suite']} {record['userland']['arch']} ({record['userland']['variant']}), {record['python']}, "
        f"through {record['emulator']['qemu']} emulating a {record['emulator']['cpu']}. Installed from the package index: "
        + ", ".join(f"{k} {v}" for k, v in sorted(record["installed"].items()))
        + ".",
        "",
        f"- Face models with `{offline['url_blocked']}` unreachable: exit {offline['exit']}, "
        + (f"{len(offline['assets'])} models from the wheel fallback." if not offline["exit"] else f"failed: {offline['stderr_tail']}"),
        f"- On the minimal userland the demo refused {len(libraries['rounds'])} times, each in one line (exit "
        f"{', '.join(str(r['exit']) for r in libraries['rounds']) or '-'}) naming a package: {named}; with those installed it "
        f"{'ran (exit 0)' if libraries['then']['exit'] == 0 else 'still failed: ' + libraries['then']['stderr_tail']}.",
        "",
        f"`{record['model']}` exported here, its {record['clip_frames']}-frame clip drawn by the demo on arm64 and on this machine:",
        "",
        "| variant | faces arm64 / x86 | aligned faces | the demo's drawings | generator alone (x86's aligned faces) | emulated FPS |",
        "|---|---|---|---|---|---|",
    ]
    for variant, run in record["runs"].items():
        if run.get("arm64_exit"):
            lines.append(f"| {variant} | arm64 demo exit {run['arm64_exit']} | | | | |")
            continue
        lines.append(
            f"| {variant} | {run['arm64_faces']} / {run['x86_faces']} | {_compare_cell(run['aligned_faces'])} | "
            f"{_compare_cell(run['demo_drawings'])} | {_compare_cell(run['generator_only'])} | {run['arm64_emulated_fps']:.2f} |"
        )
    lines += ["", "Emulated FPS is QEMU's speed on this machine, not a Pi's."]
    return "\n".join(lines)


def render_web_fps(record: dict) -> str:
    clip, (height, width) = record["clip"], record["model_size"]
    lines = [
        *preamble(record),
        f"The page of `edge_demo/web` in headless Chromium, its fake camera playing a {clip['size']} clip of {clip['faces']} at "
        f"{clip['camera_fps']} FPS, beside the Python demo (`python -m edge_demo --headless`) reading every frame of the same "
        f"{clip['frames']}-frame clip; the same model `{record['model']}` ({height}x{width}). Browser FPS: frames processed per "
        f"second over {record['seconds']:g} s after {record['warmup_seconds']:g} s of drawing (a camera's frames that arrive "
        "while the page works are skipped). Without a GPU, WebGPU is SwiftShader's Vulkan on the CPU: the WebGPU path runs, "
        "not at a GPU's speed.",
        "",
        "| runtime | generator on | FPS | frames with a face | generator p50 ms | detect p50 ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in record["rows"].values():
        lines.append(
            f"| {row['runtime']} | {row['generator_on']} | {row['fps']:.1f} | {row['faces']}/{row['frames']} | "
            f"{row['infer_p50_ms']:.1f} | {row['detect_p50_ms']:.1f} |"
        )
    browsers = sorted({row["browser"] for row in record["rows"].values() if "browser" in row})
    if browsers:
        lines += ["", f"Browser: {', '.join(browsers)}."]
    return "\n".join(lines)


ALONE_SHOWN = 12  # the costliest units per size; the JSON holds every unit
BALANCED_ROW = "int8, norm inputs balanced and clipped (every op int8)"  # benchmarks.quant_sensitivity.BALANCED


def render_quant_sensitivity(record: dict) -> str:
    sizes = record["sizes"]
    header = " | ".join(f"{e['size']}²: PSNR dB | {e['size']}²: s (2 threads)" for e in sizes)
    lines = [
        *preamble(record),
        f"`{record['model']}` as trained, with its norm inputs balanced (`export.balance`: the same float function), and "
        'balanced and clipped (the full-integer export\'s form; a row that says "balanced" is that form unless it says "not clipped"), each '
        f"calibrated once per size ({sizes[0]['calibration']}) and requantized for every row; PSNR of the uint8 drawing against "
        f"the float Keras drawing on {sizes[0]['photos']}; latency in a TensorFlow-free process, median of {record['runs']}.",
        "",
        f"| whole model | MB | {header} |",
        "|---|---|" + "---|---|" * len(sizes),
    ]
    names = list(dict.fromkeys(name for entry in sizes for name in entry["whole"]))
    for name in names:
        row = next(entry["whole"][name] for entry in sizes if name in entry["whole"])
        cells = []
        for entry in sizes:
            r = entry["whole"].get(name)
            if r is None:
                cells.append("not measured at this size | -")
            elif r["psnr_db"] is None:
                cells.append(f"does not run: {r['error']} | -")
            else:
                cells.append(f"{r['psnr_db']:.1f} | {r['latency_2t_s']:.3f}" if "latency_2t_s" in r else f"{r['psnr_db']:.1f} | -")
        lines.append(f"| {name} | {row['mb']:.1f} | {' | '.join(cells)} |")
    clipped = [e for e in sizes if "clip" in e]
    if clipped:
        quantile = clipped[0]["clip"]["quantile"]
        norms = list(clipped[0]["clip"]["bounds"])
        shown = [n for n in norms if not n.startswith("block")]
        lines += [
            "",
            f"**Where the clip falls**: each balanced norm input (unit spread per channel) clipped at the largest of the "
            f"calibration photos' {quantile:.4%} quantiles of |value|, beside its largest value (the int8 range without the clip):",
            "",
            "| norm input | " + " | ".join(f"{e['size']}²: clipped at | {e['size']}²: largest" for e in clipped) + " |",
            "|---|" + "---|---|" * len(clipped),
        ]

        def cells(entries):
            return " | ".join(f"{b['bound']:.1f} | {b['peak']:.1f}" for b in entries)

        for norm in shown:
            lines.append(f"| {norm} | " + cells(e["clip"]["bounds"][norm] for e in clipped) + " |")
        blocks = [n for n in norms if n.startswith("block")]
        if blocks:
            widest = [max((e["clip"]["bounds"][n] for n in blocks), key=lambda b: b["peak"]) for e in clipped]
            lines.append(f"| widest of the {len(blocks)} residual-block norms | " + cells(widest) + " |")
    measured = [e for e in sizes if e["alone"]]
    if measured:
        ranked = sorted(measured[-1]["alone"], key=lambda u: measured[-1]["alone"][u])
        lines += [
            "",
            f"**Each unit alone in int8**, the rest float, norm inputs balanced and clipped (a unit is a convolution with its padding, a norm "
            f"with its ReLU, or an add); the {ALONE_SHOWN} costliest of {len(ranked)}:",
            "",
            "| unit | " + " | ".join(f"{e['size']}² dB" for e in measured) + " |",
            "|---|" + "---|" * len(measured),
        ]
        for unit in ranked[:ALONE_SHOWN]:
            lines.append(f"| {unit} | " + " | ".join(f"{e['alone'][unit]:.1f}" for e in measured) + " |")
        for entry in measured:
            rest = sorted(entry["alone"].values())[ALONE_SHOWN:]
            if rest:
                lines += [
                    "",
                    f"At {entry['size']}² the other {len(rest)} units cost less: each alone keeps the drawing at ≥ {min(rest):.1f} dB.",
                ]
    lines += [
        "",
        "**Everything int8 but one block**, norm inputs balanced and clipped (the gain from keeping that block float):",
        "",
        "| block kept float | " + " | ".join(f"{e['size']}² dB" for e in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for block in sizes[0]["kept_float"]:
        lines.append(f"| {block} | " + " | ".join(f"{e['kept_float'][block]:.1f}" for e in sizes) + " |")
    lines += [
        "",
        "**Mixed-precision plans** on the balanced and clipped model: the fewest units kept float, costliest first (by their cost alone, "
        "else by their block's gain), that reach each target:",
        "",
        "| size | target dB | units kept float | float ops of all | PSNR dB | s (2 threads) | vs fp32 | vs full int8 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in sizes:
        fp32 = entry["whole"]["fp32"]["latency_2t_s"]
        int8 = entry["whole"][BALANCED_ROW]["latency_2t_s"]
        for plan in entry["plans"]:
            if not plan["reached"]:
                lines.append(
                    f"| {entry['size']}² | {plan['target_db']:g} | not reached with every unit float ({plan['psnr_db']:.1f} dB) | | | | | |"
                )
                continue
            names = ", ".join(plan["float_units"]) or "none"
            lines.append(
                f"| {entry['size']}² | {plan['target_db']:g} | {len(plan['float_units'])}: {names} | {plan['float_ops']} of {entry['ops']} | "
                f"{plan['psnr_db']:.1f} | {plan['latency_2t_s']:.3f} | {fp32 / plan['latency_2t_s']:.2f}x | {int8 / plan['latency_2t_s']:.2f}x |"
            )
    return "\n".join(lines)


def render_qat(record: dict) -> str:
    """Per generator and size: post-training int8 beside quantization-aware fine-tuning, same converter and photos."""
    st = record["settings"]
    rows = record["rows"]
    tfmot = any("tfmot" in r for r in rows)
    searched = any("clip_search" in r for r in rows)
    corrected = any("qat_corrected_psnr_db" in r for r in rows)
    clip = (
        " and clipped at the quantile `export.clip_search` chose for each row (the candidate whose int8 drawings of the "
        "calibration photos came closest to float; where it is not the exporter's default clip, post-training int8 at the "
        "default is scored beside it)"
        if searched
        else " and clipped"
    )
    lines = [
        *preamble(record),
        f"Every op int8, the generator balanced (`export.balance`){clip}, the same in both columns, converted by the same converter "
        f"calibrated on {rows[0]['calibration'] if rows else 'the calibration photos'}. QAT: {st['steps']} steps of fine-tuning "
        f"through the int8 simulation (`export.qat_sim`, LAMB {st['learning_rate']:g}, ranges recalibrated every "
        f"{st['recalibrate_every']} steps, loss {st['loss'].upper()} against the float drawing) on those photos, then the same conversion. PSNR of the uint8 drawing against the "
        f"float drawing of the generator as given, on {rows[0]['photos'] if rows else 'held-out photos'}."
        + (
            " \"+ variance bias\": the same file's norms' int8 variance bias measured in it and added to their epsilons, "
            "converted again (`export.variance_bias`: what the exporter ships for `int8`; its `qat` file is not corrected)."
            if corrected
            else ""
        ),
        "",
        "| generator | size |"
        + (" clip search, int8 dB on the calibration photos per quantile | clip kept | PTQ dB, default clip |" if searched else "")
        + " PTQ dB |"
        + (" PTQ + variance bias dB |" if corrected else "")
        + " QAT dB |"
        + (" QAT + variance bias dB |" if corrected else "")
        + " QAT's float model dB | simulation vs converter, before / after dB | loss first / last | s, whole row |"
        + (" tfmot QAT dB |" if tfmot else ""),
        "|---|---|"
        + ("---|---|---|" if searched else "")
        + "---|---|"
        + ("---|---|" if corrected else "")
        + "---|---|---|---|"
        + ("---|" if tfmot else ""),
    ]
    for r in rows:
        f = r["finetune"]
        search = ""
        if searched:
            scores = ", ".join(f"{q}: {db:.1f}" for q, db in r.get("clip_search", {}).items()) or "-"
            default = r.get("ptq_default_clip_psnr_db")
            search = f" {scores} | {r.get('clip_quantile', '-')} | {'-' if default is None else f'{default:.1f}'} |"
        ptq_fixed = f" {r['ptq_corrected_psnr_db']:.1f} |" if "ptq_corrected_psnr_db" in r else " - |" if corrected else ""
        qat_fixed = f" **{r['qat_corrected_psnr_db']:.1f}** |" if "qat_corrected_psnr_db" in r else " - |" if corrected else ""
        lines.append(
            f"| `{r['model']}` | {r['size']}² |{search} {r['ptq_psnr_db']:.1f} |{ptq_fixed} **{r['qat_psnr_db']:.1f}** |{qat_fixed} {r['qat_float_psnr_db']:.1f} | "
            f"{r['simulation_vs_converter_before_db']:.1f} / {r['simulation_vs_converter_after_db']:.1f} | "
            f"{f['first']:.5f} / {f['last']:.5f} | {r['seconds']:.0f} |"
            + (f" {r['tfmot']['psnr_db']:.1f} |" if "tfmot" in r else " - |" if tfmot else "")
        )
    if tfmot:
        lines += [
            "",
            "tfmot QAT: the exporter's earlier `qat` (tensorflow-model-optimization in `tf_keras`: its default 8-bit scheme on the "
            "convolutions and adds, the instance norms left to the converter's calibration, the generator not balanced), "
            "the same steps on the same photos, converted to full integer.",
        ]
    return "\n".join(lines)


def render_int8_runtimes(record: dict) -> str:
    """Per generator and size: PSNR between the drawings of float, two int8 runtimes of one file, and the simulation."""
    rows = record["rows"]
    pairs = list(rows[0]["psnr_db"]) if rows else []
    lines = [
        *preamble(record),
        f"One full-integer file per row (every op int8, norm inputs balanced and clipped at {record['clip_quantile']:g}, calibrated on "
        f"{rows[0]['calibration'] if rows else 'the calibration photos'}), run by XNNPACK and by TensorFlow Lite's built-in int8 "
        'kernels with no delegate ("reference kernels"), and simulated by `export.qat_sim` (what QAT trains through); float is '
        f"the generator as given. PSNR between each pair of drawings, on {rows[0]['photos'] if rows else 'held-out photos'}. "
        "Two drawings wrong independently, by errors of equal size, would lie 3 dB further apart than each lies from float.",
        "",
        "| generator | size | " + " | ".join(f"{p} dB" for p in pairs) + " |",
        "|---|---|" + "---|" * len(pairs),
    ]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['size']}² | " + " | ".join(f"{r['psnr_db'][p]:.1f}" for p in pairs) + " |")
    return "\n".join(lines)


def render_variance_bias(record: dict) -> str:
    """Per generator and size: full int8 before and after each norm's variance bias went into its epsilon."""
    rows = record["rows"]
    lines = [
        *preamble(record),
        f"Full int8 (every op int8, norm inputs balanced and clipped at {record['clip_quantile']:g}, calibrated on "
        f"{rows[0]['calibration'] if rows else 'the calibration photos'}), before and after `export.variance_bias`: the "
        "converted file run on the calibration photos with every tensor kept, each norm's int8 variance compared with the "
        "variance of its own int8 input, the mean difference added to its epsilon, the model converted again. PSNR against "
        f"the float drawing of the generator as given, on {rows[0]['photos'] if rows else 'held-out photos'} (XNNPACK). "
        "Bias: the mean over a norm's channels of bias / variance, for the norm where it is largest.",
        "",
        "| generator | size | full int8 dB | variance bias corrected dB | gain dB | largest bias | float form dB, before / after |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shares = r["bias_share_of_variance"]
        worst = max(shares, key=shares.get) if shares else None
        lines.append(
            f"| `{r['model']}` | {r['size']}² | {r['ptq_psnr_db']:.2f} | {r['corrected_psnr_db']:.2f} | "
            f"{r['corrected_psnr_db'] - r['ptq_psnr_db']:+.2f} | {f'{shares[worst]:.1%} ({worst})' if worst else '-'} | "
            f"{r['float_form_psnr_db']:.1f} / {r['corrected_float_form_psnr_db']:.1f} |"
        )
    return "\n".join(lines)


def render_float_parity(record: dict) -> str:
    """Per generator and size: how far the float32 drawings of Keras and of the fp32 file lie from float64 and from each other."""
    rows = record["rows"]
    lines = [
        *preamble(record),
        f"On {rows[0]['photos'] if rows else 'the exporter parity photos'}: the Keras drawing (float32), the fp32 TFLite "
        "drawing (XNNPACK) and the drawing of a float64 copy of the same generator. Worst pixel in 8-bit levels, and the "
        "share of pixels off by more than one level. First norm: the error of its mean (share of the channel's spread) "
        "and of its variance (share of it), computed in float32 by TensorFlow and by TFLite from the same input, the "
        "worst channel of any photo.",
        "",
        "| generator | size | TFLite vs Keras: dB, worst, share | Keras vs float64: worst | TFLite vs float64: worst | first norm mean error, TF / TFLite | variance error, TF / TFLite |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pair, norm = r["tflite_vs_keras"], r["first_norm"]
        lines.append(
            f"| `{r['model']}` | {r['size']}² | {pair['psnr_db']:.1f}, {pair['worst_levels']:.2f}, {pair['share_over_one_level']:.1e} | "
            f"{r['keras_vs_float64']['worst_levels']:.2f} | {r['tflite_vs_float64']['worst_levels']:.2f} | "
            f"{norm['tensorflow_mean_error_of_spread']:.1e} / {norm['tflite_mean_error_of_spread']:.1e} | "
            f"{norm['tensorflow_variance_error']:.1e} / {norm['tflite_variance_error']:.1e} |"
        )
    return "\n".join(lines)


def render_activation_ranges(record: dict) -> str:
    """Per generator and size: the exporter's int8 with activation ranges at the calibrator's extremes and at the
    quantile its search kept, and every candidate on the held-out photos."""
    rows = record["rows"]
    candidates = list(rows[0]["held_out_psnr_db_uncorrected"]) if rows else []
    lines = [
        *preamble(record),
        f"The exporter's `int8` file (every op int8, norm inputs balanced and clipped at {record['clip_quantile']}, variance "
        f"bias corrected, calibrated on {rows[0]['calibration'] if rows else 'the calibration photos'}) with each activation "
        "range from its smallest to its largest calibration value (`--range_quantile 1`, the converter's own) and at the "
        "quantile `export.activation_ranges` chose on the calibration photos (`auto`). PSNR of the uint8 drawing against "
        f"the float drawing of the generator as given, on {rows[0]['photos'] if rows else 'held-out photos'} (XNNPACK). "
        "The last columns score every candidate on those held-out photos, before the variance-bias correction, to check "
        "the choice against what it did not see.",
        "",
        "| generator | size | extremes dB | chosen quantile | chosen dB | gain dB | "
        + " | ".join(f"{q} held out dB" for q in candidates)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(candidates),
    ]
    for r in rows:
        held_out = r["held_out_psnr_db_uncorrected"]
        lines.append(
            f"| `{r['model']}` | {r['size']}² | {r['extremes_psnr_db']:.2f} | {r['chosen_quantile']:g} | {r['chosen_psnr_db']:.2f} | "
            f"{r['chosen_psnr_db'] - r['extremes_psnr_db']:+.2f} | " + " | ".join(f"{held_out[q]:.2f}" for q in candidates) + " |"
        )
    return "\n".join(lines)


def render_hostile_inputs(record: dict) -> str:
    """Per command: the hostile cases, how many kept the exit-status promise, and the peak memory against the budget."""
    lines = [
        *preamble(record),
        f"Each case is one process; its peak memory includes every child it waited for. A case passes when it ends within "
        f"{record['timeout_s']} s in the exit status it promises (2: refused in one line naming the input; 1: the bad "
        f"items skipped and reported; 0: accepted), with no traceback, under its command's budget.",
        "",
        "| command | cases | as promised | largest peak MB | budget MB | slowest s |",
        "|---|---|---|---|---|---|",
    ]
    commands = dict.fromkeys(row["command"] for row in record["cases"])
    for command in commands:
        rows = [row for row in record["cases"] if row["command"] == command]
        kept = sum(not row["problem"] for row in rows)
        lines.append(
            f"| {command} | {len(rows)} | {kept} | {max(r['peak_mb'] for r in rows):.0f} | {record['budgets_mb'][command]} | "
            f"{max(r['seconds'] for r in rows):.1f} |"
        )
    failed = [row for row in record["cases"] if row["problem"]]
    lines += ["", "Not as promised:" if failed else "Every case as promised."]
    lines += [f"- {row['command']}, {row['case']}: {row['problem']}" for row in failed]
    lines += ["", "| command | case | exit | peak MB | s | last line |", "|---|---|---|---|---|---|"]
    for row in record["cases"]:
        line = row["line"].replace("|", "\\|")[:140]
        lines.append(f"| {row['command']} | {row['case']} | {row['exit']} | {row['peak_mb']:.0f} | {row['seconds']:.1f} | {line} |")
    return "\n".join(lines)


SECTIONS = (
    (
        "Drawing a photo: the official generator in PyTorch beside ours",
        "inference.json",
        render_inference,
        "python -m benchmarks.inference",
    ),
    (
        "Float TFLite with XNNPACK's fp16 arithmetic",
        "inference_xnnpack*.json",
        render_inference,
        "python -m benchmarks.inference --variants fp32 --xnnpack_fp16 --output docs/results/inference_xnnpack_fp16.json",
    ),
    (
        "Float TFLite with Winograd 3x3 convolutions",
        "inference_winograd*.json",
        render_inference,
        "python -m benchmarks.inference --variants fp32,fp32_winograd --output docs/results/inference_winograd.json",
    ),
    (
        "Float32 drawings against float64: the floor under the parity check",
        "float_parity.json",
        render_float_parity,
        "python -m benchmarks.float_parity",
    ),
    (
        "The paper's G (reference weights) on a second CPU, beside PyTorch",
        "inference_reference_g*.json",
        render_inference,
        "python -m benchmarks.inference --variants fp32,int8,fp32_winograd --output docs/results/inference_reference_g_amd_epyc.json",
    ),
    (
        "Full int8 and fp32_winograd of the unpaired G (not tuned on) beside PyTorch",
        "inference_unpaired*.json",
        render_inference,
        "python -m benchmarks.inference --model keras_asym/pretrained/unpaired_drawer.keras --variants fp32,int8,fp32_winograd "
        "--work_dir benchmarks/results/inference_unpaired_g --output docs/results/inference_unpaired_g.json",
    ),
    ("Where the float time goes: G's layers alone", "layer_profile.json", render_layer_profile, "python -m benchmarks.layer_profile"),
    ("One 3x3 convolution, direct and Winograd", "winograd.json", render_winograd, "python -m benchmarks.winograd"),
    (
        "G's stem, head and upsampling on space-to-depth maps",
        "subpixel.json",
        render_subpixel,
        "python -m benchmarks.subpixel",
    ),
    ("One training step beside the official one", "train_step*.json", render_train_step, "python -m benchmarks.train_step"),
    (
        "Reduced precision over a whole training run",
        "unpaired_drawer_mixed_*.json",
        render_precision_run,
        "python -m benchmarks.unpaired_drawer --mixed_precision mixed_bfloat16",
    ),
    (
        "Every export variant alone: memory, threads, quality",
        "export_variants.json",
        render_export_variants,
        "python -m benchmarks.export_variants",
    ),
    (
        "Quantization sensitivity: where int8 loses the drawing",
        "quant_sensitivity*.json",
        render_quant_sensitivity,
        "python -m benchmarks.quant_sensitivity",
    ),
    ("Quantization-aware fine-tuning against post-training int8", "qat*.json", render_qat, "python -m benchmarks.qat"),
    (
        "One int8 file, two int8 runtimes, and the simulation QAT trains through",
        "int8_runtimes.json",
        render_int8_runtimes,
        "python -m benchmarks.int8_runtimes",
    ),
    (
        "Full int8 with the norms' variance bias given back",
        "variance_bias.json",
        render_variance_bias,
        "python -m benchmarks.variance_bias",
    ),
    (
        "Full int8 with activation ranges at a quantile of the calibration values",
        "activation_ranges*.json",
        render_activation_ranges,
        "python -m benchmarks.activation_ranges",
    ),
    (
        "Hostile and careless inputs: exit status and memory per command",
        "hostile_inputs.json",
        render_hostile_inputs,
        "python -m benchmarks.hostile_inputs",
    ),
    ("GPU accelerator coverage", "gpu_coverage.md", None, "python benchmarks/gpu_coverage.py"),
    ("Training throughput through fit", "train_throughput.json", render_train_throughput, "python -m benchmarks.train_throughput"),
    ("The training input pipeline", "input_pipeline.json", render_input_pipeline, "python -m benchmarks.input_pipeline"),
    ("The camera demo end to end", "edge_fps*.json", render_edge_fps, "python -m benchmarks.edge_fps"),
    ("The camera demo over a long run (memory)", "edge_soak.json", render_edge_fps, "python -m benchmarks.edge_fps --soak --frames 2000"),
    ("The distilled student against its teacher", "distill_report*.json", render_distill_report, "python -m benchmarks.distill_report"),
    (
        "How far the teacher looks: its drawing's dependence on distant pixels",
        "teacher_context*.json",
        render_teacher_context,
        "python -m benchmarks.teacher_context",
    ),
    (
        "How much of a drawing follows the pixel grid",
        "pixel_phase*.json",
        render_pixel_phase,
        "python -m benchmarks.pixel_phase",
    ),
    ("The camera demo on an arm64 Debian userland (Raspberry Pi OS)", "pi_check.json", render_pi_check, "sudo make pi-check"),
    ("The camera demo in the browser", "web_fps.json", render_web_fps, "python -m benchmarks.web_fps --model exported/drawing_fp32.tflite"),
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
    winograd = results / "inference_winograd.json"
    if winograd.is_file():
        record = json.loads(winograd.read_text())
        cells = [
            f"{size}² {cell(entry['rows']['tflite_fp32_winograd'])} against PyTorch's {entry['rows']['pytorch']['median_s']:.3f} s "
            f"(plain fp32 {cell(entry['rows']['tflite_fp32'])})"
            for size, entry in record["sizes"].items()
            if {"tflite_fp32_winograd", "tflite_fp32", "pytorch"} <= set(entry["rows"])
        ]
        lines += [
            "",
            "TFLite fp32 with the bottleneck's 3x3 convolutions as Winograd F(2x2, 3x3) and the head and upsampling on "
            "space-to-depth maps (`--variants fp32_winograd`), PyTorch "
            f"timed in the same run ({record['machine']['date'][:10]}): " + ", ".join(cells) + ".",
        ]
    steps = []
    for step in sorted(results.glob("train_step*.json")):
        record = json.loads(step.read_text())
        if "onednn_max_cpu_isa" in record["machine"]:
            continue  # a capped oneDNN is no stand-in for another CPU (docs/training.md); benchmarks.md keeps it
        steps += [
            f"{step_name(kind)}, {cpu_note(record['machine'])}: {row['median_s']:.1f} s against {record['rows']['official']['median_s']:.1f} s, "
            f"{row['speed_vs_official']:.2f}x ({record['size']}², {record['machine']['date'][:10]})"
            for kind, row in record["rows"].items()
            if "speed_vs_official" in row
        ]
    if steps:
        lines += ["", "One full training step, ours against the official one timed in the same run: " + "; ".join(steps) + "."]
    # the README keeps the camera demo's main run (the networks at 256²); other runs' tables are in benchmarks.md
    for edge in [results / "edge_fps.json"] if (results / "edge_fps.json").is_file() else []:
        record = json.loads(edge.read_text())
        cells = [f"{edge_label(name)} {row['fps']:.1f} FPS" for name, row in record["rows"].items()]
        lines += [
            "",
            f"The camera demo end to end ({record['clip']['size']} clip, face detection to paste-back, {record['machine']['threads']} "
            f"generator threads, {record['machine']['date'][:10]}): " + ", ".join(cells) + ".",
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
