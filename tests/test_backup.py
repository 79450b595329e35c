"""Crash-safe backups: a complete generation survives a crash at any point of a save, damage falls back, never a silent restart."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keras_asym.models.cycle_gan import build_model
from keras_asym.training import backup
from keras_asym.training.backup import BackupError, BackupStore


class Killed(BaseException):
    """Stands for the process dying: nothing after the injection point runs."""


def _model(pool_size=2):
    model = build_model(image_size=32, ngf=4, ndf=4, n_blocks=1, n_layers_d=1, pool_size=pool_size, parts=())
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    return model


def _fill(model, value: float):
    for variable in model.generator.weights:
        variable.assign(np.full(variable.shape, value, variable.dtype))
    model.drawing_pool.images.assign(np.full(model.drawing_pool.images.shape, value, np.float32))
    model.drawing_pool.count.assign(int(value))


def _value(model) -> float:
    return float(model.generator.weights[0].numpy().flat[0])


def _save(store, model, step, value):
    _fill(model, value)
    return store.save(model, {"step": step, "epoch": step // 4, "batch": step % 4})


@pytest.fixture(scope="module")
def models():
    return _model(), _model()


def test_a_saved_generation_restores_weights_pools_and_state(tmp_path, models):
    source, target = models
    store = BackupStore(tmp_path)
    _save(store, source, 3, 3.0)
    _fill(target, 0.0)
    messages = []
    state = BackupStore(tmp_path).restore(target, log=messages.append)
    assert state["step"] == 3 and state["batch"] == 3 and _value(target) == 3.0
    assert int(target.drawing_pool.count.numpy()) == 3 and float(target.drawing_pool.images.numpy().max()) == 3.0
    assert "gen-000000000003" in messages[0] and "step 3" in messages[0]


def test_only_the_newest_generations_are_kept(tmp_path, models):
    store = BackupStore(tmp_path, keep=2)
    for step in (1, 2, 3, 4):
        _save(store, models[0], step, float(step))
    assert [g.name for g in store.generations()] == ["gen-000000000004", "gen-000000000003"]
    with pytest.raises(ValueError, match="at least 2"):
        BackupStore(tmp_path, keep=1)


def _save_killed_at(folder, source, monkeypatch, point: int) -> bool:
    """Saves step 12 over steps 4 and 8, dying at the ``point``-th file-system step; True if it finished."""
    store = BackupStore(folder)
    _save(store, source, 4, 4.0)
    _save(store, source, 8, 8.0)
    calls = {"n": 0}

    def injected(real):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == point:
                raise Killed()
            return real(*args, **kwargs)

        return wrapper

    with monkeypatch.context() as patch:
        patch.setattr(backup, "fsync_path", injected(backup.fsync_path))
        patch.setattr(backup.os, "replace", injected(backup.os.replace))
        patch.setattr(backup.shutil, "rmtree", injected(backup.shutil.rmtree))
        patch.setattr(backup, "file_sha256", injected(backup.file_sha256))
        patch.setattr(backup.np, "savez", injected(backup.np.savez))
        patch.setattr(source, "save_weights", injected(source.save_weights))
        try:
            _save(store, source, 12, 12.0)
        except Killed:
            return False
    return True


def test_a_crash_at_any_point_of_a_save_leaves_a_complete_generation(tmp_path, models, monkeypatch):
    """Kill the save at each of its file-system steps in turn: the next resume gets the old or the new generation, intact."""
    source, target = models
    point = 0
    while True:
        point += 1
        finished = _save_killed_at(tmp_path / str(point), source, monkeypatch, point)
        _fill(target, 0.0)
        state = BackupStore(tmp_path / str(point)).restore(target, log=lambda m: None)
        assert state["step"] in (8, 12), point
        assert _value(target) == float(state["step"]), point  # the weights are those of the generation it names
        if finished:
            assert state["step"] == 12
            break
    assert point > 8  # weights, extra state, checksums, fsyncs, rename, pruning: each was a kill point


def test_a_damaged_newest_generation_falls_back_and_says_so(tmp_path, models):
    source, target = models
    store = BackupStore(tmp_path)
    _save(store, source, 5, 5.0)
    newest = _save(store, source, 6, 6.0)
    weights = newest / backup.WEIGHTS_FILE
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    messages = []
    state = BackupStore(tmp_path).restore(target, log=messages.append)
    assert state["step"] == 5 and _value(target) == 5.0
    assert "skipping gen-000000000006" in messages[0] and "checksum" in messages[0]
    assert (tmp_path / "damaged-gen-000000000006").is_dir()  # kept for inspection, no longer counted as a generation
    assert [g.name for g in BackupStore(tmp_path).generations()] == ["gen-000000000005"]


@pytest.mark.parametrize("damage", ["state_json", "truncated_state", "extra_missing"])
def test_other_damage_also_falls_back(tmp_path, models, damage):
    source, target = models
    store = BackupStore(tmp_path)
    _save(store, source, 5, 5.0)
    newest = _save(store, source, 6, 6.0)
    if damage == "state_json":
        (newest / backup.STATE_FILE).unlink()
    elif damage == "truncated_state":
        (newest / backup.STATE_FILE).write_text((newest / backup.STATE_FILE).read_text()[:40])
    else:
        (newest / backup.EXTRA_FILE).unlink()
    assert BackupStore(tmp_path).restore(target, log=lambda m: None)["step"] == 5


def test_when_no_generation_can_be_restored_it_is_an_error_not_a_fresh_start(tmp_path, models):
    source, target = models
    store = BackupStore(tmp_path)
    for step in (1, 2):
        generation = _save(store, source, step, float(step))
        (generation / backup.WEIGHTS_FILE).write_bytes(b"garbage")
    with pytest.raises(BackupError, match="none of 2 backup generations"):
        BackupStore(tmp_path).restore(target, log=lambda m: None)
    assert BackupStore(tmp_path / "empty").restore(target) is None


def test_a_backup_from_another_pool_size_is_refused(tmp_path, models):
    store = BackupStore(tmp_path)
    _save(store, models[0], 1, 1.0)
    with pytest.raises(BackupError, match="none of 1"):
        store.restore(_model(pool_size=3), log=lambda m: None)


def test_state_json_records_sizes_and_checksums(tmp_path, models):
    generation = _save(BackupStore(tmp_path), models[0], 7, 7.0)
    state = json.loads((generation / backup.STATE_FILE).read_text())
    for name in (backup.WEIGHTS_FILE, backup.EXTRA_FILE):
        assert state["files"][name]["bytes"] == (generation / name).stat().st_size
        assert len(state["files"][name]["sha256"]) == 64


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda s: {**s, "step": s["step"] + 4, "epoch": s["epoch"] + 1}, "checksum does not match"),  # a consistent edit
        (lambda s: {**s, "step": -1}, "checksum does not match"),
        (lambda s: {k: v for k, v in s.items() if k != "checksum"} | {"step": 7}, "does not match epoch"),
        (lambda s: {k: v for k, v in s.items() if k != "checksum"} | {"step": 11, "epoch": 2, "batch": 3}, "not the step of its folder"),
        (lambda s: {k: v for k, v in s.items() if k != "checksum"} | {"epoch": "one"}, "non-negative integers"),
        (lambda s: [s], "no readable"),
    ],
)
def test_an_edited_state_json_is_refused_not_trusted(tmp_path, models, edit, says):
    source, target = models
    store = BackupStore(tmp_path)
    generation = store.save(source, {"step": 6, "epoch": 1, "batch": 2, "steps_per_epoch": 4})
    state_file = generation / backup.STATE_FILE
    state_file.write_text(json.dumps(edit(json.loads(state_file.read_text()))))
    with pytest.raises(BackupError, match=says):
        BackupStore.verify(generation)
    with pytest.raises(BackupError, match="none of 1 backup generations"):
        store.restore(target, log=lambda message: None)


def test_a_backup_written_before_state_json_had_a_checksum_still_restores(tmp_path, models):
    source, target = models
    generation = BackupStore(tmp_path).save(source, {"step": 6, "epoch": 1, "batch": 2, "steps_per_epoch": 4})
    state_file = generation / backup.STATE_FILE
    state_file.write_text(json.dumps({k: v for k, v in json.loads(state_file.read_text()).items() if k != "checksum"}))
    assert BackupStore(tmp_path).restore(target, log=lambda message: None)["step"] == 6


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_KEYS = st.sampled_from(["step", "epoch", "batch", "steps_per_epoch", "files", "checksum", "saved_at", "weights"])


@settings(max_examples=int(os.environ.get("KERAS_ASYM_FUZZ_EXAMPLES", "30")), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    changes=st.dictionaries(_KEYS, _JSON, max_size=3)
    | st.fixed_dictionaries(
        {
            "files": st.dictionaries(
                st.sampled_from([backup.WEIGHTS_FILE, backup.EXTRA_FILE]),
                _JSON | st.dictionaries(st.sampled_from(["bytes", "sha256"]), _JSON),
            )
        }
    ),
    dropped=st.lists(_KEYS, max_size=2),
    drop_checksum=st.booleans(),
    raw=st.none() | st.binary(max_size=64),
)
@example(changes={"files": {backup.WEIGHTS_FILE: None}}, dropped=[], drop_checksum=True, raw=None)  # found at 400 examples
def test_any_damaged_state_json_is_verified_or_refused_with_a_backup_error(tmp_path_factory, models, changes, dropped, drop_checksum, raw):
    """Generated edits of a generation's state.json (fields replaced by any JSON, fields dropped, the checksum
    dropped as in older backups, or the file replaced by bytes): verify returns the state, consistent with its
    folder and files, or raises BackupError naming the generation; nothing else escapes."""
    generation = BackupStore(tmp_path_factory.mktemp("gen")).save(models[0], {"step": 6, "epoch": 1, "batch": 2, "steps_per_epoch": 4})
    state_file = generation / backup.STATE_FILE
    state = json.loads(state_file.read_text())
    state.update(changes)
    for key in dropped + (["checksum"] if drop_checksum else []):
        state.pop(key, None)
    state_file.write_bytes(raw if raw is not None else json.dumps(state).encode())
    try:
        verified = BackupStore.verify(generation)
    except BackupError as err:
        assert str(generation) in str(err)
        return
    assert verified["step"] == 6 and isinstance(verified["files"], dict)
