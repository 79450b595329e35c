"""The browser page as a servable folder, and a server for it: the library under ``build`` and ``serve``.

``build_page(model, output)`` installs the page's two npm packages (``@litertjs/core``, ``@mediapipe/tasks-vision``)
with ``npm ci`` from ``package-lock.json`` into a cache folder, never into the source tree, and copies only the
files the page loads into ``output/vendor/``: the page then needs no CDN and no network. Beside them: the two
MediaPipe face models from the pinned asset cache (``edge_demo.runtime.assets``), ``five_points.json``, the
generator as ``model.tflite``, its export record as ``model.json`` when it has one, and ``model_io.json``: the
names, dtypes and quantization of its tensors as LiteRT reads them (LiteRT.js reports no quantization, and an int8
export's uint8 photo and style need it).

``make_server``/``start_server`` serve such a folder with the MIME types WebAssembly and ES modules need
(``WebAssembly.instantiateStreaming`` refuses a ``.wasm`` that is not ``application/wasm``; a module script must be
JavaScript) and with ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy:
require-corp``: the page is then cross-origin isolated, which ``SharedArrayBuffer`` and so LiteRT.js' threaded WASM
build require (its WebGPU path and single-threaded WASM do not). A page opened from ``file://`` gets neither.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np

from edge_demo.runtime import cli
from edge_demo.runtime.assets import asset_path, cache_dir
from edge_demo.runtime.faces import FIVE_POINT_MODEL
from edge_demo.runtime.generator import TFLiteGenerator, read_sidecar

SOURCE = Path(__file__).resolve().parent
PAGE_FILES = ("index.html", "app.js", "align.js", "pipeline.js")
FACE_MODELS = ("face_detection_short_range.tflite", "face_landmark.tflite")
# What the page loads from each package (node_modules path -> vendor/ path). LiteRT.js picks one of its four
# builds by what the browser supports (relaxed SIMD, JSPI, threads); MediaPipe one of two (SIMD or not).
VENDOR = {
    "@litertjs/core/dist/index.js": "litert/index.js",
    "@litertjs/wasm-utils/dist/index.js": "litert/wasm-utils.js",
    **{
        f"@litertjs/core/wasm/litert_wasm_{build}internal.{ext}": f"litert/wasm/litert_wasm_{build}internal.{ext}"
        for build in ("", "compat_", "jspi_", "threaded_")
        for ext in ("js", "wasm")
    },
    "@mediapipe/tasks-vision/vision_bundle.mjs": "mediapipe/vision_bundle.mjs",
    **{
        f"@mediapipe/tasks-vision/wasm/vision_wasm_{build}internal.{ext}": f"mediapipe/wasm/vision_wasm_{build}internal.{ext}"
        for build in ("", "nosimd_")
        for ext in ("js", "wasm")
    },
}
NPM_SECONDS = 600
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".tflite": "application/octet-stream",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


# === Building ===


def default_npm_dir() -> Path:
    return cache_dir().parent / "web" / "npm"


def install_packages(work: str | Path) -> Path:
    """``npm ci`` of the page's lock file in ``work`` (skipped when the same lock is installed there); its node_modules.

    Raises RuntimeError (one line) when npm is missing or fails, or installs other versions than package.json pins.
    """
    work = Path(work)
    lock = (SOURCE / "package-lock.json").read_bytes()
    modules = work / "node_modules"
    installed = work / "package-lock.json"
    if not (installed.is_file() and installed.read_bytes() == lock and (modules / ".package-lock.json").is_file()):
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found: install Node.js 20 and npm (apt-get install nodejs npm).")
        work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCE / "package.json", work / "package.json")
        (work / "package-lock.json").write_bytes(lock)
        (modules / ".package-lock.json").unlink(missing_ok=True)  # npm writes it last: a failed install is redone
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        try:
            result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=NPM_SECONDS, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"npm ci in {work} took more than {NPM_SECONDS} s (no registry?).") from err
        if result.returncode:
            last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
            raise RuntimeError(f"npm ci in {work} failed (exit {result.returncode}): {cli.one_line(last, 200)}")
    pinned = json.loads((SOURCE / "package.json").read_text())["dependencies"]
    for name, version in pinned.items():
        found = json.loads((modules / name / "package.json").read_text())["version"]
        if found != version:
            raise RuntimeError(f"{modules / name}: version {found}, but package.json pins {version}.")
    return modules


def tensor_contract(generator: TFLiteGenerator) -> dict:
    """photo/style/drawing: name, shape, dtype and (8-bit) scale and zero point, as LiteRT reads the model."""
    interpreter = generator.interpreter
    details = [("photo" if len(d["shape"]) == 4 else "style", d) for d in interpreter.get_input_details()]
    details.append(("drawing", interpreter.get_output_details()[0]))
    contract = {}
    for role, detail in details:
        entry = {"name": detail["name"], "shape": [int(v) for v in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name}
        if detail["dtype"] != np.float32:
            scale, zero = detail["quantization"]
            entry["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
        contract[role] = entry
    return contract


def build_page(model: str | Path, output: str | Path, npm_dir: str | Path | None = None) -> Path:
    """Writes the page for ``model`` into ``output``; returns ``output``.

    Raises ValueError for a model that is not a keras-asym generator or an unusable output folder, RuntimeError
    when npm fails, AssetError when a face model cannot be had.
    """
    model = Path(model)
    generator = TFLiteGenerator(model)  # refuses, in one line, a file that is not a generator LiteRT can run
    output = cli.output_folder(output)
    modules = install_packages(npm_dir or default_npm_dir())
    for name in PAGE_FILES:
        shutil.copyfile(SOURCE / name, output / name)
    for source, target in VENDOR.items():
        (output / "vendor" / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(modules / source, output / "vendor" / target)
    versions = {
        name: json.loads((modules / name / "package.json").read_text())["version"] for name in ("@litertjs/core", "@mediapipe/tasks-vision")
    }
    (output / "vendor" / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")
    (output / "models").mkdir(exist_ok=True)
    for name in FACE_MODELS:
        shutil.copyfile(asset_path(name), output / "models" / name)
    shutil.copyfile(FIVE_POINT_MODEL, output / "five_points.json")
    shutil.copyfile(model, output / "model.tflite")
    record = read_sidecar(model)
    (output / "model.json").unlink(missing_ok=True)
    if record:
        (output / "model.json").write_text(json.dumps(record, indent=1) + "\n")
    (output / "model_io.json").write_text(json.dumps(tensor_contract(generator), indent=1) + "\n")
    return output


# === Serving ===


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the types and headers above, not cached (a rebuilt page is seen at once), quiet."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)


class PageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    verbose = False


def make_server(directory: str | Path, port: int = 0, host: str = "127.0.0.1", verbose: bool = False) -> PageServer:
    """A server for a built page (port 0: any free one); ``serve_forever()`` it, or use ``start_server``."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise ValueError(f"{directory}: no index.html; build the page first (python -m edge_demo.web.build).")
    handler = functools.partial(PageHandler, directory=str(directory))
    try:
        server = PageServer((host, port), handler)
    except OSError as err:
        raise ValueError(f"cannot listen on {host}:{port} ({err.strerror or err}).") from err
    server.verbose = verbose
    return server


def url_of(server: PageServer) -> str:
    """The page's URL; ``localhost`` for a loopback address, where a camera page is a secure context."""
    host, port = server.server_address[:2]
    return f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"


def start_server(directory: str | Path, port: int = 0) -> tuple[PageServer, str]:
    """Serves a built page from a background thread; returns the server (``shutdown()`` it) and the page's URL."""
    server = make_server(directory, port)
    threading.Thread(target=server.serve_forever, daemon=True, name="page-server").start()
    return server, url_of(server)


def serve_forever(directory: str | Path, port: int, host: str) -> None:
    """Serves until interrupted, logging requests."""
    server = make_server(directory, port, host, verbose=True)
    print(f"serving {directory} at {url_of(server)} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
