"""Shared test fixtures: the official parity fixture and small batches."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Under pytest-xdist each worker (and every command a test starts, which inherits this environment) computes on one
# thread: two workers on two cores, each with a two-thread pool, spend their time waiting on each other's cores.
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("KERAS_ASYM_TEST_THREADS", "1") != "0":
    for _name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, os.environ.get("KERAS_ASYM_TEST_THREADS", "1"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs, so tf.distribute tests can run MirroredStrategy with 2
# replicas; this must happen before TensorFlow initialises its devices.
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

ROOT = Path(__file__).resolve().parents[1]
# CI (.ci/run) sets this: there a skipped test is a failure, since a missing ../shared or
# missing MediaPipe assets would otherwise turn a third of the suite green by skipping.
STRICT = os.environ.get("KERAS_ASYM_STRICT") == "1"
SHARED = Path(os.environ.get("KERAS_ASYM_SHARED", ROOT.parent / "shared"))
OFFICIAL = SHARED / "fixtures" / "official_small"


class OfficialFixture:
    """``official_small``: weights rebuilt from the manifest's NumPy scheme, NHWC arrays."""

    def __init__(self, root: Path):
        self.root = root
        self.manifest = json.loads((root / "manifest.json").read_text())
        self.config = self.manifest["config"]
        self._arrays = np.load(root / "forward.npz")

    def state_dict(self, network: str) -> dict[str, np.ndarray]:
        spec = self.manifest["networks"][network]
        rng = np.random.default_rng(spec["seed"])
        out = {}
        for name, shape, std in spec["params"]:
            value = (rng.standard_normal(shape) * std).astype(np.float32)
            if network == "LPIPS_alex" and name.startswith("lin"):
                value = np.abs(value)
            out[name] = value
        return out

    def nhwc(self, key: str) -> np.ndarray:
        value = self._arrays[key]
        return value.transpose(0, 2, 3, 1) if value.ndim == 4 else value

    def batch(self) -> dict:
        """The fixture's inputs as a keras_asym batch."""
        style = self._arrays["style"][None].astype(np.float32)
        parts = {"nose": "mask", "eyes": "maske", "lips": "maskl"}
        return {
            "photo": self.nhwc("real_A"),
            "drawing": self.nhwc("real_B"),
            "style": style,
            "photo_masks": {p: self.nhwc(f"A_{s}") for p, s in parts.items()},
            "drawing_masks": {p: self.nhwc(f"B_{s}") for p, s in parts.items()},
        }


@pytest.fixture(scope="session")
def official() -> OfficialFixture:
    if not (OFFICIAL / "manifest.json").exists():
        pytest.skip(f"official parity fixture not found at {OFFICIAL} (set KERAS_ASYM_SHARED)")
    return OfficialFixture(OFFICIAL)


@pytest.fixture
def browser() -> str:
    """Headless Chromium (``tests/browser.py``); a test that asks for it is skipped before it does any work."""
    from tests.browser import chromium

    return chromium()


@pytest.fixture(scope="session")
def generator_file(tmp_path_factory) -> Path:
    """A small untrained StyleGenerator (ngf 4, one block) saved as .keras, seeded."""
    import keras

    from keras_asym.models.networks import StyleGenerator

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    StyleGenerator(ngf=4, n_blocks=1).save(path)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, which KERAS_ASYM_STRICT=1 (CI) does not allow: {reason}"
