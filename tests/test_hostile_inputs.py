"""The memory bombs of the hostile corpus, each given to the command a user would give it: refused in one line
naming the file, within the command's memory budget (``benchmarks.hostile_inputs`` runs the whole corpus)."""

from __future__ import annotations

import pytest

from benchmarks.common import hostile
from keras_asym.commands import COMMANDS, MEMORY_BUDGET_MB

BOMBS = [  # the rest of the corpus is in benchmarks.hostile_inputs; its kinds of file are tested one by one elsewhere
    ".pth: a key of self-sharing tuples (2**60 items in its repr)",
    ".keras: config.json inflating to 2 GiB",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return hostile.build(tmp_path_factory.mktemp("hostile"), hostile.tflite_models())


def test_every_command_has_a_memory_budget_and_the_corpus_names_real_commands(corpus):
    assert set(MEMORY_BUDGET_MB) == set(COMMANDS)
    assert {case.command for case in corpus} <= set(hostile.MODULES) <= set(COMMANDS)
    assert {case.name for case in corpus} >= set(BOMBS)
    assert all(case.expect in hostile.EXIT for case in corpus)


def test_the_measured_peak_includes_what_the_command_allocates_and_not_what_started_it():
    small = hostile.run_measured("timeit", ["-n1", "-r1", "pass"])
    large = hostile.run_measured("timeit", ["-n1", "-r1", "b = b'x' * (300 << 20)"])
    assert small.exit_code == 0 and large.exit_code == 0
    assert small.peak_mb < 100  # this test's process (TensorFlow loaded) is far larger
    assert 300 < large.peak_mb < 400


def test_a_command_that_does_not_end_is_stopped_and_reported(tmp_path):
    outcome = hostile.run_measured("timeit", ["-n1", "-r1", "import time; time.sleep(60)"], timeout=2)
    assert outcome.timed_out and outcome.seconds < 30
    case = hostile.Case("draw", "sleeps", [])
    assert hostile.verdict(case, outcome, 1000).startswith("did not end")


@pytest.mark.parametrize("name", BOMBS)
def test_a_memory_bomb_is_refused_in_one_line_within_the_commands_budget(corpus, name):
    (case,) = [c for c in corpus if c.name == name and c.command in ("import-official", "draw")]
    outcome = hostile.run_measured(hostile.MODULES[case.command], case.args)
    assert hostile.verdict(case, outcome, MEMORY_BUDGET_MB[case.command]) == "", outcome.stderr[-3000:]


@pytest.mark.parametrize("command", ["camera", "gpu-check"])
@pytest.mark.parametrize("name", [".tflite: a 3 GiB intermediate tensor", ".tflite: its metadata zip inflating to 4 GiB"])
def test_the_tensorflow_free_tools_refuse_a_bombed_model_within_their_budget(corpus, command, name):
    (case,) = [c for c in corpus if c.name == name and c.command == command]
    outcome = hostile.run_measured(hostile.MODULES[case.command], case.args)
    assert hostile.verdict(case, outcome, MEMORY_BUDGET_MB[command]) == "", outcome.stderr[-3000:]
