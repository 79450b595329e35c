"""The wheels hold what they promise: ``pip install .`` the whole project, ``pip install ./edge_demo`` the camera app.

Tests run on the editable install, which finds any package on disk; a wheel holds only what setup.cfg and
edge_demo/pyproject.toml name, so these build the wheels (from copies: setuptools writes build/ and
egg-info into the source folder) and read them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tracked(*paths: str) -> list[str]:
    return subprocess.run(["git", "ls-files", *paths], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def _wheel(source: Path, out: Path) -> tuple[Path, set[str]]:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(source), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = out.glob("*.whl")
    return wheel, {n for n in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in n}


def test_the_project_wheel_holds_every_package_module_and_data_file(tmp_path):
    source = tmp_path / "src"
    for name in (n for n in _tracked() if (ROOT / n).is_file()):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    _, names = _wheel(source, tmp_path / "dist")
    packages = ("keras_asym/", "export/", "edge_demo/")
    expected = {n for n in _tracked(*packages) if n.endswith((".py", ".json", ".keras", ".js", ".html"))}
    assert names == expected


def test_the_edge_wheel_holds_the_app_and_its_runtime_and_runs_from_its_install(tmp_path):
    source = tmp_path / "src" / "edge_demo"  # a copy: setuptools builds in the source folder (build/, egg-info)
    shutil.copytree(ROOT / "edge_demo", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    wheel, sources = _wheel(source, tmp_path)
    expected = {name for name in _tracked("edge_demo") if name.endswith((".py", ".json", ".js", ".html"))}
    assert sources == expected  # every module, the five-point model and the browser page; no keras_asym, export or tests

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
