"""Frames per second of the camera demo in the browser beside the Python demo: the same clip, the same model.

    python -m benchmarks.web_fps --model exported/drawing_fp32.tflite      # docs/results/web_fps.json
    python -m benchmarks.web_fps --model m.tflite --frames 20 --seconds 5 --warmup 2 --output /tmp/web_fps.json

The page (``python -m edge_demo.web.build``) runs in headless Chromium (``edge_demo.web.headless``) with a fake
camera playing the clip, once per ``--accelerators`` entry (the generator on WebGPU, on WASM); FPS is the frames it
processed per second over ``--seconds`` after ``--warmup`` seconds. A camera delivers frames live, so the page skips
the ones that arrive while it works, and its clip is played at ``CAMERA_FPS`` so the camera is not what limits it.
The Python demo (``python -m edge_demo --headless``, XNNPACK) reads every frame of the same clip as a file. On a
machine without a GPU, Chromium's WebGPU adapter is SwiftShader (Vulkan on the CPU): a functional check of the
WebGPU path, not a GPU's speed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

from benchmarks import report
from benchmarks.common import results
from benchmarks.common.camera_demo import run_demo
from benchmarks.common.shared_data import clip_faces
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.web import headless, page
from keras_asym.data.clip import write_clip

CAMERA_FPS = 60
ACCELERATORS = ("webgpu", "wasm")

_MODEL = flags.DEFINE_string("model", None, "Generator .tflite (python -m export); the same file runs in both.")
_FRAMES = flags.DEFINE_integer("frames", 200, "Frames in the clip (the Python demo processes all of them).", lower_bound=10)
_SECONDS = flags.DEFINE_float("seconds", 20.0, "Browser: seconds measured per accelerator.", lower_bound=1.0)
_WARMUP = flags.DEFINE_float("warmup", 5.0, "Browser: seconds of drawing before measuring.", lower_bound=0.0)
_ACCELERATORS = flags.DEFINE_list("accelerators", list(ACCELERATORS), f"Browser: where the generator runs ({', '.join(ACCELERATORS)}).")
_THREADS = flags.DEFINE_integer("threads", 2, "Python demo: generator threads.", lower_bound=1)
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/web_fps.json).")


def measure_page(url: str, clip: Path, accelerator: str, seconds: float, warmup: float) -> dict:
    """One browser run: the page on ``accelerator`` with the clip as its camera; FPS and medians over ``seconds``."""
    flags_ = [*headless.camera_flags(clip), *(headless.WEBGPU_FLAGS if accelerator == "webgpu" else ())]
    with headless.Chromium(flags_) as chromium:
        chromium.open(f"{url}?accelerator={accelerator}")
        chromium.wait_for("typeof kerasAsym !== 'undefined'", timeout=30)
        chromium.evaluate("kerasAsym.ready.then(() => true)", timeout=180)
        chromium.wait_for("kerasAsym.framesDrawn > 0", timeout=120)
        time.sleep(warmup)
        first = chromium.evaluate("kerasAsym.stats()")
        time.sleep(seconds)
        last = chromium.evaluate("kerasAsym.stats()")
        browser, adapter = chromium.version(), chromium.evaluate("kerasAsym.adapter")
    elapsed = (last["now"] - first["now"]) / 1000
    frames, drawn = last["frames"] - first["frames"], last["framesDrawn"] - first["framesDrawn"]
    return {
        "runtime": "browser",
        "generator_on": last["accelerator"] + (f" ({adapter})" if adapter else ""),
        "fps": round(frames / elapsed, 2),
        "frames": frames,
        "faces": drawn,
        "infer_p50_ms": round(last["stagesMs"]["infer"], 2),
        "detect_p50_ms": round(last["stagesMs"]["detect"], 2),
        "seconds": round(elapsed, 2),
        "browser": browser,
    }


def measure_python(model: Path, clip: Path, threads: int, work: Path) -> dict:
    """The Python demo over every frame of the clip, as benchmarks/edge_fps.py runs it."""
    stats = run_demo(model, clip, threads, work / "stats.json")
    return {
        "runtime": "python",
        "generator_on": f"{stats['delegate']} ({stats['accelerator']})",
        "fps": stats["fps"],
        "frames": stats["frames"],
        "faces": stats["faces_found"],
        "infer_p50_ms": stats["stages_ms"]["infer"]["p50"],
        "detect_p50_ms": stats["stages_ms"]["detect"]["p50"],
        "seconds": stats["seconds"],
    }


def main(argv):
    del argv
    if not _MODEL.value:
        print("web_fps: error: --model is required (a .tflite from python -m export).", file=sys.stderr)
        return 2
    unknown = set(_ACCELERATORS.value) - set(ACCELERATORS)
    if unknown:
        print(f"web_fps: error: --accelerators: unknown {sorted(unknown)}; known: {', '.join(ACCELERATORS)}.", file=sys.stderr)
        return 2
    if headless.find_chromium() is None:
        print("web_fps: error: no Chromium (apt-get install chromium).", file=sys.stderr)
        return 2
    model = Path(_MODEL.value)
    try:
        generator = TFLiteGenerator(model)
    except (ValueError, FileNotFoundError) as err:
        print(f"web_fps: error: {err}", file=sys.stderr)
        return 2
    faces, source = clip_faces()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = write_clip(work / "clip.avi", faces, frames=_FRAMES.value, frames_per_face=100)
        camera = headless.y4m_from_video(clip, work / "clip.y4m", fps=CAMERA_FPS)
        rows["python"] = measure_python(model, clip, _THREADS.value, work)
        print(f"python: {rows['python']['fps']} FPS", flush=True)
        site = page.build_page(model, work / "site")
        server, url = page.start_server(site)
        try:
            for accelerator in _ACCELERATORS.value:
                row = measure_page(url, camera, accelerator, _SECONDS.value, _WARMUP.value)
                rows[f"browser_{accelerator}"] = row
                print(f"browser, asked for {accelerator}: {row['fps']} FPS, generator on {row['generator_on']}", flush=True)
        finally:
            server.shutdown()
            server.server_close()
    record = {
        **results.header("web_fps", _THREADS.value),
        "model": str(model),
        "model_size": [generator.height, generator.width],
        "clip": {"frames": _FRAMES.value, "size": "640x480", "faces": source, "camera_fps": CAMERA_FPS},
        "seconds": _SECONDS.value,
        "warmup_seconds": _WARMUP.value,
        "rows": rows,
    }
    print(report.render_web_fps(record))
    results.write(record, _OUTPUT.value)
    return 0


if __name__ == "__main__":
    app.run(main)
