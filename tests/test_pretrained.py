"""The shipped demo drawer: its bytes match its record, it draws held-out faces past its bar, and its styles differ."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from edge_demo.runtime.hashing import file_sha256
from keras_asym import pretrained
from keras_asym.evaluation.scoring import paired_metrics
from keras_asym.pretrained.recipe import baselines, held_out_faces, meets_bar


def test_the_shipped_drawer_matches_the_sha256_in_its_record():
    assert pretrained.verified() == pretrained.DEMO_DRAWER
    record = pretrained.record()
    assert record["command"].startswith("python -m keras_asym.pretrained.fit")
    assert record["bytes"] == pretrained.DEMO_DRAWER.stat().st_size


def test_a_changed_drawer_is_refused_naming_the_file(tmp_path):
    copy = tmp_path / "demo_drawer.keras"
    shutil.copy(pretrained.DEMO_DRAWER, copy)
    shutil.copy(pretrained.DEMO_DRAWER.with_suffix(".json"), copy.with_suffix(".json"))
    with open(copy, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="demo_drawer.keras: sha256"):
        pretrained.verified(copy)


@pytest.fixture(scope="module")
def drawn():
    """Faces no fit or record used (seed 20000), drawn in the three styles by the shipped drawer."""
    size = pretrained.record()["settings"]["size"]
    drawer = keras.saving.load_model(pretrained.verified(), compile=False)
    photos, drawings = held_out_faces(16, size, seed=20_000)
    paired, outputs = paired_metrics(drawer, photos, drawings)
    return paired, outputs, drawings


def test_the_drawer_draws_unseen_faces_past_its_bar(drawn):
    paired, _, drawings = drawn
    assert meets_bar(paired, baselines(drawings)), json.dumps(paired)


def test_the_three_styles_differ_about_as_much_as_the_known_drawings_do(drawn):
    _, outputs, drawings = drawn
    for a, b in ((1, 2), (1, 3), (2, 3)):
        ours = np.abs(outputs[a].astype(float) - outputs[b]).mean()
        known = np.abs(drawings[a].astype(float) - drawings[b]).mean()
        assert ours > 0.5 * known, (a, b, ours, known)


def test_the_recipe_writes_a_model_and_a_record_that_agree(tmp_path):
    output = tmp_path / "d.keras"
    args = ["--steps=2", "--size=32", "--ngf=2", "--n_blocks=1", "--examples=4", "--held_out=3", f"--output={output}"]
    result = subprocess.run([sys.executable, "-m", "keras_asym.pretrained.fit", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(output.with_suffix(".json").read_text())
    assert record["sha256"] == file_sha256(output) and record["settings"]["steps"] == 2
    assert set(record["held_out"]["paired"]) == {"style1", "style2", "style3"}
    assert "demo drawer: 2/2 steps (100%)" in result.stderr


# === The drawer trained by the paper's unpaired method (benchmarks/unpaired_drawer.py --ship) ===


def test_the_unpaired_drawer_matches_its_record_and_says_how_it_was_made():
    assert pretrained.verified(pretrained.UNPAIRED_DRAWER) == pretrained.UNPAIRED_DRAWER
    record = pretrained.record(pretrained.UNPAIRED_DRAWER)
    assert record["bytes"] == pretrained.UNPAIRED_DRAWER.stat().st_size <= 10_000_000
    assert record["command"].startswith("python -m benchmarks.unpaired_drawer") and "keras_asym.train" in record["train_command"]
    assert "unpaired" in record["what"] and record["steps"] == record["settings"]["epochs"] * record["settings"]["steps"]


@pytest.fixture(scope="module")
def unpaired_drawn():
    """Faces neither the training nor the benchmark saw (seed 20000), drawn by the shipped unpaired drawer."""
    record = pretrained.record(pretrained.UNPAIRED_DRAWER)
    drawer = keras.saving.load_model(pretrained.verified(pretrained.UNPAIRED_DRAWER), compile=False)
    photos, drawings = held_out_faces(24, record["settings"]["size"], seed=20_000)
    paired, outputs = paired_metrics(drawer, photos, drawings)
    return record, paired, outputs, drawings


def test_the_unpaired_drawer_draws_unseen_faces_closer_to_their_own_drawing_than_another_faces(unpaired_drawn):
    _, paired, _, drawings = unpaired_drawn
    floors = baselines(drawings)
    for style, row in paired.items():
        wrong = floors[style]["wrong_face"]
        assert row["ssim"] > wrong["ssim"] and row["edge_f1"] > wrong["edge_f1"] and row["chamfer_px"] < wrong["chamfer_px"], (
            style,
            row,
            wrong,
        )


def test_the_unpaired_drawers_styles_are_told_apart_on_unseen_faces_as_its_record_says(unpaired_drawn):
    """An independent judge fitted on fresh procedural drawings recognises every style the record says was
    recognised (>= 90 %) at least as often on unseen faces, and the others above chance."""
    from benchmarks.common import style_judge  # flag-free: importing a benchmark command would define its flags here

    record, _, outputs, _ = unpaired_drawn
    _, fresh = held_out_faces(200, record["settings"]["size"], seed=30_000)
    judge = style_judge.fit(np.concatenate([fresh[k] for k in (1, 2, 3)]), np.repeat([0, 1, 2], 200))
    accuracy = style_judge.accuracy(judge, outputs)
    for style, recorded in record["held_out"]["style_accuracy"].items():
        assert accuracy[style] >= (0.9 if recorded >= 0.9 else 0.4), (style, accuracy[style], recorded)
