"""Open a page in headless Chromium (Debian's ``chromium``, which .ci/run installs): did every image load, is it blank?"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.skip("no headless Chromium for the browser tests (apt-get install chromium)")
    return found


def render(page: Path, screenshot: Path, size=(1200, 1600)) -> tuple[int, int, float]:
    """(images loaded, images on the page, pixel standard deviation of the screenshot) of ``page`` in Chromium."""
    browser, url = chromium(), page.resolve().as_uri()
    dom = subprocess.run([browser, *FLAGS, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert found, f"{page}: the page's load script did not run (no data-images-loaded in the DOM)"
    subprocess.run(
        [browser, *FLAGS, f"--window-size={size[0]},{size[1]}", f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    shot = cv2.imread(str(screenshot))
    assert shot is not None, f"{screenshot}: no screenshot written"
    return int(found.group(1)), int(found.group(2)), float(np.std(shot))
