"""The `train` command: a real run, step-exact resume after kill -9, NaN stop, output checks, replicas and workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_asym.models.cycle_gan import build_model
from keras_asym.training import callbacks, loop
from keras_asym.training.config import TrainConfig
from tests.multi_worker_step import global_batch
from tests.test_pipeline import _write_dataset

SMALL = [
    "--image_size=64",
    "--load_size=72",
    "--n_layers_d=2",
    "--ngf=4",
    "--ndf=4",
    "--n_blocks=1",
    "--pool_size=4",
    "--nojit_compile",
    "--verbose=0",
]


def _train(*args, wait=True):
    cmd = [sys.executable, "-m", "keras_asym.train", *map(str, args)]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def dataset(tmp_path):
    return _write_dataset(tmp_path / "data", n_photos=4, n_drawings=3)


# One uninterrupted run, shared by the tests of this module that read a finished run (a copy where they change it):
# 3 epochs of 4 steps (2 at the initial rate, 1 of decay), backups every 2 steps, a generator export every epoch.
RUN_ARGS = ["--niter=2", "--niter_decay=1", "--backup_every=2", "--steps_per_epoch=4", "--pool_size=3", "--export_every=1", *SMALL]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(the dataset, the run folder, the command's result) of one run through the ``train`` command, never killed."""
    root = tmp_path_factory.mktemp("finished")
    data = _write_dataset(root / "data", n_photos=4, n_drawings=3)
    result = _train("--dataset", data, "--output", root / "run", *RUN_ARGS)
    return data, root / "run", result


def test_a_run_writes_checkpoints_exports_and_logs(tmp_path, finished):
    dataset, shared, result = finished
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["finished"]
    run = tmp_path / "run"
    shutil.copytree(shared, run)  # its backups are damaged below
    config = json.loads((run / "config.json").read_text())
    assert config["ngf"] == 4 and sorted(config["parts"]) == ["eyes", "lips", "nose"]
    metas = [json.loads(p.read_text()) for p in sorted((run / "checkpoints").glob("epoch-*.json"))]
    assert [m["epoch"] for m in metas] == [1, 2, 3] and [m["progress"] for m in metas] == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert [m["iterations"] for m in metas] == [4, 8, 12]
    assert all(np.isfinite(m["logs"]["generator"]) for m in metas)
    assert all((run / "generators" / f"generator-epoch-000{e}.keras").is_file() for e in (1, 2, 3))
    generator = keras.saving.load_model(run / "generators" / "generator.keras")
    assert generator({"photo": np.zeros((1, 64, 64, 3), np.float32), "style": np.eye(3, dtype=np.float32)[:1]}).shape == (1, 64, 64, 1)
    events = list((run / "logs").rglob("events.out.tfevents.*"))
    assert any("images" in str(e) for e in events) and any("train" in str(e) for e in events)
    assert not list(run.rglob("*.partial*"))
    again = _train("--dataset", dataset, "--output", run, *SMALL)
    assert again.returncode == 2 and "--resume" in again.stderr
    for generation in (run / "backup").glob("gen-*"):
        (generation / "weights.weights.h5").write_bytes(b"damaged")
    damaged = _train("--output", run, "--resume", "--verbose=0")
    assert damaged.returncode == 2 and "none of 2 backup generations can be restored" in damaged.stderr
    assert "Traceback" not in damaged.stderr


def _h5_arrays(path) -> dict[str, np.ndarray]:
    import h5py

    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def _newest_step(run) -> int:
    steps = [int(p.name[4:]) for p in (run / "backup").glob("gen-*") if (p / "state.json").is_file()]
    return max(steps, default=-1)


def kill_rng(test: str) -> np.random.Generator:
    """The kill points' generator: seeded from KERAS_ASYM_KILL_SEED, else a fresh seed, printed so a failure replays."""
    seed = int(os.environ.get("KERAS_ASYM_KILL_SEED", time.time_ns() % 2**32))
    print(f"{test}: kill points from KERAS_ASYM_KILL_SEED={seed}")
    return np.random.default_rng(seed)


