"""A corpus of hostile and careless inputs for the commands that read users' files, and a runner that measures
what each costs: exit status, last line on stderr, peak memory, time. Flag-free: ``benchmarks/hostile_inputs.py``
runs all of it, ``tests/test_hostile_inputs.py`` the memory bombs.

Each case names the command it is given to and what the README's exit-status table promises for it: ``refused``
(exit 2, one line naming the input, no traceback), ``skipped`` (exit 1: the bad items reported, the rest done) or
``accepted`` (exit 0). Every case must also stay within its command's memory budget
(``keras_asym.commands.MEMORY_BUDGET_MB``) and end within ``TIMEOUT_S``. Every file is generated here.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

DEMO_DRAWER = Path(__file__).resolve().parents[2] / "keras_asym" / "pretrained" / "demo_drawer.keras"
TIMEOUT_S = 300
MODULES = {  # command name (keras_asym.commands.COMMANDS) -> the module python -m runs
    "draw": "keras_asym.draw",
    "camera": "edge_demo",
    "import-official": "keras_asym.import_official",
    "align": "keras_asym.align",
    "landmarks": "keras_asym.landmarks",
    "train": "keras_asym.train",
    "export": "export",
    "distill": "keras_asym.distill",
    "evaluate": "keras_asym.evaluate",
    "gpu-check": "edge_demo.runtime.gpu_check",
    "prepare": "keras_asym.prepare",
    "style": "keras_asym.style",
    "generate": "keras_asym.generate",
    "demo": "keras_asym.demo",
}
EXIT = {"accepted": (0,), "skipped": (1,), "refused": (2,)}


@dataclasses.dataclass
class Case:
    command: str
    name: str
    args: list[str]
    expect: str = "refused"
    names: str = ""  # what the refusal's line must name (the file, or the flag)


@dataclasses.dataclass
class Outcome:
    exit_code: int
    seconds: float
    peak_mb: float
    stderr: str
    timed_out: bool

    def last_line(self) -> str:
        """The refusal's line: the last one on stderr, or the one before absl's closing hint."""
        lines = [line for line in self.stderr.splitlines() if line.strip() and not line.startswith("Pass --helpshort")]
        return lines[-1] if lines else ""


# Linux carries the peak memory of the process that exec'd into the new program's own peak (``maxrss`` is kept
# across exec), so a command started straight from this (large) process would report at least this process's size.
# A small launcher starts it instead and reports the command's peak (with its waited-for children) back in a file.
_LAUNCHER = """
import os, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def run_measured(module: str, args: list[str], timeout: float = TIMEOUT_S) -> Outcome:
    """``python -m module args...``, measured: its peak resident memory is the largest of the process and of every
    child it waited for (``wait4``'s rusage), so a model probed in a child process counts."""
    with tempfile.TemporaryDirectory() as work:
        report, err_path = Path(work) / "peak", Path(work) / "stderr"
        with err_path.open("wb") as err:
            start = time.perf_counter()
            launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(report), sys.executable, "-m", module, *args]
            process = subprocess.Popen(launcher, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            try:
                process.wait(timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                timed_out = True
            seconds = time.perf_counter() - start
        peak_kb = int(report.read_text()) if report.is_file() else 0
        text = err_path.read_bytes().decode("utf-8", "replace")
    return Outcome(process.returncode, seconds, peak_kb / 1024, text, timed_out)


def verdict(case: Case, outcome: Outcome, budget_mb: float) -> str:
    """'' when the outcome is what the case promises, within the budget; else what went wrong, in a few words."""
    if outcome.timed_out:
        return f"did not end in {TIMEOUT_S} s"
    if outcome.exit_code < 0:
        return f"killed by signal {-outcome.exit_code}"
    if "Traceback (most recent call last)" in outcome.stderr or outcome.exit_code == 3:
        return f"traceback (exit {outcome.exit_code})"
    if outcome.peak_mb > budget_mb:
        return f"{outcome.peak_mb:.0f} MB, over the {budget_mb:.0f} MB budget"
    if outcome.exit_code not in EXIT[case.expect]:
        return f"exit {outcome.exit_code}, expected {case.expect}: {outcome.last_line()[:160]}"
    if case.expect == "refused" and case.names and case.names not in outcome.last_line():
        return f"the line does not name {case.names}: {outcome.last_line()[:160]}"
    return ""


# --- zip and pickle writers -----------------------------------------------------------------------------------


def _deflate_bomb(size: int) -> tuple[bytes, int]:
    """(raw deflate stream of ``size`` spaces, a multiple of 16 MiB, and its crc32). After a full flush a deflate
    stream starts afresh, so one compressed chunk repeated is the stream of the chunk repeated: no 4 GiB is compressed."""
    chunk = b" " * (16 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packer.compress(chunk)
    packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return block * (size // len(chunk)) + packer.flush(), crc


def _zip(entries: dict[str, bytes], bomb: tuple[str, int] | None = None, encrypted: bool = False) -> bytes:
    """A zip of ``entries`` (stored), plus an entry named ``bomb[0]`` inflating to ``bomb[1]`` spaces; with
    ``encrypted`` every entry is flagged as encrypted (no reader can open it without a password)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    if bomb:
        stream, crc = _deflate_bomb(bomb[1])
        data = _append_deflated(data, bomb[0], stream, crc, bomb[1])
    if encrypted:
        data = data.replace(b"PK\x03\x04\x14\x00\x00\x00", b"PK\x03\x04\x14\x00\x01\x00")
        data = data.replace(b"PK\x01\x02\x14\x03\x14\x00\x00\x00", b"PK\x01\x02\x14\x03\x14\x00\x01\x00")
    return data


def _append_deflated(archive: bytes, name: str, stream: bytes, crc: int, size: int) -> bytes:
    """``archive`` with a member holding the raw deflate ``stream`` added before its central directory."""
    end = archive.rfind(b"PK\x05\x06")
    _, _, _, count, _, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", archive[end : end + 22])
    encoded = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(stream), size, len(encoded), 0) + encoded + stream
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(stream), size, len(encoded), 0, 0, 0, 0, 0, cd_offset)
    body = archive[:cd_offset] + local
    central = archive[cd_offset : cd_offset + cd_size] + entry + encoded
    return body + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count + 1, count + 1, len(central), len(body), 0)


def _self_sharing_key(depth: int) -> bytes:
    """A pickled dict whose one key is a tuple holding itself twice per level: 2**depth items in its repr, 1 KB."""
    get = lambda k: b"j" + struct.pack("<L", k)  # noqa: E731  LONG_BINGET
    put = lambda k: b"r" + struct.pack("<L", k)  # noqa: E731  LONG_BINPUT
    levels = b"".join(get(k) + get(k) + b"\x86" + put(k + 1) + b"0" for k in range(depth))  # TUPLE2, POP
    # written by hand: pickle.dumps would hash the key, which visits 2**depth tuples
    return b"\x80\x02}" + b")" + put(0) + b"0" + levels + get(depth) + b"K\x01s."


def _pth_zip(pickled: bytes, twice: bool = False) -> bytes:
    entries = {"archive/data.pkl": pickled, "archive/version": b"3\n"}
    data = _zip(entries)
    if twice:  # the pickle entry a second time, under the same name
        stream = zlib.compress(pickle.dumps({}, protocol=2))[2:-4]
        data = _append_deflated(
            data, "archive/data.pkl", stream, zlib.crc32(pickle.dumps({}, protocol=2)), len(pickle.dumps({}, protocol=2))
        )
    return data


def _pth_legacy(obj_pickle: bytes) -> bytes:
    head = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}]
    return b"".join(pickle.dumps(v, protocol=2) for v in head) + obj_pickle


def _keras_archive(config: bytes | None = None, changes: dict | None = None, bomb: int = 0) -> bytes:
    with zipfile.ZipFile(DEMO_DRAWER) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    if changes:
        document = json.loads(parts["config.json"])
        document["config"].update(changes)
        parts["config.json"] = json.dumps(document).encode()
    if config is not None:
        parts["config.json"] = config
    if bomb:
        del parts["config.json"]
        return _zip(parts, bomb=("config.json", bomb))
    return _zip(parts)


def _png(height: int, width: int, seed: int = 0) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def _png_declaring(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header declares ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))

    header = struct.pack(">2L5B", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1024))) + chunk(b"IEND", b"")


def tflite_models() -> dict[str, bytes]:
    """Small drawing models (photo, style -> drawing at 64²) for the ``.tflite`` cases: an honest one, one declaring a
    3 GiB intermediate and one with an int32 output. Needs TensorFlow's converter."""
    import tensorflow as tf

    size = 64

    def convert(body, dtype=tf.float32) -> bytes:
        spec = [tf.TensorSpec((1, size, size, 3), tf.float32, name="photo"), tf.TensorSpec((1, 3), tf.float32, name="style")]
        function = tf.function(lambda photo, style: tf.cast(body(photo, style), dtype), input_signature=spec)
        return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function).convert()

    def honest(photo, style):
        return tf.tanh(tf.reduce_mean(photo, -1, keepdims=True) + tf.reduce_sum(style))

    def giant(photo, style):  # a (1, 16384, 16384, 3) float intermediate: 3 GiB
        tiled = tf.tile(photo, [1, 256, 256, 1])
        return tf.reduce_mean(tiled[:, :size, :size, :] + tiled[:, -size:, -size:, :], -1, keepdims=True) + tf.reduce_sum(style)

    return {"honest": convert(honest), "giant": convert(giant), "int32": convert(lambda p, s: honest(p, s) * 1e9, tf.int32)}


def _videos(root: Path) -> dict[str, Path]:
    import cv2

    folder = root / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "clip.avi"
    writer = cv2.VideoWriter(str(good), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 96))
    for k in range(15):
        writer.write(np.random.default_rng(k).integers(0, 256, (96, 96, 3), dtype=np.uint8))
    writer.release()
    data = bytearray(good.read_bytes())
    data[int(len(data) * 0.35) : int(len(data) * 0.65)] = bytes(int(len(data) * 0.65) - int(len(data) * 0.35))  # frames and their headers
    (folder / "corrupt_middle.avi").write_bytes(bytes(data))
    (folder / "empty.avi").write_bytes(b"")
    (folder / "text.avi").write_bytes(b"not a video\n" * 100)
    return {k: folder / f"{k}.avi" for k in ("corrupt_middle", "empty", "text")}


# --- the corpus -----------------------------------------------------------------------------------------------


def build(root: Path, tflite: dict[str, bytes] | None = None) -> list[Case]:
    """Writes the corpus under ``root``, returns its cases. Without ``tflite`` (from ``tflite_models``), the
    ``.tflite`` and video cases are left out."""
    root.mkdir(parents=True, exist_ok=True)
    out = root / "out"
    cases: list[Case] = []

    def write(relative: str, data: bytes) -> Path:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    # .pth checkpoints: import-official reads <epoch>_net_G_A.pth from --checkpoint_dir
    pth = {
        "a key of self-sharing tuples (2**60 items in its repr)": _pth_zip(_self_sharing_key(60)),
        "legacy format, a key of self-sharing tuples": _pth_legacy(_self_sharing_key(60)),
        "legacy format, 100 MB of MARK opcodes": _pth_legacy(b"\x80\x02" + b"(" * 100_000_000 + b"."),
        "tuples nested 100,000 deep": _pth_zip(b"\x80\x02)" + b"\x85" * 100_000 + b"."),
        "lists nested 100,000 deep": _pth_zip(b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b"."),
        "a zip holding its pickle twice": _pth_zip(pickle.dumps({}, protocol=2), twice=True),
        "a pickle calling os.system": _pth_zip(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R."),
        "an encrypted zip": _zip({"archive/data.pkl": pickle.dumps({}, protocol=2)}, encrypted=True),
        "a zip inflating to 2 GiB": _zip({}, bomb=("archive/data.pkl", 2 << 30)),
        "empty file": b"",
        "random bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    }
    for k, (name, data) in enumerate(pth.items()):
        path = write(f"pth/{k}/latest_net_G_A.pth", data)
        cases.append(
            Case("import-official", f".pth: {name}", [f"--checkpoint_dir={path.parent}", f"--output={out}/pth{k}"], names=str(path))
        )

    # .keras generators, given to draw
    photos = root / "one_photo"
    write("one_photo/face.png", _png(64, 64))
    lambda_layer = {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l", "function": "print"}}
    keras = {
        "config.json inflating to 2 GiB": _keras_archive(bomb=2 << 30),
        "a generator config with ngf 1500": _keras_archive(changes={"ngf": 1500}),
        "config.json that is not JSON": _keras_archive(config=b"{" * 10_000),
        "config.json nested 100,000 deep": _keras_archive(config=b"[" * 100_000 + b"]" * 100_000),
        "a Sequential with a Lambda layer": _keras_archive(
            config=json.dumps({"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [lambda_layer]}}).encode()
        ),
        "an encrypted archive": _zip({"config.json": b"{}", "metadata.json": b"{}"}, encrypted=True),
        "truncated archive": DEMO_DRAWER.read_bytes()[:5000],
        "random bytes": np.random.default_rng(1).integers(0, 256, 8192, dtype=np.uint8).tobytes(),
    }
    for k, (name, data) in enumerate(keras.items()):
        path = write(f"keras/{k}.keras", data)
        cases.append(
            Case(
                "draw",
                f".keras: {name}",
                [f"--model={path}", f"--input={photos}", f"--output={out}/keras{k}", "--noalign"],
                names=str(path),
            )
        )
    for k, name in enumerate(list(keras)[:2]):  # the two bombs, through the other commands that read a generator
        path = root / "keras" / f"{k}.keras"
        cases += [
            Case("export", f".keras: {name}", [f"--model={path}", f"--output={out}/export{k}"], names=str(path)),
            Case("distill", f".keras teacher: {name}", [f"--teacher={path}", f"--output={out}/distill{k}"], names=str(path)),
            Case(
                "evaluate",
                f".keras: {name}",
                [f"--generator={path}", f"--dataset={photos}", f"--output={out}/evaluate{k}"],
                names=str(path),
            ),
            Case(
                "prepare",
                f".keras style model: {name}",
                [f"--photos={photos}", f"--drawings={photos}", f"--output={out}/prep{k}", f"--style_model={path}"],
                names=str(path),
            ),
            Case(
                "style",
                f".keras classifier: {name}",
                [f"--predict={photos}", f"--output={path}", f"--features_dir={out}/feat{k}"],
                names=str(path),
            ),
        ]

    # images: draw, align and landmarks skip and report every bad one and do the rest (exit 1)
    images = root / "images"
    write("images/good.png", _png(64, 64, 1))
    write("images/bomb_60000x60000.png", _png_declaring(60000, 60000))
    write("images/tiny_5x5.png", _png(5, 5))
    write("images/sliver_1000x6.png", _png(6, 1000))
    write("images/empty.jpg", b"")
    write("images/text.jpg", b"not an image\n" * 10)
    write("images/truncated.png", _png(64, 64, 2)[:200])
    write("images/name\nwith a newline.png", _png(16, 16, 3))
    with open(os.fsencode(images) + b"/latin1_\xe9.png", "wb") as handle:  # a name that is not UTF-8
        handle.write(_png(16, 16, 4))
    cases.append(
        Case(
            "draw",
            "a folder of bad images beside good ones",
            [f"--model={DEMO_DRAWER}", f"--input={images}", f"--output={out}/images", "--noalign"],
            "skipped",
        )
    )
    cases.append(Case("align", "the same folder", [f"--input={images}", f"--output={out}/align"], "skipped"))
    cases.append(Case("landmarks", "the same folder", [f"--input={images}", f"--output={out}/landmarks.json"], "skipped"))
    cases.append(
        Case(
            "prepare",
            "the same folder as photos and drawings",
            [f"--photos={images}", f"--drawings={images}", f"--output={out}/prepare"],
            "skipped",
        )
    )
    cases.append(
        Case(
            "style",
            "the same folder as drawings (no style folders)",
            [f"--drawings={images}", f"--output={out}/style.keras"],
            names=str(images),
        )
    )
    bomb = images / "bomb_60000x60000.png"
    cases.append(
        Case(
            "draw",
            "one image declaring 60000x60000 pixels",
            [f"--model={DEMO_DRAWER}", f"--input={bomb}", f"--output={out}/bomb", "--noalign"],
            names=str(bomb),
        )
    )

    # .tflite models given to draw and the camera demo, and damaged videos
    if tflite:
        honest = write("tflite/honest.tflite", tflite["honest"])
        models = {
            "a 3 GiB intermediate tensor": tflite["giant"],
            "an int32 output": tflite["int32"],
            "its metadata zip inflating to 4 GiB": tflite["honest"] + _zip({}, bomb=("keras_asym.json", (4 << 30) - (16 << 20))),
            "its metadata zip encrypted": tflite["honest"] + _zip({"keras_asym.json": b"{}"}, encrypted=True),
            "truncated": tflite["honest"][: len(tflite["honest"]) // 2],
            "random bytes": b"TFL3" + np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        }
        for k, (name, data) in enumerate(models.items()):
            path = write(f"tflite/{k}.tflite", data)
            cases.append(
                Case(
                    "draw",
                    f".tflite: {name}",
                    [f"--model={path}", f"--input={photos}", f"--output={out}/tflite{k}", "--noalign"],
                    names=str(path),
                )
            )
            cases.append(
                Case("camera", f".tflite: {name}", [f"--model={path}", f"--source={photos / 'face.png'}", "--headless"], names=str(path))
            )
            expect = "accepted" if name == "an int32 output" else "refused"  # gpu-check takes any model, not only generators
            cases.append(Case("gpu-check", f".tflite: {name}", [str(path)], expect, str(path)))
        for name, video in _videos(root).items():
            expect = "skipped" if name == "corrupt_middle" else "refused"
            cases.append(
                Case(
                    "camera",
                    f"video: {name}",
                    [f"--model={honest}", f"--source={video}", "--headless", f"--output={out}/{name}.mp4"],
                    expect,
                    str(video),
                )
            )

    # flags and paths a careless user gives
    face = photos / "face.png"
    cases += [
        Case(
            "draw",
            "--output is an existing file",
            [f"--model={DEMO_DRAWER}", f"--input={photos}", f"--output={face}", "--noalign"],
            names=str(face),
        ),
        Case(
            "draw",
            "--output in an unwritable place",
            [f"--model={DEMO_DRAWER}", f"--input={photos}", "--output=/proc/no/such", "--noalign"],
            names="/proc/no/such",
        ),
        Case(
            "draw",
            "--size 16384",
            [f"--model={DEMO_DRAWER}", f"--input={photos}", f"--output={out}/s", "--size=16384", "--noalign"],
            names="size",
        ),
        Case("train", "--steps_per_epoch -1", [f"--output={out}/train", "--steps_per_epoch=-1"], names="steps_per_epoch"),
        Case("train", "--resume of a folder that holds no run", [f"--output={photos}", "--resume"], names=str(photos)),
        Case("generate", "--photos 1000000000", [f"--output={out}/generate", "--photos=1000000000"], names="photos"),
        Case("demo", "--ngf 100000", [f"--output={out}/demo", "--ngf=100000"], names="ngf"),
        Case(
            "import-official",
            "--hed naming a missing file",
            [f"--checkpoint_dir={root / 'pth' / '0'}", f"--output={out}/h", "--hed=/no/such.pytorch"],
            names="/no/such.pytorch",
        ),
    ]
    return cases
