"""One exit-status convention for every command: 0 done, 1 some items skipped, 2 bad input or arguments, 3 a bug."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edge_demo.runtime import cli

COMMANDS = [
    "keras_asym.train",
    "keras_asym.draw",
    "keras_asym.prepare",
    "keras_asym.import_official",
    "keras_asym.distill",
    "keras_asym.evaluate",
    "keras_asym.style",
    "keras_asym.demo",
    "keras_asym.generate",
    "keras_asym.align",
    "keras_asym.landmarks",
    "export",
    "edge_demo",
]


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)


# Refusals the tests below expect, each an argument list for a command: run in that command's one probe child
# rather than a child each (a child spends 4 s importing TensorFlow). Paths name nothing that exists.
NOWHERE = Path(tempfile.gettempdir()) / "keras-asym-no-such-folder"
TRAIN_REFUSALS = [
    ("--steps_per_epoch=-1", "steps_per_epoch"),
    ("--batch_size=0", "batch_size"),
    ("--learning_rate=nan", "finite"),
    ("--image_size=32", "too small for instance-norm statistics"),
    ("--image_size=130", "multiple of 4"),
]
OUT_OF_BOUNDS = [
    ("keras_asym.draw", "--size=16384"),
    ("keras_asym.draw", "--threads=0"),
    ("keras_asym.prepare", "--size=16384"),
    ("edge_demo", "--max_frames=-1"),
    ("edge_demo", "--threads=0"),
    ("keras_asym.import_official", "--hed=/no/such/hed.pytorch"),
    ("keras_asym.import_official", "--ngf=0"),
    ("export", "--calibration_count=0"),
    ("export", "--qat_learning_rate=nan"),
    ("keras_asym.demo", "--ngf=100000"),
    ("keras_asym.generate", "--photos=1000000000"),
]


def _refusal_argv(module: str, flag: str) -> list[str]:
    if module == "keras_asym.train":
        return [f"--dataset={NOWHERE / 'nothing'}", f"--output={NOWHERE / 'run'}", flag]
    if module == "export":
        return [f"--model={NOWHERE / 'm.keras'}", f"--output={NOWHERE / 'out'}", flag]
    return [flag]


@functools.cache
def _probe(module: str) -> dict:
    """The command's probe (tests/cli_probe.py), with every refusal above that names it run in the same child."""
    cases = [("keras_asym.train", flag) for flag, _ in TRAIN_REFUSALS] + OUT_OF_BOUNDS
    runs = [_refusal_argv(m, flag) for m, flag in cases if m == module]
    probe = _run("-m", "tests.cli_probe", module, os.environ.get("KERAS_ASYM_FUZZ_EXAMPLES", "60"), json.dumps(runs))
    line = next((line for line in probe.stdout.splitlines() if line.startswith("RESULT ")), None)
    assert probe.returncode == 0 and line, probe.stderr[-3000:]
    result = json.loads(line[len("RESULT ") :])
    result["runs"] = {argv[-1]: outcome for argv, outcome in zip(runs, result["runs"])}
    return result


