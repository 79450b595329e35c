"""Property tests for the loaders a user's files reach: every generated input is accepted correctly or refused with
one line naming it (a ValueError), never another exception. ``KERAS_ASYM_FUZZ_EXAMPLES`` deepens the run."""

from __future__ import annotations

import html
import io
import json
import os
import re
import urllib.parse
import zipfile

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_demo.runtime import cli
from edge_demo.runtime.generator import read_sidecar
from keras_asym.inference.keras_generator import check_keras_archive
from keras_asym.utils.imageio import ImageReadError, list_images, read_rgb
from keras_asym.utils.pages import write_gallery

EXAMPLES = int(os.environ.get("KERAS_ASYM_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(text=st.text() | st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")))
def test_any_text_becomes_one_bounded_printable_line(text):
    line = cli.one_line(text)
    assert len(line) <= cli.MAX_LINE and line.isprintable()
    line.encode("utf-8")  # no lone surrogates left to fail a write


@FUZZ
@given(payload=st.binary(max_size=2000) | JSON.map(lambda v: json.dumps(v).encode()), compress=st.booleans())
def test_any_packed_record_is_read_as_a_dict_or_refused_in_one_line(tmp_path_factory, payload, compress):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as files:
        files.writestr("keras_asym.json", payload)
    path = tmp_path_factory.mktemp("record") / "m.tflite"
    path.write_bytes(b"TFL3" + bytes(60) + buffer.getvalue())
    try:
        record = read_sidecar(path)
    except ValueError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)
        return
    assert isinstance(record, dict) and record == json.loads(payload)


@pytest.fixture(scope="module")
def archive_parts(generator_file):
    with zipfile.ZipFile(generator_file) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(["ngf", "n_blocks", "input_channels", "output_channels", "style_dim", "alpha"]), JSON))
def test_any_generator_config_is_checked_before_keras_builds_it(tmp_path_factory, archive_parts, changes):
    record = json.loads(archive_parts["config.json"])
    record["config"].update(changes)
    path = tmp_path_factory.mktemp("keras") / "g.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in archive_parts.items():
            archive.writestr(name, json.dumps(record).encode() if name == "config.json" else data)
    try:
        check_keras_archive(path)
    except ValueError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)
        return
    # accepted: what it declares fits in the weights it holds
    config = record["config"]
    assert int(config["n_blocks"]) * 18 * (4 * int(config["ngf"])) ** 2 * 4 <= len(archive_parts["model.weights.h5"])


@FUZZ
@given(image=st.binary(max_size=400), feature=st.binary(max_size=300))
@example(image=b"", feature=b"PK\x03\x04")  # np.load opens a file starting "PK" as an .npz archive (found by a suite run)
def test_damaged_dataset_files_are_skipped_and_reported_not_raised(tmp_path_factory, image, feature):
    from PIL import Image

    from keras_asym.data.pipeline import DatasetLayoutError, scan
    from keras_asym.face.masks import PARTS

    root = tmp_path_factory.mktemp("data")
    for side in ("A", "B"):
        (root / side).mkdir()
        for part in PARTS:
            (root / f"{side}_{part}").mkdir()
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / f"{side}_{part}" / "x.png")
    (root / "B_feat").mkdir()
    (root / "A" / "x.png").write_bytes(image)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "B" / "x.png")
    (root / "B_feat" / "x.npy").write_bytes(feature)
    try:
        info = scan(root)
    except DatasetLayoutError as err:
        assert str(root) in str(err)
        return
    assert len(info["photos"]) == len(info["drawings"]) == 1 and np.isclose(info["styles"].sum(), 1.0)


_NAME_BYTES = st.binary(min_size=1, max_size=120).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))


@FUZZ
@given(stem=_NAME_BYTES, readable=st.booleans())
@example(stem=b'<td><img src="x">\n\x80 "%2F', readable=False)
@example(stem=b"a\nb\xe9", readable=True)
def test_any_file_name_is_listed_linked_from_the_gallery_and_reported_on_one_line(tmp_path_factory, stem, readable):
    """Any bytes a file name can hold (newlines, markup, bytes that are not UTF-8): the image is listed, the
    gallery's link leads back to exactly that file, and an unreadable one is reported on one printable line."""
    folder = tmp_path_factory.mktemp("names")
    raw = os.fsencode(folder) + b"/" + stem + b".png"
    with open(raw, "wb") as handle:
        handle.write(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes() if readable else b"<script>not an image")
    (path,) = list_images(folder)
    assert os.fsencode(path) == raw
    try:
        assert read_rgb(path).shape == (8, 8, 3) and readable
    except ImageReadError as err:
        assert not readable
        line = cli.one_line(str(err))
        assert "\n" not in line and line.isprintable() and len(line) <= cli.MAX_LINE
    write_gallery(folder, [(path.stem, path.name, [("style 1", path.name)])])
    page = (folder / "index.html").read_text()
    links = re.findall(r'src="([^"]*)"', page)
    assert len(links) == 2 and all(urllib.parse.unquote_to_bytes(html.unescape(link)) == stem + b".png" for link in links)
    assert page.count("<img") == 2 and page.count("<td") == 2 and page.count("<tr") == 1  # the name adds no markup