def _kill_when(process, run, step: int, extra_delay: float) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and _newest_step(run) < step:
        time.sleep(0.02)
    time.sleep(extra_delay)
    assert process.poll() is None, process.stderr.read()[-3000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_a_run_killed_twice_resumes_step_exactly_to_the_uninterrupted_weights(tmp_path, finished):
    """The oracle is an uninterrupted run: same steps, same schedule values, same weights (CPU ops are deterministic)."""
    dataset, whole, reference = finished
    assert reference.returncode == 0, reference.stderr[-3000:]
    killed = tmp_path / "killed"
    process = _train("--dataset", dataset, "--output", killed, *RUN_ARGS, wait=False)
    rng = kill_rng("train")
    _kill_when(process, killed, 3, rng.uniform(0.0, 0.4))  # inside epoch 1 or 2, between or at backups
    first = _newest_step(killed)
    resumed = _train("--output", killed, "--resume", "--verbose=0", wait=False)
    _kill_when(resumed, killed, first + 3, rng.uniform(0.0, 0.4))
    final = _train("--output", killed, "--resume", "--verbose=0")
    assert final.returncode == 0, final.stderr[-3000:]
    assert "backup: resuming from" in final.stderr and "step 0" not in final.stderr

    def summary(run):
        metas = {int(p.stem[6:10]): json.loads(p.read_text()) for p in (run / "checkpoints").glob("epoch-*.json")}
        return [(e, m["iterations"], m["progress"]) for e, m in sorted(metas.items())]

    assert summary(killed) == summary(whole) == [(1, 4, 0.0), (2, 8, pytest.approx(1 / 3)), (3, 12, pytest.approx(2 / 3))]
    a, b = (_h5_arrays(run / "backup" / "gen-000000000012" / "weights.weights.h5") for run in (whole, killed))
    assert sorted(a) == sorted(b)
    worst = max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)
    assert worst <= 1e-6, worst
    pools = [np.load(run / "backup" / "gen-000000000012" / "extra.npz") for run in (whole, killed)]
    for key in pools[0].files:
        np.testing.assert_allclose(pools[0][key], pools[1][key], atol=1e-6)
    for run in (whole, killed):  # every epoch's row in the history, also across the resumes
        epochs = [int(line.split(",")[0]) for line in (run / "history.csv").read_text().splitlines()[1:]]
        assert sorted(set(epochs)) == [0, 1, 2], epochs
    state = json.loads((killed / "backup" / "gen-000000000012" / "state.json").read_text())
    assert state["position"] == 12 and state["epoch"] == 3 and state["batch"] == 0