def test_the_readme_documents_exactly_the_codes_the_runner_uses():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text().split("## Exit status", 1)[1].split("\n## ", 1)[0]
    documented = {int(line.split("|")[1]) for line in readme.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    assert documented == {cli.OK, cli.PARTIAL, cli.BAD_INPUT, cli.INTERNAL, cli.INTERRUPTED}
    assert len(documented) == 5  # distinct


@pytest.mark.parametrize("module", COMMANDS)
def test_every_command_exits_2_on_an_unknown_flag_lists_its_flags_and_parses_any_value_or_refuses_it_in_one_line(module):
    """One child per command (tests/cli_probe.py): generated values for every flag it takes, as hypothesis draws them."""
    result = _probe(module)
    code, _, stderr = result["unknown"]
    assert code == cli.BAD_INPUT and "no_such_flag" in stderr and "Traceback" not in stderr
    assert result["help"] == [cli.OK, result["help"][1]] and sorted(result["help"][1]) == result["flags"]
    assert result["flags"] and not result["failures"], result["failures"]
    assert result["accepted"] and result["refused"]  # the generator reached both sides


@pytest.mark.parametrize("flag, says", TRAIN_REFUSALS)
def test_train_refuses_a_configuration_that_cannot_run_before_reading_anything(flag, says):
    code, _, stderr = _probe("keras_asym.train")["runs"][flag]
    assert code == 2, stderr[-2000:]
    assert says in stderr and "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if "error" in line]) == 1
    assert not NOWHERE.exists()


@pytest.mark.parametrize("module, flag", OUT_OF_BOUNDS)
def test_a_flag_outside_its_bounds_exits_2_on_one_line(module, flag):
    code, _, stderr = _probe(module)["runs"][flag]
    assert code == 2, stderr[-2000:]
    assert flag.split("=")[0].lstrip("-") in stderr and "Traceback" not in stderr


def test_an_unexpected_exception_exits_3_with_its_traceback(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("from edge_demo.runtime import cli\n\ndef main(argv):\n    raise KeyError('bug')\n\ncli.run(main)\n")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "internal error" in result.stderr


def test_one_console_command_lists_and_runs_every_command():
    from pathlib import Path

    from keras_asym.commands import COMMANDS as CONSOLE

    script = Path(sys.executable).with_name("keras-asym")
    assert script.is_file(), "the keras-asym console script is installed by `pip install -e .`"
    listing = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and all(name in listing.stdout for name in CONSOLE)
    unknown = subprocess.run([str(script), "paint"], capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown command 'paint'" in unknown.stderr
    helped = subprocess.run([str(script), "draw", "--helpshort"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--model" in helped.stdout
    bad = subprocess.run([str(script), "export", "--no_such_flag=1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no_such_flag" in bad.stderr
    modules = {module.removesuffix(".__main__") for module, _ in CONSOLE.values()}
    assert modules >= set(COMMANDS), "every python -m command is reachable through keras-asym"


def test_native_start_up_lines_are_noise_and_python_errors_are_not():
    from edge_demo.runtime.native_logs import is_noise

    assert is_noise(b"I0000 00:00:1796217667.156746    2751 port.cc:153] oneDNN custom operations are on.\n")
    assert is_noise(b"W0000 00:00:1796217667.1 12 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n")
    assert is_noise(b"E0000 00:00:1796217681.833180    2757 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
    assert is_noise(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    assert is_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert is_noise(b"INFO: [accelerator_registry.cc:43] DestroyAccelerator: ptr=0x7ff0a0004830, name=GPU WebGPU\n")
    assert is_noise(b"WARNING: Logging before InitGoogle() is written to STDERR\n")
    assert is_noise(b"INFO: Failed to load OpenCL library with dlopen: libOpenCL.so: cannot open shared object file\n")
    assert not is_noise(b"ERROR: [compiled_model.cc:981] Failed to build the model\n")
    assert not is_noise(b"E0000 00:00:1796217681.8 2757 conv_ops.cc:52] Invalid argument: shapes differ\n")
    assert not is_noise(b"Traceback (most recent call last):\n")
    assert not is_noise(b"draw: error: a.png: not an image.\n")
    assert not is_noise(b"UserWarning: I0000 looks like a log line but starts mid-sentence\n")


def test_a_fatal_native_error_reaches_the_user_through_the_filter(tmp_path):
    """The filter outlives a process that aborts: its last lines and faulthandler's traceback still arrive."""
    script = tmp_path / "dies.py"
    script.write_text(
        "import faulthandler, os, sys\n"
        "from edge_demo.runtime import native_logs\n"
        "native_logs.hide()\n"
        "os.write(2, b'I0000 00:00:1796400000.000000 1 port.cc:153] native start-up chatter\\n')\n"
        "print('the last words', file=sys.stderr, flush=True)\n"
        "faulthandler.enable()\n"
        "os.abort()\n"
    )
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env={"PYTHONPATH": root})
    assert result.returncode < 0  # killed by SIGABRT
    assert "the last words" in result.stderr and "Fatal Python error: Aborted" in result.stderr
    assert "native start-up chatter" not in result.stderr


def test_only_the_projects_commands_have_their_native_logs_hidden():
    from edge_demo.runtime.native_logs import launched_as_command, wanted

    assert launched_as_command(["python", "-m", "keras_asym.train", "--output", "r"])
    assert launched_as_command(["python", "-m", "export", "--model", "g.keras"])
    assert launched_as_command(["/venv/bin/python", "/venv/bin/keras-asym", "draw"])
    assert not launched_as_command(["python", "-m", "pytest", "tests"])
    assert not launched_as_command(["python", "my_training_script.py"])
    assert wanted(["python", "-m", "keras_asym.train", "--native_logs"])
    assert not wanted(["python", "-m", "keras_asym.train", "--nonative_logs"])


def test_a_command_hides_tensorflows_start_up_logs_unless_asked(tmp_path):
    args = ("-m", "keras_asym.evaluate", f"--generator={tmp_path / 'none.keras'}", f"--dataset={tmp_path}", f"--output={tmp_path / 'e'}")
    quiet = _run(*args)  # evaluate imports TensorFlow before it reads its inputs
    assert quiet.returncode == 2 and "none.keras" in quiet.stderr, quiet.stderr[-2000:]
    assert "port.cc" not in quiet.stderr and "InitializeLog" not in quiet.stderr, quiet.stderr[-2000:]
    loud = _run(*args, "--native_logs")
    assert loud.returncode == 2 and "I0000" in loud.stderr


def test_one_line_escapes_control_characters_and_bounds_length():
    assert cli.one_line("a.png\nskipped: forged") == "a.png\\nskipped: forged"
    assert cli.one_line("caf\udce9.png") == "caf\\udce9.png"  # a file name byte that is not UTF-8
    long = cli.one_line("head " + "x" * 10_000_000 + " tail")
    assert len(long) == cli.MAX_LINE and long.startswith("head ") and long.endswith(" tail")


def test_output_checks_create_missing_folders_and_refuse_what_cannot_be_written(tmp_path):
    assert cli.output_folder(tmp_path / "a" / "b").is_dir()
    assert cli.output_file(tmp_path / "c" / "video.mp4") == tmp_path / "c" / "video.mp4" and (tmp_path / "c").is_dir()
    (tmp_path / "file").write_text("x")
    for call, path, says in (
        (cli.output_folder, tmp_path / "file", "exists and is not a folder"),
        (cli.output_folder, tmp_path / "file" / "sub", "cannot create this folder"),
        (cli.output_file, tmp_path, "is a folder"),
        (cli.output_file, tmp_path / "file" / "out.mp4", "file: exists and is not a folder"),
    ):
        with pytest.raises(ValueError, match=says):
            call(path)
    assert cli.output_folder(tmp_path / "d" / "e", create=False) == tmp_path / "d" / "e" and not (tmp_path / "d").exists()
    with pytest.raises(ValueError, match="file is not a folder"):
        cli.output_folder(tmp_path / "file" / "x" / "y", create=False)
    assert not list(tmp_path.rglob(".write-test-*"))


@pytest.mark.parametrize(
    "module, args, says",
    [
        ("keras_asym.draw", ["--model", "{model}", "--input", "{dir}", "--output", "{file}"], "file: exists and is not a folder"),
        ("keras_asym.import_official", ["--checkpoint_dir", "{dir}", "--output", "{file}/sub"], "sub: cannot create this folder"),
        ("edge_demo", ["--model", "m.tflite", "--headless", "--output", "{file}/out.mp4"], "file: exists and is not a folder"),
        ("edge_demo", ["--model", "m.tflite", "--headless", "--stats", "{dir}"], ": is a folder; give a file name"),
    ],
)
def test_an_output_that_cannot_be_written_exits_2_before_any_work(tmp_path, module, args, says, generator_file):
    (tmp_path / "file").write_text("x")
    args = [a.format(file=tmp_path / "file", dir=tmp_path, model=generator_file) for a in args]
    result = _run("-m", module, *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and says in result.stderr, result.stderr[-2000:]
