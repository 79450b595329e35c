"""``pip install ./edge_demo`` gives a camera app that stands on its own: its runtime, its data, nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_edge_wheel_holds_the_app_and_its_runtime_and_runs_from_its_install(tmp_path):
    source = tmp_path / "src" / "edge_demo"  # a copy: setuptools builds in the source folder (build/, egg-info)
    shutil.copytree(ROOT / "edge_demo", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(source),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("keras_asym_edge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {n for n in names if not n.startswith("keras_asym_edge-")}
    tracked = subprocess.run(["git", "ls-files", "edge_demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    expected = {name for name in tracked if name.endswith((".py", ".json"))}
    assert sources == expected  # every module and the five-point model; no keras_asym, export or tests

    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    code = (
        "import sys, edge_demo, edge_demo.app, edge_demo.runtime.faces as faces\n"
        "assert edge_demo.__file__.startswith(sys.argv[1]), edge_demo.__file__\n"
        "assert faces.FIVE_POINT_MODEL.is_file()\n"
        "assert sys.modules.get('tensorflow') is None and 'keras_asym' not in sys.modules\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    check = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    helpshort = subprocess.run(
        [sys.executable, "-m", "edge_demo", "--helpshort"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert helpshort.returncode == 0 and "--model" in helpshort.stdout, helpshort.stderr