def test_unwritable_or_full_output_fails_before_training(tmp_path, dataset, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _train("--dataset", dataset, "--output", blocker / "run", *SMALL)
    assert result.returncode == 2 and "cannot write the run folder" in result.stderr
    config = TrainConfig(dataset=str(dataset), output=str(tmp_path / "full"))
    monkeypatch.setattr(loop.shutil, "disk_usage", lambda path: type("U", (), {"free": 1000})())
    with pytest.raises(OSError, match="GB free"):
        loop.prepare_output(config, resume=False)


def test_non_finite_loss_stops_before_backing_up(tmp_path):
    from keras_asym.training.backup import BackupStore, StepBackup

    model = build_model(image_size=64, ngf=4, ndf=4, n_blocks=1, n_layers_d=2, pool_size=0)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    batch = {
        "photo": np.full((1, 64, 64, 3), np.nan, np.float32),
        "drawing": np.zeros((1, 64, 64, 1), np.float32),
        "style": np.eye(3, dtype=np.float32)[:1],
        "photo_masks": {p: np.ones((1, 64, 64, 1), np.float32) for p in model.parts},
        "drawing_masks": {p: np.ones((1, 64, 64, 1), np.float32) for p in model.parts},
    }
    store = BackupStore(tmp_path / "backup")
    stack = [callbacks.StopOnNonFiniteLoss(), StepBackup(store, steps_per_epoch=2, every=1)]
    with pytest.raises(callbacks.NonFiniteLossError, match="gan_drawing"):
        model.fit(tf.data.Dataset.from_tensors(batch).repeat(2), epochs=1, callbacks=stack, verbose=0)
    assert store.generations() == []


def _two_worker_envs() -> list[dict]:
    """Environments of a two-worker TF_CONFIG cluster on free localhost ports."""
    import socket

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    return [{**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in range(2)]


def test_two_workers_on_localhost_train_and_agree(tmp_path, dataset):
    processes = []
    for index, env in enumerate(_two_worker_envs()):
        cmd = [
            sys.executable,
            "-m",
            "keras_asym.train",
            f"--dataset={dataset}",
            f"--output={tmp_path / f'worker{index}'}",
            "--strategy=multi_worker",
            "--niter=1",
            "--niter_decay=0",
            "--steps_per_epoch=2",
            "--batch_size=2",
            "--image_every=0",
            "--export_every=0",
            *SMALL,
        ]
        processes.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], results[0][1][-3000:]
    generators = [keras.saving.load_model(tmp_path / f"worker{i}" / "generators" / "generator.keras") for i in range(2)]
    for a, b in zip(generators[0].get_weights(), generators[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    metas = [json.loads((tmp_path / f"worker{i}" / "checkpoints" / "epoch-0001.json").read_text()) for i in range(2)]
    assert [m["iterations"] for m in metas] == [2, 2]


def test_two_replicas_and_two_workers_on_their_own_shards_each_match_one_device_on_the_global_batch(tmp_path):
    """Gradients summed over 2 replicas of batch 1 equal the single-device gradient of batch 2, and so do those of two
    workers (MultiWorkerMirroredStrategy) that each see only their own sample: after one step all hold what one device
    computes on both samples.

    SGD makes the update proportional to the gradient. (Adam would normalise
    the float noise of biases that feed an instance norm, whose true gradient
    is zero, into +-lr steps that differ between any two summation orders.)
    """
    from tests.multi_worker_step import trained

    processes = []
    for index, env in enumerate(_two_worker_envs()):  # the workers run while this process trains its own
        cmd = [sys.executable, "-m", "tests.multi_worker_step", str(tmp_path / f"worker{index}.npz")]
        processes.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    both = tf.data.Dataset.from_tensors(global_batch()).repeat()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    single = trained(tf.distribute.OneDeviceStrategy(cpus[0]), both)
    mirrored = trained(tf.distribute.MirroredStrategy(cpus), both)
    keras.utils.set_random_seed(5)
    start = [np.asarray(w) for w in build_model(image_size=64, ngf=4, ndf=4, n_blocks=1, n_layers_d=2, pool_size=0).trainable_weights]
    largest_update = max(float(np.max(np.abs(a - b))) for a, b in zip(single, start))
    assert largest_update > 0.01

    def worst(weights):
        return max(float(np.max(np.abs(a - b))) for a, b in zip(single, weights))

    assert worst(mirrored) < 1e-5 * max(1.0, largest_update)
    # The check can tell: a worker that stepped on its own sample alone would be far off.
    alone = trained(
        tf.distribute.OneDeviceStrategy(cpus[0]),
        tf.data.Dataset.from_tensors(tf.nest.map_structure(lambda x: x[:1], global_batch())).repeat(),
    )
    assert worst(alone) > 1e-3 * largest_update
    results = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], results[0][1][-3000:]
    for index in range(2):
        with np.load(tmp_path / f"worker{index}.npz") as data:
            worker = [data[f"arr_{i}"] for i in range(len(data.files))]
        assert worst(worker) < 1e-5 * max(1.0, largest_update), index


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_finite_losses(policy):
    config = TrainConfig(image_size=64, ngf=4, ndf=4, n_blocks=1, n_layers_d=2, pool_size=2, mixed_precision=policy, jit_compile=False)
    loop.set_precision(policy)
    try:
        model = loop.create_model(config)
        history = model.fit(tf.data.Dataset.from_tensors(global_batch()).repeat(2), epochs=1, verbose=0)
        assert model.generator.get_layer("stem_conv").compute_dtype == policy.split("_")[1]
        assert model.generator.output.dtype == "float32"
        if policy == "mixed_float16":
            assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
        assert all(np.isfinite(v[-1]) for v in history.history.values())
    finally:
        loop.set_precision("off")


@pytest.mark.slow
def test_resume_works_where_the_run_folder_is_now_and_refuses_changed_options(tmp_path, finished):
    dataset, shared, done = finished
    assert done.returncode == 0, done.stderr[-3000:]
    first = tmp_path / "first"
    shutil.copytree(shared, first)
    assert json.loads((first / "config.json").read_text())["output"] == str(shared)
    moved = tmp_path / "moved"
    first.rename(moved)
    resumed = _train("--output", moved, "--resume", f"--dataset={dataset}", "--verbose=0")  # where the data is: not a change
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not first.exists() and json.loads((moved / "config.json").read_text())["output"] == str(moved)

    changed = _train("--output", moved, "--resume", "--ngf=8", "--verbose=0")
    assert changed.returncode == 2 and "--ngf 8 (run: 4)" in changed.stderr and "--allow_changes" in changed.stderr
    assert "Traceback" not in changed.stderr

    record = json.loads((moved / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**record, "ngf": "four"}))
    damaged = _train("--output", moved, "--resume", "--verbose=0")
    assert damaged.returncode == 2 and "ngf is 'four', expected a int" in damaged.stderr and "Traceback" not in damaged.stderr

    (moved / "config.json").write_text(json.dumps(record))
    shutil.rmtree(moved / "backup")
    lost = _train("--output", moved, "--resume", "--verbose=0")
    assert lost.returncode == 2 and "refusing to start it over" in lost.stderr and "Traceback" not in lost.stderr


def test_the_time_budget_runs_one_clock_across_fit_calls_and_resumed_sessions(tmp_path, monkeypatch):
    """fit_resumable calls fit twice on a resume, and a resumed session continues: neither restarts the budget."""
    import types

    now = [1000.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])
    budget = callbacks.TimeBudget(60.0)
    budget.attach(tmp_path, resume=False)
    budget.set_model(types.SimpleNamespace(stop_training=False))
    budget.on_train_begin()
    now[0] += 40.0
    budget.on_train_batch_end(0)
    budget.on_train_begin()  # the second fit call of the same run
    now[0] += 15.0
    budget.on_train_batch_end(1)
    budget.on_train_end()
    assert not budget.stopped_early and json.loads((tmp_path / "time_budget.json").read_text())["seconds"] == 55.0

    resumed = callbacks.TimeBudget(60.0)  # a new session: 5 s are left
    resumed.attach(tmp_path, resume=True)
    resumed.set_model(types.SimpleNamespace(stop_training=False))
    resumed.on_train_begin()
    now[0] += 4.0
    resumed.on_train_batch_end(0)
    assert not resumed.stopped_early
    now[0] += 2.0
    resumed.on_train_batch_end(1)
    assert resumed.stopped_early and resumed.model.stop_training

    fresh = callbacks.TimeBudget(60.0)  # a run started anew ignores what an earlier one spent
    fresh.attach(tmp_path, resume=False)
    assert fresh.spent_before == 0.0
