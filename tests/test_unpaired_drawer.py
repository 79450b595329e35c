"""The judge of benchmarks/unpaired_drawer.py: a generator that draws each face's known drawing meets the bar,
one that draws another face's, or the same picture in every style, does not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import unpaired_drawer as bench
from keras_asym.data.procedural import write_dataset
from keras_asym.evaluation import metrics
from keras_asym.evaluation.scoring import load_test_pairs
from keras_asym.pretrained.recipe import baselines

SIZE = 64


class LookupDrawer:
    """Draws, for each photo, a fixed drawing per style (``table[style][photo index]``, uint8)."""

    def __init__(self, photos: np.ndarray, table: dict):
        self.keys = {p.tobytes(): i for i, p in enumerate(photos)}
        self.table = table

    def __call__(self, inputs, training=False):
        photos = np.rint((np.asarray(inputs["photo"]) + 1.0) * 127.5).astype(np.uint8)
        styles = np.argmax(np.asarray(inputs["style"]), -1) + 1
        out = [self.table[int(s)][self.keys[p.tobytes()]] for p, s in zip(photos, styles)]
        return np.stack(out)[..., None].astype(np.float32) / 127.5 - 1.0


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    root = tmp_path_factory.mktemp("unpaired")
    write_dataset(root, photos=4, drawings=300, test=8, size=SIZE, seed=5)
    photos, drawings, _ = load_test_pairs(root, SIZE)
    masks = bench.load_part_masks(root, SIZE)
    floors = baselines(drawings)
    part_floors = bench.part_scores({k: np.roll(d, 1, axis=0) for k, d in drawings.items()}, drawings, masks)
    classifier = bench.fit_classifier(root, SIZE)
    return photos, drawings, masks, classifier, floors, part_floors


def test_the_classifier_fitted_on_training_drawings_knows_the_held_out_ones(judge):
    _, drawings, _, classifier, _, _ = judge
    assert min(bench.style_accuracy(classifier, drawings).values()) >= 0.9


def test_drawing_each_faces_known_drawing_meets_the_bar(judge):
    photos, drawings, masks, classifier, floors, part_floors = judge
    scored = bench.score(LookupDrawer(photos, drawings), photos, drawings, masks, classifier, floors, part_floors)
    assert scored["meets_bar"], {k: v for k, v in scored["checks"].items() if not v}


def test_drawing_another_faces_drawing_fails_the_face_and_part_checks(judge):
    photos, drawings, masks, classifier, floors, part_floors = judge
    shifted = {k: np.roll(d, 2, axis=0) for k, d in drawings.items()}  # right style, wrong face
    scored = bench.score(LookupDrawer(photos, shifted), photos, drawings, masks, classifier, floors, part_floors)
    assert not scored["meets_bar"]
    failed = [name for name, ok in scored["checks"].items() if not ok]
    assert any("wrong face" in name for name in failed)


def test_one_picture_for_every_style_fails_the_style_checks(judge):
    photos, drawings, masks, classifier, floors, part_floors = judge
    same = {k: drawings[1] for k in drawings}  # the face right, the style always 1
    scored = bench.score(LookupDrawer(photos, same), photos, drawings, masks, classifier, floors, part_floors)
    assert not scored["meets_bar"]
    assert not scored["checks"]["style2: style recognised >= 90%"] and not scored["checks"]["style3: style recognised >= 90%"]


def test_line_scores_inside_a_mask():
    reference = np.full((32, 32), 255, np.uint8)
    reference[10, 5:25] = 0
    mask = np.zeros((32, 32), np.uint8)
    mask[5:15, :] = 255
    assert metrics.edge_scores_in(reference, reference, mask) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    blank = np.full_like(reference, 255)
    assert metrics.edge_scores_in(blank, reference, mask)["recall"] == 0.0
    moved = np.full_like(reference, 255)
    moved[13, 5:25] = 0  # three pixels off: beyond the 1.5 px tolerance
    assert metrics.edge_scores_in(moved, reference, mask)["f1"] == 0.0
    outside = np.full_like(reference, 255)
    outside[25, :] = 0  # lines outside the mask are not scored
    assert metrics.edge_scores_in(outside, blank, mask) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_a_runs_training_time_adds_up_across_sessions(tmp_path):
    from benchmarks.common.session_time import SessionTime

    assert SessionTime.total(tmp_path) is None
    first = SessionTime(tmp_path, threads=1)
    first.account(60.0)
    first.account(125.0)  # updated as the session goes: the last figure counts
    SessionTime(tmp_path, threads=2).account(30.0)  # a later session, resumed
    record = json.loads((tmp_path / "cpu_seconds.json").read_text())
    assert SessionTime.total(tmp_path) == 155.0
    assert record["sessions"] == [{"threads": 1, "seconds": 125.0}, {"threads": 2, "seconds": 30.0}]
