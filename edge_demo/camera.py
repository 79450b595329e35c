"""Frames from a camera, a video file or a stream, captured on their own thread.

Live sources (camera index, ``/dev/videoN``, ``rtsp://``/``http://`` URLs,
``picamera``) keep only the newest frame: a slow consumer gets the latest
picture and the frames it missed are counted as dropped, so the demo never
lags behind the camera. Files are played frame by frame (nothing dropped)
unless ``realtime=True``. A live source that stops delivering is reopened
with exponential back-off until ``reopen_timeout`` runs out.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("edge_demo")


MAX_DAMAGED_FRAMES = 30  # reads tried past a damaged stretch of a file before it counts as ended
END_SLACK = 0.05  # a file stopping this close to its declared frame count has ended (the count is an estimate)
DEFAULT_FPS = 25.0  # the timeline of a file that declares no frame rate


class SourceError(RuntimeError):
    """The frame source cannot be opened or was lost for good."""


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8
    index: int
    captured: float  # seconds: time.perf_counter() at capture, or the frame's time in a file played frame by frame
    read_seconds: float


def parse_source(source: str) -> tuple[str, object]:
    """``("camera", 0)``, ``("device", "/dev/video0")``, ``("stream", url)``, ``("file", path)`` or ``("picamera", None)``."""
    if source.isdigit():
        return "camera", int(source)
    if source == "picamera":
        return "picamera", None
    if source.startswith("/dev/video"):
        return "device", source
    if "://" in source:
        return "stream", source
    return "file", source


class _PiCamera:
    """``picamera2`` behind the ``cv2.VideoCapture`` calls used here (optional dependency)."""

    def __init__(self, width: int, height: int):
        try:
            from picamera2 import Picamera2  # lazy: an optional extra, on Raspberry Pi OS only
        except ImportError as err:
            raise SourceError("--source picamera needs picamera2 (sudo apt install python3-picamera2).") from err
        self._camera = Picamera2()
        self._camera.configure(self._camera.create_video_configuration(main={"size": (width, height), "format": "RGB888"}))
        self._camera.start()

    def isOpened(self) -> bool:  # noqa: N802  (cv2 API)
        return True

    def read(self):
        return True, self._camera.capture_array()

    def get(self, prop):
        return 0.0

    def release(self) -> None:
        self._camera.stop()


class FrameSource:
    """Threaded capture. ``read()`` returns the next :class:`Frame`, or ``None`` at the end of a file.

    Args:
        source: see ``parse_source``.
        width, height: requested capture size for cameras (0: driver default).
        realtime: for files, drop frames to keep to the file's frame rate.
        reopen_timeout: seconds to keep retrying a lost live source.
    """

    def __init__(self, source: str, width: int = 0, height: int = 0, realtime: bool = False, reopen_timeout: float = 30.0):
        self.kind, self.target = parse_source(source)
        self.source = source
        if self.kind == "file" and not Path(source).is_file():
            raise SourceError(f"{source}: no such video file.")
        self.width, self.height = width, height
        self.live = self.kind != "file" or realtime
        self.reopen_timeout = reopen_timeout
        self.dropped = 0
        self.damaged = 0  # unreadable frames of a damaged file, skipped
        self.reopens = 0
        self._capture = self._open()
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._latest: Frame | None = None
        self._finished = False
        self._error: Exception | None = None
        self._stop = threading.Event()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def _open(self):
        if self.kind == "picamera":
            return _PiCamera(self.width or 640, self.height or 480)
        capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            what = "video file (unreadable or unsupported codec)" if self.kind == "file" else "camera/stream"
            raise SourceError(f"{self.source}: cannot open {what}.")
        if self.kind in ("camera", "device") and self.width and self.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture

    def _reopen(self) -> bool:
        deadline = time.monotonic() + self.reopen_timeout
        delay = 0.25
        self._capture.release()
        log.warning("%s: no frames (camera unplugged?); reopening for up to %.0f s.", self.source, self.reopen_timeout)
        while not self._stop.is_set() and time.monotonic() < deadline:
            time.sleep(delay)
            try:
                self._capture = self._open()
                self.reopens += 1
                log.warning("%s: reopened.", self.source)
                return True
            except SourceError:
                delay = min(delay * 2, 4.0)
        return False

    def _past_damage(self, index: int):
        """A file that fails well before the frame count it declares is damaged, not finished: try the frames after
        the damage; if none can be read, the source ends with an error naming where it stopped.

        Containers estimate their frame count (duration x rate for MKV/WebM, edit lists in MP4), so a file that
        stops within ``END_SLACK`` of it has ended.
        """
        declared = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if index >= declared - max(2, int(declared * END_SLACK)):
            return False, None
        for attempt in range(1, MAX_DAMAGED_FRAMES + 1):
            ok, image = self._capture.read()
            if ok and image is not None:
                self.damaged += attempt
                log.warning("%s: %d unreadable frame(s) after frame %d skipped (damaged file?).", self.source, attempt, index)
                return ok, image
        self._error = SourceError(f"{self.source}: unreadable after frame {index} of the {declared} it declares (damaged file?).")
        return False, None

    def _run(self) -> None:
        index = 0
        frame_period = 1.0 / self.fps if (self.kind == "file" and self.live and self.fps > 0) else 0.0
        next_due = time.perf_counter()
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                ok, image = self._capture.read()
                if (not ok or image is None) and self.kind == "file":
                    ok, image = self._past_damage(index + self.damaged)  # the position in the file
                if not ok or image is None:
                    if self.kind == "file" or not self._reopen():
                        if self.kind != "file":
                            self._error = SourceError(f"{self.source}: lost and not back within {self.reopen_timeout:.0f} s.")
                        break
                    continue
                if self.kind == "picamera":
                    image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
                # A file played frame by frame is timed by its own timeline: the smoothing then follows the motion the
                # video holds, the same on any machine at any speed; live sources are timed as they arrive.
                captured = index / (self.fps or DEFAULT_FPS) if not self.live else time.perf_counter()
                frame = Frame(image, index, captured, time.perf_counter() - started)
                index += 1
                with self._ready:
                    if self.live:
                        if self._latest is not None:
                            self.dropped += 1
                    else:
                        while self._latest is not None and not self._stop.is_set():
                            self._ready.wait(0.1)
                    self._latest = frame
                    self._ready.notify_all()
                if frame_period:
                    next_due += frame_period
                    time.sleep(max(0.0, next_due - time.perf_counter()))
        finally:
            with self._ready:
                self._finished = True
                self._ready.notify_all()

    def read(self, timeout: float = 10.0) -> Frame | None:
        """The newest unread frame; ``None`` when a file ends. Raises ``SourceError`` for a lost source."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._latest is None and not self._finished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SourceError(f"{self.source}: no frame within {timeout:.0f} s.")
                self._ready.wait(remaining)
            frame, self._latest = self._latest, None
            self._ready.notify_all()
        if frame is None and self._error is not None:
            raise self._error
        return frame

    def close(self) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        self._thread.join(timeout=5)
        self._capture.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
