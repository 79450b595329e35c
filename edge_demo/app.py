"""The camera loop: capture -> track face -> align -> TFLite generator -> composite -> show/write.

Per-stage latencies (capture, detect, align, infer, composite) are kept for
``stats()``; the composite step reuses its buffers, and the generator writes
into the interpreter's own input tensor, so a frame allocates only what
OpenCV's drawing calls need.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_demo.camera import DEFAULT_FPS, FrameSource
from edge_demo.runtime import styles
from edge_demo.runtime.alignment import invert, template
from edge_demo.runtime.faces import FaceLandmarker
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.tracker import FaceTracker

STAGES = ("capture", "detect", "align", "infer", "composite")
VIEWS = ("paste", "side")
log = logging.getLogger("edge_demo")


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


def model_template(height: int, width: int) -> np.ndarray:
    """The official 5-point template for a (possibly non-square) model input, centred."""
    side = min(height, width)
    return template(side) + np.array([(width - side) / 2.0, (height - side) / 2.0])


@dataclass
class Stats:
    seconds: dict = field(default_factory=lambda: {stage: [] for stage in STAGES})
    frames: int = 0
    faces: int = 0
    started: float = field(default_factory=time.perf_counter)
    rss: list = field(default_factory=list)

    def summary(self, source: FrameSource, generator: TFLiteGenerator, tracker: FaceTracker) -> dict:
        elapsed = time.perf_counter() - self.started
        stages = {}
        for stage, values in self.seconds.items():
            ms = np.asarray(values) * 1e3 if values else np.zeros(1)
            stages[stage] = {f"p{q}": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 99)}
            stages[stage]["mean"] = round(float(ms.mean()), 2)
        return {
            "frames": self.frames,
            "faces_found": self.faces,
            "detector_runs": tracker.detections,
            "fps": round(self.frames / elapsed, 2) if elapsed > 0 else 0.0,
            "seconds": round(elapsed, 2),
            "dropped_frames": source.dropped,
            "damaged_frames": source.damaged,
            "source_reopens": source.reopens,
            "stages_ms": stages,
            "model": str(generator.path),
            "model_size": [generator.height, generator.width],
            "delegate": generator.delegate,
            "accelerator": generator.accelerator,
            "fully_accelerated": generator.fully_accelerated,
            "tensorflow_loaded": sys.modules.get("tensorflow") is not None,
            "rss_mb": {"start": round(self.rss[0][1], 1), "end": round(self.rss[-1][1], 1), "max": round(max(r for _, r in self.rss), 1)}
            if self.rss
            else {},
            "rss_mb_by_frame": [[frame, round(mb, 1)] for frame, mb in self.rss],
        }


class Compositor:
    """Draws the result into the frame: pasted over the face, or beside the frame; reuses its buffers."""

    def __init__(self, view: str, size: tuple[int, int]):
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}.")
        self.view = view
        self.height, self.width = size
        self._aligned = np.empty((self.height, self.width, 3), np.uint8)
        self._drawing_bgr = np.empty((self.height, self.width, 3), np.uint8)
        self._ones = np.full((self.height, self.width), 255, np.uint8)
        self._back = None
        self._alpha = None
        self._canvas = None

    def align(self, rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        cv2.warpAffine(
            rgb,
            matrix,
            (self.width, self.height),
            dst=self._aligned,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(255, 255, 255),
        )
        return self._aligned

    def compose(self, frame: np.ndarray, drawing: np.ndarray | None, matrix: np.ndarray | None) -> np.ndarray:
        """BGR output: the frame with the drawing in place (``paste``) or side by side (``side``)."""
        h, w = frame.shape[:2]
        if self.view == "side":
            if self._canvas is None or self._canvas.shape[:2] != (h, w + h * self.width // self.height):
                self._canvas = np.full((h, w + h * self.width // self.height, 3), 255, np.uint8)
            self._canvas[:, :w] = frame
            if drawing is None:
                self._canvas[:, w:] = 255
            else:
                cv2.cvtColor(drawing, cv2.COLOR_GRAY2BGR, dst=self._drawing_bgr)
                cv2.resize(self._drawing_bgr, (self._canvas.shape[1] - w, h), dst=self._canvas[:, w:], interpolation=cv2.INTER_LINEAR)
            return self._canvas
        if drawing is None:
            return frame
        if self._back is None or self._back.shape[:2] != (h, w):
            self._back = np.empty((h, w, 3), np.uint8)
            self._alpha = np.empty((h, w), np.uint8)
        inverse = invert(matrix)
        cv2.cvtColor(drawing, cv2.COLOR_GRAY2BGR, dst=self._drawing_bgr)
        cv2.warpAffine(self._drawing_bgr, inverse, (w, h), dst=self._back, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cv2.warpAffine(self._ones, inverse, (w, h), dst=self._alpha, flags=cv2.INTER_NEAREST, borderValue=0)
        cv2.copyTo(self._back, self._alpha, frame)
        return frame


def overlay(image: np.ndarray, fps: float, infer_ms: float, style_name: str, delegate: str, face: bool) -> None:
    text = f"{fps:5.1f} FPS  infer {infer_ms:5.1f} ms  {style_name}  {delegate}" + ("" if face else "  (no face)")
    cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 1, cv2.LINE_AA)


class DrawingDemo:
    """Everything the loop needs, built once; ``run()`` processes frames until the source ends or ``q``.

    Args:
        model: ``.tflite`` generator from ``python -m export``.
        source: camera index, device, file or URL (see ``camera.parse_source``).
        style: style vector (one-hot or mixture).
        headless: no window; write ``output`` video and ``stats`` JSON instead.
    """

    def __init__(
        self,
        model: str,
        source: str,
        style: np.ndarray,
        threads: int = 2,
        delegate: str = "auto",
        view: str = "paste",
        detect_every: int = 10,
        smoothing: float = 1.5,
        headless: bool = False,
        output: str | None = None,
        stats_path: str | None = None,
        max_frames: int = 0,
        snapshot_dir: str = ".",
        capture_size: tuple[int, int] = (640, 480),
        overlay_text: bool = True,
        drawings_dir: str | None = None,
    ):
        self.generator = TFLiteGenerator(model, threads=threads, delegate=delegate)
        log.info("model %s (%dx%d), delegate: %s", model, self.generator.height, self.generator.width, self.generator.delegate)
        self.delegate_label = self.generator.delegate
        if self.generator.delegate == "gpu":
            self.delegate_label = "GPU" + ("" if self.generator.fully_accelerated else " (split with CPU)")
        self.compositor = Compositor(view, (self.generator.height, self.generator.width))
        self.source = FrameSource(source, width=capture_size[0], height=capture_size[1])
        try:
            self.landmarker = FaceLandmarker(threads=1, refine=False)
        except BaseException:
            self.source.close()
            raise
        self.tracker = FaceTracker(self.landmarker, model_template(self.generator.height, self.generator.width), detect_every, smoothing)
        self._set_style(np.asarray(style, np.float32))
        self.headless, self.output, self.stats_path = headless, output, stats_path
        self.max_frames, self.snapshot_dir, self.overlay_text = max_frames, Path(snapshot_dir), overlay_text
        self.stats = Stats()
        self._writer = None
        self.drawings_dir = Path(drawings_dir) if drawings_dir else None
        if self.drawings_dir:
            self.drawings_dir.mkdir(parents=True, exist_ok=True)

    def _set_style(self, style: np.ndarray) -> None:
        """The style and its overlay label, worked out once per change rather than per frame."""
        self.style = style
        k = styles.which(style)
        self.style_name = styles.STYLE_NAMES[k - 1] if k else "mix " + ",".join(f"{v:.2f}" for v in style)

    def _write(self, image: np.ndarray) -> None:
        if not self.output:
            return
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.output.endswith(".mp4") else "MJPG"))
            fps = self.source.fps if self.source.fps > 0 else DEFAULT_FPS
            self._writer = cv2.VideoWriter(self._tmp_output(), fourcc, fps, (image.shape[1], image.shape[0]))
            if not self._writer.isOpened():
                raise RuntimeError(f"{self.output}: cannot open a video writer (try .avi).")
        self._writer.write(image)

    def _save_pair(self, aligned: np.ndarray, drawing: np.ndarray) -> None:
        """Frame N's aligned face and drawing as lossless PNGs (``NNNNNN_face.png``, ``NNNNNN_drawing.png``),
        each written whole or not at all: what another machine's run is compared with."""
        for kind, image in (("face", cv2.cvtColor(aligned, cv2.COLOR_RGB2BGR)), ("drawing", drawing)):
            ok, data = cv2.imencode(".png", image)
            if not ok:
                raise RuntimeError(f"{self.drawings_dir}: cannot encode frame {self.stats.frames} as PNG.")
            final = self.drawings_dir / f"{self.stats.frames:06d}_{kind}.png"
            tmp = final.with_name(f".{final.name}.partial")
            tmp.write_bytes(data.tobytes())
            os.replace(tmp, final)

    def _tmp_output(self) -> str:
        path = Path(self.output)
        return str(path.with_name(f".{path.stem}.partial{path.suffix}"))

    def step(self) -> np.ndarray | None:
        """One frame through the pipeline; ``None`` at the end of the source."""
        seconds = self.stats.seconds
        frame = self.source.read()
        if frame is None:
            return None
        seconds["capture"].append(frame.read_seconds)
        t0 = time.perf_counter()
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        matrix = self.tracker.update(rgb, frame.captured)
        t1 = time.perf_counter()
        seconds["detect"].append(t1 - t0)
        drawing = None
        if matrix is not None:
            self.stats.faces += 1
            aligned = self.compositor.align(rgb, matrix)
            t2 = time.perf_counter()
            seconds["align"].append(t2 - t1)
            drawing = self.generator.draw(aligned, self.style)
            t3 = time.perf_counter()
            seconds["infer"].append(t3 - t2)
            if self.drawings_dir:
                self._save_pair(aligned, drawing)
                t3 = time.perf_counter()
        else:
            t3 = time.perf_counter()
        image = self.compositor.compose(frame.image, drawing, matrix)
        self.stats.frames += 1
        if self.overlay_text:
            elapsed = time.perf_counter() - self.stats.started
            infer = seconds["infer"][-1] * 1e3 if seconds["infer"] else 0.0
            overlay(image, self.stats.frames / max(elapsed, 1e-6), infer, self.style_name, self.delegate_label, matrix is not None)
        seconds["composite"].append(time.perf_counter() - t3)
        return image

    def _handle_key(self, key: int, image: np.ndarray) -> bool:
        if key in (ord("q"), 27):
            return False
        if key in (ord("1"), ord("2"), ord("3")):
            self._set_style(styles.one_hot(key - ord("0")))
        elif key == ord("s"):
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            path = self.snapshot_dir / f"snapshot_{time.strftime('%Y%m%d_%H%M%S')}_{self.stats.frames:06d}.png"
            cv2.imwrite(str(path), image)
            log.info("snapshot: %s", path)
        return True

    def run(self) -> dict:
        """Runs to the end (or ``max_frames``, or ``q``); returns the stats summary."""
        window = "keras-asym (1/2/3 style, s snapshot, q quit)"
        try:
            while not self.max_frames or self.stats.frames < self.max_frames:
                image = self.step()
                if image is None:
                    break
                if self.stats.frames % 50 == 1:
                    self.stats.rss.append((self.stats.frames, rss_mb()))
                self._write(image)
                if not self.headless:
                    cv2.imshow(window, image)
                    if not self._handle_key(cv2.waitKey(1) & 0xFF, image):
                        break
        finally:
            self.close()
        summary = self.stats.summary(self.source, self.generator, self.tracker)
        if self.stats_path:
            path = Path(self.stats_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.partial")
            tmp.write_text(json.dumps(summary, indent=2))
            tmp.replace(path)
        return summary

    def close(self) -> None:
        self.stats.rss.append((self.stats.frames, rss_mb()))
        self.source.close()
        self.landmarker.close()
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            if Path(self._tmp_output()).is_file():  # a writer that never opened wrote nothing to publish
                os.replace(self._tmp_output(), self.output)
        if not self.headless:
            cv2.destroyAllWindows()
