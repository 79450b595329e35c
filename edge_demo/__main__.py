"""Live portrait drawing from a camera with a keras-asym TFLite generator (no TensorFlow needed).

    python -m edge_demo --model drawing_int8.tflite                 # camera 0, window
    python -m edge_demo --model m.tflite --source clip.mp4 --headless --output out.mp4 --stats stats.json
    python -m edge_demo --model m.tflite --source picamera --style 0.2,0.5,0.3 --delegate gpu

Keys (window mode): 1/2/3 switch style, s saves a snapshot, q quits.
Exit status: 0 done, 1 the source was lost mid-run, 2 bad model, source or flags.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# MediaPipe imports TensorFlow opportunistically when it is installed; the demo
# must run as it would on a device without it (and 0.7 GB lighter), so TF is
# made unimportable for this process.
sys.modules.setdefault("tensorflow", None)

from edge_demo.runtime.system_libraries import SystemLibraryError, import_native  # noqa: E402

try:
    cv2 = import_native("cv2", "OpenCV")
except SystemLibraryError as missing:  # a minimal system (Raspberry Pi OS Lite): one line, exit 2
    print(f"edge_demo: error: {missing}", file=sys.stderr)
    sys.exit(2)

from absl import flags  # noqa: E402

from edge_demo.app import DrawingDemo  # noqa: E402
from edge_demo.camera import SourceError  # noqa: E402
from edge_demo.runtime import cli, styles  # noqa: E402
from edge_demo.runtime.assets import AssetError  # noqa: E402
from edge_demo.runtime.generator import DELEGATES  # noqa: E402

_MODEL = flags.DEFINE_string("model", None, "Generator .tflite from `python -m export` (default: edge_demo_model.tflite if present).")
_SOURCE = flags.DEFINE_string("source", "0", "Camera index, /dev/videoN, video file, rtsp:// URL, or 'picamera'.")
_STYLE = flags.DEFINE_string("style", "1", "1, 2, 3, or a mixture 'a,b,c'.")
_THREADS = flags.DEFINE_integer("threads", 2, "Generator CPU threads.", lower_bound=1, upper_bound=64)
_DELEGATE = flags.DEFINE_enum(
    "delegate",
    "auto",
    list(DELEGATES),
    "gpu: LiteRT's GPU accelerator (any Vulkan device, SwiftShader too); auto: a hardware GPU when there is one, else XNNPACK.",
)
_VIEW = flags.DEFINE_enum("view", "paste", ["paste", "side"], "paste: drawing over the face; side: frame and drawing side by side.")
_DETECT_EVERY = flags.DEFINE_integer(
    "detect_every", 10, "Run the face detector at least every N frames (mesh tracking between).", lower_bound=1, upper_bound=10000
)
_SMOOTHING = flags.DEFINE_float(
    "smoothing", 1.5, "Alignment smoothing cut-off in Hz (lower: steadier; 0: off).", lower_bound=0.0, upper_bound=1000.0
)
_HEADLESS = flags.DEFINE_boolean("headless", False, "No window (SSH, CI, benchmarks); use --output/--stats.")
_OUTPUT = flags.DEFINE_string("output", None, "Write the rendered video here (.mp4 or .avi).")
_STATS = flags.DEFINE_string("stats", None, "Write per-stage latency percentiles, FPS and dropped frames here (JSON).")
_DRAWINGS = flags.DEFINE_string(
    "drawings", None, "Save every aligned face and its drawing here as PNG (NNNNNN_face.png, NNNNNN_drawing.png; N: the frame)."
)
_MAX_FRAMES = flags.DEFINE_integer(
    "max_frames", 0, "Stop after N frames (0: until the source ends or q).", lower_bound=0, upper_bound=1000000000
)
_CAPTURE = flags.DEFINE_string("capture_size", "640x480", "Requested camera resolution WxH.")
_SNAPSHOTS = flags.DEFINE_string("snapshot_dir", "snapshots", "Where 's' saves snapshots.")

DEFAULT_MODEL = "edge_demo_model.tflite"


def main(argv):
    del argv
    logging.basicConfig(level=logging.INFO, format="edge_demo: %(message)s")
    model = _MODEL.value or (DEFAULT_MODEL if Path(DEFAULT_MODEL).is_file() else None)
    if model is None:
        print("edge_demo: error: --model is required (export one with `python -m export`).", file=sys.stderr)
        return 2
    try:
        style = styles.parse(_STYLE.value)
        for path in (_OUTPUT.value, _STATS.value):
            if path:
                cli.output_file(path)
        if _DRAWINGS.value:
            cli.output_folder(_DRAWINGS.value)
        width, height = (int(v) for v in _CAPTURE.value.lower().split("x"))
        demo = DrawingDemo(
            model,
            _SOURCE.value,
            style,
            threads=_THREADS.value,
            delegate=_DELEGATE.value,
            view=_VIEW.value,
            detect_every=_DETECT_EVERY.value,
            smoothing=_SMOOTHING.value,
            headless=_HEADLESS.value,
            output=_OUTPUT.value,
            stats_path=_STATS.value,
            max_frames=_MAX_FRAMES.value,
            snapshot_dir=_SNAPSHOTS.value,
            capture_size=(width, height),
            drawings_dir=_DRAWINGS.value,
        )
    except (ValueError, FileNotFoundError, SourceError, AssetError, SystemLibraryError) as err:
        cli.error("edge_demo", err)
        return 2
    try:
        summary = demo.run()
    except SourceError as err:
        cli.error("edge_demo", err)
        return 1
    except cv2.error as err:
        print(f"edge_demo: error: no display support ({err}); use --headless, or install opencv-python for a window.", file=sys.stderr)
        return 2
    print(
        f"edge_demo: {summary['frames']} frames, {summary['faces_found']} with a face, {summary['fps']} FPS, "
        f"infer p50 {summary['stages_ms']['infer']['p50']} ms, {summary['dropped_frames']} dropped"
        + (f", {summary['damaged_frames']} unreadable in the file (skipped)" if summary["damaged_frames"] else "")
        + (f"; stats in {_STATS.value}" if _STATS.value else "")
    )
    return 1 if summary["damaged_frames"] else 0


if __name__ == "__main__":
    cli.run(main)
