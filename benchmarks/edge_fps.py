"""End-to-end FPS of the camera demo for each exported variant (headless, on a rendered clip).

    python benchmarks/edge_fps.py --export_dirs benchmarks/results/export_256,benchmarks/results/export
    python benchmarks/edge_fps.py --soak --frames 2000 --export_dirs benchmarks/results/student_256

Runs ``python -m edge_demo --headless`` (no TensorFlow in that process) on a
640x480 clip of faces moving over a background (the shared aligned photos
when present, else procedural portraits) and reads its stats: FPS, per-stage
p50/p99 latency, frames with a face, dropped frames. ``--soak`` also reports
memory growth after warm-up (bar: < 20 MB over 2,000 frames).
Writes ``edge_fps.{md,json}`` (or ``edge_soak.*``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app, flags

from edge_demo.runtime.progress import Progress

_EXPORT_DIRS = flags.DEFINE_list(
    "export_dirs", ["benchmarks/results/export"], "Export folders (python -m export); every drawing_*.tflite is run."
)
_MODELS = flags.DEFINE_list("models", [], "Extra .tflite files to run.")
_FRAMES = flags.DEFINE_integer("frames", 200, "Frames per run.")
_THREADS = flags.DEFINE_integer("threads", 2, "Generator threads.")
_SOAK = flags.DEFINE_boolean("soak", False, "Soak mode: one long run per model with memory tracking.")
_WARMUP = flags.DEFINE_integer("warmup", 200, "Soak: frames before the memory baseline.")
_OUTPUT = flags.DEFINE_string("output", "benchmarks/results", "Where the table and JSON go.")


def clip_faces():
    import numpy as np

    from benchmarks.common.shared_data import shared_dir
    from keras_asym.utils.imageio import list_images, read_rgb

    folder = shared_dir() / "data" / "aligned_photos" / "images"
    if folder.is_dir():
        return [read_rgb(p) for p in list_images(folder)[:6]], str(folder)
    from keras_asym.data.procedural import render_photo, sample_face

    rng = np.random.default_rng(0)
    return [render_photo(sample_face(rng), 256)[0] for _ in range(6)], "procedural portraits"


def run_demo(model: Path, clip: Path, threads: int, stats: Path) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_demo",
            f"--model={model}",
            f"--source={clip}",
            "--headless",
            f"--threads={threads}",
            f"--stats={stats}",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if result.returncode != 0:
        raise RuntimeError(f"edge_demo failed on {model}:\n{result.stderr[-2000:]}")
    return json.loads(stats.read_text())


def main(argv):
    del argv
    from keras_asym.data.clip import write_clip

    models = [Path(m) for m in _MODELS.value]
    for folder in _EXPORT_DIRS.value:
        models += sorted(Path(folder).glob("*.tflite"))
    if not models:
        print("edge_fps: error: no .tflite models found.", file=sys.stderr)
        return 2
    faces, source = clip_faces()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.avi", faces, frames=_FRAMES.value, frames_per_face=100)
        progress = Progress(len(models), "edge_fps", unit="models", interval=0.0)
        for model in models:
            stats = run_demo(model, clip, _THREADS.value, Path(tmp) / "stats.json")
            progress.update(note=model.name)
            name = f"{model.parent.name}/{model.stem}"
            row = {
                "size": stats["model_size"],
                "fps": stats["fps"],
                "frames": stats["frames"],
                "faces": stats["faces_found"],
                "dropped": stats["dropped_frames"],
                "infer_p50_ms": stats["stages_ms"]["infer"]["p50"],
                "detect_p50_ms": stats["stages_ms"]["detect"]["p50"],
                "total_p99_ms": sum(s["p99"] for s in stats["stages_ms"].values()),
                "delegate": stats["delegate"],
                "tensorflow_loaded": stats["tensorflow_loaded"],
            }
            if _SOAK.value:
                samples = stats["rss_mb_by_frame"]
                baseline = next((mb for frame, mb in samples if frame > _WARMUP.value), samples[-1][1])
                row.update(
                    {
                        "rss_after_warmup_mb": baseline,
                        "rss_end_mb": samples[-1][1],
                        "rss_growth_mb": round(samples[-1][1] - baseline, 1),
                        "rss_samples": samples,
                    }
                )
            rows[name] = row
            print(
                f"{name}: {row['fps']} FPS, infer p50 {row['infer_p50_ms']} ms"
                + (f", RSS growth {row['rss_growth_mb']} MB" if _SOAK.value else ""),
                flush=True,
            )
    kind = "edge_soak" if _SOAK.value else "edge_fps"
    header = (
        f"Edge demo end to end ({_FRAMES.value} frames of a 640x480 clip of {source}, {_THREADS.value} generator threads, this 2-core CPU)"
    )
    lines = [
        header,
        "",
        "| model | size | FPS | infer p50 ms | detect p50 ms | faces | dropped |"
        + (" RSS after warm-up MB | growth MB |" if _SOAK.value else ""),
        "|---|---|---|---|---|---|---|" + ("---|---|" if _SOAK.value else ""),
    ]
    for name, row in rows.items():
        extra = f" {row['rss_after_warmup_mb']} | {row['rss_growth_mb']} |" if _SOAK.value else ""
        lines.append(
            f"| {name} | {row['size'][0]}x{row['size'][1]} | {row['fps']} | {row['infer_p50_ms']} | {row['detect_p50_ms']} | {row['faces']}/{row['frames']} | {row['dropped']} |{extra}"
        )
    table = "\n".join(lines)
    print(table)
    output = Path(_OUTPUT.value)
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{kind}.md").write_text(table + "\n")
    (output / f"{kind}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    app.run(main)
