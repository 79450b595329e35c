"""The code's layers, read from its imports: runtime < library < export < commands.

``docs/design.md`` (Architecture map) draws them; these tests keep the code to the drawing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge_demo", "keras_asym", "export")
RUNTIME, LIBRARY, EXPORT, COMMANDS = range(4)
LAYER_NAMES = ("runtime", "library", "export", "commands")
# Command modules below the package roots (everything at keras_asym's root is a command too).
COMMAND_MODULES = {
    "edge_demo",
    "edge_demo.__main__",
    "edge_demo.app",
    "edge_demo.camera",
    "edge_demo.tracker",
    "export.__main__",
    "keras_asym.pretrained.fit",
}
# The library's subpackages, lowest first: each imports only its own rank and below.
LIBRARY_RANK = {
    "utils": 0,
    "face": 1,
    "data": 2,
    "layers": 2,
    "objective": 3,
    "models": 4,
    "training": 5,
    "convert": 5,
    "evaluation": 6,
    "inference": 6,
    "distillation": 7,
    "pretrained": 7,
}
TENSORFLOW = {"tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "torch", "jax"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, int, bool, str]]:
    """(imported module, line, at the top of the file, source line) for every import in the file."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            top |= {id(inner) for inner in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            candidates = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [c if c in MODULES else node.module for c in candidates]
        else:
            continue
        for target in dict.fromkeys(targets):
            found.append((target, node.lineno, id(node) in top, lines[node.lineno - 1]))
    return found


def _layer(module: str) -> int:
    if module.startswith("edge_demo.runtime"):
        return RUNTIME
    is_package = MODULES.get(module, Path()).name == "__init__.py"  # a subpackage's __init__ is in its subpackage's rank
    if module in COMMAND_MODULES or (module.startswith("keras_asym.") and module.count(".") == 1 and not is_package):
        return COMMANDS
    if module.startswith("export"):
        return EXPORT
    if module.startswith("keras_asym"):
        return LIBRARY
    return COMMANDS  # edge_demo's camera app


def _project(target: str) -> str | None:
    """The project module an import names, or None for a third-party one."""
    while target and target not in MODULES:
        if target.split(".")[0] not in PACKAGES:
            return None
        target = target.rpartition(".")[0]
    return target or None


def _edges():
    for module, path in MODULES.items():
        for target, line, at_top, text in _imports(path):
            yield module, path, target, line, at_top, text


def test_the_layers_are_found_where_the_design_says():
    layers = {_layer(m) for m in MODULES}
    assert layers == {RUNTIME, LIBRARY, EXPORT, COMMANDS}
    subpackages = {m.split(".")[1] for m in MODULES if _layer(m) == LIBRARY and m.count(".") >= 1}
    assert subpackages == set(LIBRARY_RANK), "a library subpackage is missing from LIBRARY_RANK (and from docs/design.md)"


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for module, path, target, line, _, _ in _edges():
        imported = _project(target)
        if imported and _layer(imported) > _layer(module):
            upward.append(
                f"{path.relative_to(ROOT)}:{line} ({LAYER_NAMES[_layer(module)]}) imports {imported} ({LAYER_NAMES[_layer(imported)]})"
            )
    assert not upward, "\n".join(upward)


def test_library_subpackages_import_only_their_own_rank_and_below():
    upward = []
    for module, path, target, line, _, _ in _edges():
        imported = _project(target)
        if not imported or _layer(module) != LIBRARY or _layer(imported) != LIBRARY or imported == "keras_asym" or module == "keras_asym":
            continue
        source, destination = LIBRARY_RANK[module.split(".")[1]], LIBRARY_RANK[imported.split(".")[1]]
        if destination > source:
            upward.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {imported}")
    assert not upward, "\n".join(upward)


def test_there_are_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for module, _, target, _, _, _ in _edges():
        imported = _project(target)
        if imported and imported != module:
            graph[module].add(imported)
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_runtime_and_the_camera_app_never_import_tensorflow_or_the_library():
    found = []
    for module, path, target, line, _, _ in _edges():
        if not (module.startswith("edge_demo")):
            continue
        if target.split(".")[0] in TENSORFLOW or target.split(".")[0] in ("keras_asym", "export"):
            found.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not found, "\n".join(found)


def test_importing_the_whole_camera_app_loads_no_tensorflow():
    runtime = [m for m in MODULES if m.startswith("edge_demo")]
    code = (
        "import importlib, sys\n"
        f"for name in {runtime!r}: importlib.import_module(name)\n"
        f"loaded = sorted(n for n in {sorted(TENSORFLOW)!r} if sys.modules.get(n) is not None)\n"
        "print(loaded); sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def imported_modules(importtime_stderr: str) -> set[str]:
    """The modules a child run with ``python -X importtime`` imported, read from its stderr."""
    return {line.rsplit("|", 1)[-1].strip() for line in importtime_stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize(
    "command",
    [
        "keras_asym.commands",
        "keras_asym.distill",
        "keras_asym.draw",
        "keras_asym.generate",
        "keras_asym.prepare",
        "keras_asym.align",
        "keras_asym.landmarks",
        "keras_asym.train",
    ],
)
def test_commands_that_do_not_need_tensorflow_start_without_it(command):
    """``import keras_asym`` loads everything for a library user; a command loads what it uses, so these start in
    a fraction of TensorFlow's 3.5 s (prepare needs it only for --style_model)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", command, "--helpshort"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = imported_modules(result.stderr)
    assert not loaded & TENSORFLOW, sorted(loaded & TENSORFLOW)
    assert "keras_asym" in loaded  # the package itself was imported, in its command mode


def test_mediapipe_loads_no_tensorflow_in_the_runtime_even_where_tensorflow_is_installed():
    """MediaPipe's Tasks import TensorFlow for a docs decorator when they find it installed (as here): 3.5 s, 0.5 GB
    in align, landmarks, prepare and draw (the camera app's entry point blocks TensorFlow itself)."""
    code = (
        "import sys\n"
        "from edge_demo.runtime import faces\n"
        "faces._mediapipe().tasks.vision.FaceDetector\n"
        f"loaded = sorted(n for n in {sorted(TENSORFLOW)!r} if sys.modules.get(n) is not None)\n"
        "print(loaded); sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependencies_are_imported_at_the_top_of_each_file_or_say_why_not():
    hidden = [
        f"{path.relative_to(ROOT)}:{line}: {text.strip()}"
        for _, path, target, line, at_top, text in _edges()
        if not at_top and "# lazy:" not in text and target != "__future__"
    ]
    assert not hidden, "function-local imports without a '# lazy: <reason>' comment:\n" + "\n".join(hidden)
