"""The page in headless Chromium, driven over the DevTools protocol: open it, evaluate JavaScript, read the answers.

Chromium's ``--remote-debugging-pipe`` speaks the protocol as NUL-separated JSON on file descriptors 3 (commands
in) and 4 (replies and events out), so no WebSocket client is needed: the standard library drives it. For the
tests and ``benchmarks/web_fps.py``; a person uses a real browser.

WebGPU without a GPU: Chromium's own SwiftShader (a Vulkan implementation on the CPU, beside its libraries) gives
it a WebGPU adapter when Vulkan is enabled and pointed at it (``WEBGPU_FLAGS``, ``VK_ICD_FILENAMES``): the real
WebGPU kernels of LiteRT.js, slowly. A fake camera plays a ``.y4m`` or ``.mjpeg`` file (``camera_flags``; ``y4m_from_video`` makes one).
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cv2

WEBGPU_FLAGS = (
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-vulkan=swiftshader",
    "--use-webgpu-adapter=swiftshader",
    "--disable-vulkan-surface",
    "--ignore-gpu-blocklist",
)
BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in containers and CI; the page is our own
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1280,800",
    # MediaPipe's tasks take their images through WebGL whatever the delegate: SwiftShader's GL where there is no GPU
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
)


def camera_flags(clip: str | Path) -> tuple[str, ...]:
    """A fake camera that plays ``clip`` (``.y4m`` or ``.mjpeg``) in a loop, allowed without a prompt."""
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}")


def y4m_from_video(source: str | Path, target: str | Path, fps: int | None = None) -> Path:
    """Converts a video OpenCV reads (e.g. ``keras_asym.data.clip.write_clip``'s ``.avi``) into the raw 4:2:0
    ``.y4m`` Chromium's fake camera plays; ``fps`` overrides the source's rate. ValueError for an unreadable one."""
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ValueError(f"{source}: OpenCV cannot read this video.")
    rate = fps or round(capture.get(cv2.CAP_PROP_FPS) or 25)
    frames = 0
    try:
        with open(target, "wb") as out:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                height, width = frame.shape[:2]
                if frames == 0:
                    out.write(f"YUV4MPEG2 W{width} H{height} F{rate}:1 Ip A1:1 C420jpeg\n".encode())
                out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
                frames += 1
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"{source}: no frames.")
    return Path(target)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def swiftshader_icd(executable: str) -> Path | None:
    """Chromium's SwiftShader Vulkan driver manifest, beside its libraries (Debian: /usr/lib/chromium)."""
    real = Path(os.path.realpath(executable))
    for folder in (real.parent, Path("/usr/lib/chromium"), Path("/usr/lib/chromium-browser"), Path("/opt/google/chrome")):
        if (folder / "vk_swiftshader_icd.json").is_file():
            return folder / "vk_swiftshader_icd.json"
    return None


class PageError(RuntimeError):
    """JavaScript threw, or the page did not answer in time."""


class Chromium:
    """One headless Chromium with one page, driven over ``--remote-debugging-pipe``.

    Args:
        flags: extra command-line flags (``WEBGPU_FLAGS``, ``camera_flags(...)``).
        executable: Chromium (default: ``find_chromium()``).
        log: where Chromium's stderr goes (default: discarded).
    """

    def __init__(self, flags=(), executable: str | None = None, log: str | Path | None = None):
        executable = executable or find_chromium()
        if executable is None:
            raise FileNotFoundError("no Chromium found (apt-get install chromium).")
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        env = dict(os.environ)
        icd = swiftshader_icd(executable)
        if icd is not None and any("swiftshader" in f for f in flags):
            env.setdefault("VK_ICD_FILENAMES", str(icd))
        env.setdefault("XDG_RUNTIME_DIR", self._profile.name)
        commands_in, self._commands = os.pipe()
        self._replies, replies_out = os.pipe()

        def to_fds_3_and_4():  # in the child: the protocol's fixed descriptors
            first, second = fcntl.fcntl(commands_in, fcntl.F_DUPFD, 10), fcntl.fcntl(replies_out, fcntl.F_DUPFD, 10)
            os.dup2(first, 3)
            os.dup2(second, 4)

        self._stderr = open(log, "wb") if log else subprocess.DEVNULL  # closed in close()
        self.process = subprocess.Popen(
            [executable, *BASE_FLAGS, *flags, "--remote-debugging-pipe", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env=env,
            close_fds=False,
            preexec_fn=to_fds_3_and_4,  # only dup2 between fork and exec
        )
        os.close(commands_in)
        os.close(replies_out)
        self._next_id = 0
        self._waiting: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.console: list[str] = []
        threading.Thread(target=self._read, daemon=True, name="devtools-reader").start()
        self.session = None

    # === The protocol ===

    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self._replies, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                for waiting in list(self._waiting.values()):
                    waiting.put({"error": {"message": "Chromium exited"}})
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    waiting = self._waiting.pop(message["id"], None)
                    if waiting is not None:
                        waiting.put(message)
                else:
                    self._event(message)

    def _event(self, message):
        params = message.get("params", {})
        if message.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {text}")
        elif message.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description', details.get('text'))}")

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60.0) -> dict:
        """One protocol command; its result, or PageError."""
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
            waiting = self._waiting[message_id] = queue.Queue()
        message = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        try:
            reply = waiting.get(timeout=timeout)
        except queue.Empty:
            self._waiting.pop(message_id, None)
            raise PageError(f"{method}: no answer from Chromium in {timeout:g} s.") from None
        if "error" in reply:
            raise PageError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    # === The page ===

    def open(self, url: str, timeout: float = 60.0) -> None:
        """Opens ``url`` in a new tab and attaches to it (its console is kept in ``console``)."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, timeout=timeout)["sessionId"]
        self.send("Runtime.enable", session=self.session, timeout=timeout)
        self.send("Page.enable", session=self.session, timeout=timeout)
        self.send("Page.navigate", {"url": url}, session=self.session, timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 60.0):
        """The value of a JavaScript expression in the page (a promise is awaited); PageError if it throws."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True, "timeout": int(timeout * 1000)},
            session=self.session,
            timeout=timeout + 5,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "?")
            raise PageError(text.splitlines()[0])
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, interval: float = 0.25):
        """Polls a JavaScript expression until it is truthy; its value, or PageError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression, timeout=max(1.0, deadline - time.monotonic()))
            if value:
                return value
            if time.monotonic() > deadline:
                raise PageError(f"{expression!r} still false after {timeout:g} s; page console: {self.console[-5:]}")
            time.sleep(interval)

    def version(self) -> str:
        return self.send("Browser.getVersion")["product"]

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (PageError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._stderr is not subprocess.DEVNULL:
            self._stderr.close()
        self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
