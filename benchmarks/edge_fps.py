"""End-to-end FPS of the camera demo for each network and variant (headless, on a rendered clip).

    python -m benchmarks.edge_fps                          # the networks below, fp32 and int8 at 256: docs/results/edge_fps.json
    python -m benchmarks.edge_fps --networks= --models exported/drawing_int8.tflite
    python -m benchmarks.edge_fps --soak --frames 2000     # docs/results/edge_soak.json

Runs ``python -m edge_demo --headless`` (no TensorFlow in that process) on a
640x480 clip of faces moving over a background (the shared aligned photos
when present, else procedural portraits) and reads its stats: FPS, per-stage
p50/p99 latency, frames with a face, dropped frames. ``--soak`` also reports
memory growth after warm-up (bar: < 20 MB over 2,000 frames).

``--networks`` builds each network with seeded weights and exports it (``python -m export``): the distilled
student at the recipe's width (alpha 1), at alpha 2 and with global context, and the paper's G. What a frame costs does not depend
on the weights (face detection runs on the camera frame, not on the drawing), so these are the speeds of the
trained models too; the quality of trained students is ``benchmarks.distill_report``'s.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app, flags

from benchmarks.common import fingerprint
from benchmarks.common.camera_demo import row_name, run_demo
from benchmarks.common.shared_data import clip_faces
from edge_demo.runtime.progress import Progress

NETWORKS = {
    "student": ("MobileStyleGenerator", {"alpha": 1.0}),
    "student_alpha2": ("MobileStyleGenerator", {"alpha": 2.0}),
    # for 512²: the last 3x3 convolution at half resolution, before its resize
    "student_half_res_conv": ("MobileStyleGenerator", {"alpha": 1.0, "full_res_conv": False}),
    # each block scaled and shifted by its image-wide mean (distill --global_context)
    "student_global_context": ("MobileStyleGenerator", {"alpha": 1.0, "global_context": True}),
    # the teacher's instance norm instead of batch norm (distill --instance_norm)
    "student_instance_norm": ("MobileStyleGenerator", {"alpha": 1.0, "instance_norm": True}),
    # the recipe's network upsampling by transposed convolutions, as the teacher (distill --transposed_up)
    "student_transposed_up": ("MobileStyleGenerator", {"alpha": 1.0, "global_context": True, "transposed_up": True}),
    # the same with its blocks at 1/4 resolution, where the teacher's run (distill --bottleneck_stride 4)
    "student_bottleneck4": (
        "MobileStyleGenerator",
        {"alpha": 1.0, "global_context": True, "transposed_up": True, "bottleneck_stride": 4},
    ),
    "paper_g": ("StyleGenerator", {}),
}
_NETWORKS = flags.DEFINE_list("networks", list(NETWORKS), f"Networks to build and export with seeded weights ({', '.join(NETWORKS)}).")
_VARIANTS = flags.DEFINE_list("variants", ["fp32", "int8"], "Export variants of each network.")
_SIZE = flags.DEFINE_integer("size", 256, "Export size of the networks.", lower_bound=32)
_EXPORT_DIRS = flags.DEFINE_list("export_dirs", [], "Export folders (python -m export); every drawing_*.tflite is run.")
_MODELS = flags.DEFINE_list("models", [], "Extra .tflite files to run.")
_FRAMES = flags.DEFINE_integer("frames", 200, "Frames per run.")
_THREADS = flags.DEFINE_integer("threads", 2, "Generator threads.")
_SOAK = flags.DEFINE_boolean("soak", False, "Soak mode: one long run per model with memory tracking.")
_WARMUP = flags.DEFINE_integer("warmup", 200, "Soak: frames before the memory baseline.")
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/edge_fps.json, or edge_soak.json with --soak).")


def network_exports(work: Path) -> list[Path]:
    """Each of ``--networks`` built with seed 0 and exported at ``--size`` (reused only from the same weights, exporter
    code and options)."""
    import keras

    from benchmarks.common.shared_data import shared_dir
    from keras_asym.models import mobile, networks
    from keras_asym.utils.imageio import save_keras_atomic

    photos = shared_dir() / "data" / "aligned_photos" / "images"
    models = []
    for name in _NETWORKS.value:
        if name not in NETWORKS:
            raise ValueError(f"--networks: unknown network {name!r}; known: {', '.join(NETWORKS)}.")
        cls_name, options = NETWORKS[name]
        folder = work / f"{name}_{_SIZE.value}"
        wanted = [folder / f"drawing_{v}.tflite" for v in _VARIANTS.value]
        keras.utils.set_random_seed(0)
        cls = getattr(mobile, cls_name, None) or getattr(networks, cls_name)
        generator = cls(**options)
        generator({"photo": keras.ops.zeros((1, _SIZE.value, _SIZE.value, 3)), "style": keras.ops.zeros((1, 3))})
        cmd = [sys.executable, "-m", "export", f"--model={folder / 'generator.keras'}", f"--output={folder}", f"--size={_SIZE.value}"]
        cmd += [f"--variants={','.join(_VARIANTS.value)}", "--gpu_check=off", "--noper_op_report"]
        cmd += [f"--calibration_dir={photos}"] if photos.is_dir() else []
        made_from = fingerprint.export_fingerprint(fingerprint.weights_sha256(generator), {"command": cmd[3:]})
        if not fingerprint.is_current(folder, made_from) or not all(p.is_file() for p in wanted):
            shutil.rmtree(folder, ignore_errors=True)  # an export of other weights, exporter code or options
            save_keras_atomic(generator, folder / "generator.keras")
            subprocess.run(cmd, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
            fingerprint.stamp(folder, made_from)
        models += wanted
    return models


def main(argv):
    del argv
    from benchmarks import report
    from benchmarks.common import results
    from edge_demo.runtime.assets import cache_dir
    from keras_asym.data.clip import write_clip

    models = [Path(m) for m in _MODELS.value]
    for folder in _EXPORT_DIRS.value:
        models += sorted(Path(folder).glob("*.tflite"))
    if _NETWORKS.value:
        models += network_exports(cache_dir().parent / "bench" / "edge_fps")
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
            name = row_name(model, rows)
            row = {
                "size": stats["model_size"],
                "fps": stats["fps"],
                "frames": stats["frames"],
                "faces": stats["faces_found"],
                "dropped": stats["dropped_frames"],
                "infer_p50_ms": stats["stages_ms"]["infer"]["p50"],
                "detect_p50_ms": stats["stages_ms"]["detect"]["p50"],
                "total_p99_ms": round(sum(s["p99"] for s in stats["stages_ms"].values()), 2),
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
    record = {
        **results.header(kind, _THREADS.value, module="edge_fps"),
        "clip": {"frames": _FRAMES.value, "size": "640x480", "faces": source},
        "networks": {name: NETWORKS[name] for name in _NETWORKS.value},
        "weights": "seeded (seed 0) for --networks: speed does not depend on the weights" if _NETWORKS.value else "as given",
        "soak": _SOAK.value,
        "rows": rows,
    }
    print(report.render_edge_fps(record))
    results.write(record, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    app.run(main)
