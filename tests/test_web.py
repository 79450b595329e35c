"""The browser page (edge_demo/web): its geometry against the Python runtime's in Node, then the built page in headless
Chromium with a fake camera, its generator on SwiftShader's WebGPU held to the Python runtime's drawings and its face
points to the Python runtime's."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from benchmarks.common.shared_data import clip_faces
from edge_demo.runtime import alignment, faces
from edge_demo.runtime.faces import FaceLandmarker
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.web import headless, page
from keras_asym.data.clip import render_frames, write_clip

SIZE = 128
PSNR_BAR_DB = 40.0
POINTS_BAR = 0.005  # of the inter-ocular distance; the page's points were within 1e-4 of Python's (2026-12-04)
WEB = page.SOURCE


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("no Node.js for the page's geometry (apt-get install nodejs)")
    return found


def run_in_node(script: str, tmp_path) -> dict:
    path = tmp_path / "check.mjs"
    path.write_text(f"import * as align from {json.dumps((WEB / 'align.js').as_uri())};\n{script}")
    result = subprocess.run([node(), str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_the_page_aligns_faces_as_the_python_runtime_does(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 120, 4), dtype=np.uint8)
    points = np.array([[40.3, 41.2], [71.8, 38.9], [57.1, 60.4], [44.2, 75.5], [70.9, 73.8]])
    mesh = rng.uniform(20, 100, (468, 3))
    model = json.loads(faces.FIVE_POINT_MODEL.read_text())
    script = f"""
const image = Uint8Array.from({json.dumps(image.ravel().tolist())});
const points = {json.dumps(points.tolist())}, mesh = {json.dumps(mesh.tolist())}, model = {json.dumps(model)};
const matrix = align.similarityMatrix(points, align.template({SIZE}));
const roi = align.roiMatrix([60.5, 44.25], 77.0, 0.3);
console.log(JSON.stringify({{
  template: align.template({SIZE}), matrix, roiFromMesh: align.roiFromMesh(mesh),
  points: align.pointsFromMesh(mesh, model),
  aligned: Array.from(align.warpAffine(image, 120, 90, matrix, {SIZE}, {SIZE}, 255, 3)),
  crop: Array.from(align.warpAffine(image, 120, 90, roi, 192, 192, 0, 3)),
}}));
"""
    page = run_in_node(script, tmp_path)
    np.testing.assert_allclose(page["template"], alignment.template(SIZE), atol=1e-9)
    matrix = alignment.similarity_matrix(points, alignment.template(SIZE))
    np.testing.assert_allclose(page["matrix"], matrix, atol=1e-9)
    center, side, angle = faces.roi_from_mesh(mesh)
    np.testing.assert_allclose(page["roiFromMesh"][0] + page["roiFromMesh"][1:], [*center, side, angle], atol=1e-9)
    np.testing.assert_allclose(page["points"], faces.points_from_mesh(mesh), atol=1e-9)
    rgb = np.ascontiguousarray(image[..., :3])
    aligned, _ = alignment.align(rgb, points, SIZE)
    page_aligned = np.array(page["aligned"], np.uint8).reshape(SIZE, SIZE, 3)
    crop = cv2.warpAffine(rgb, faces._roi_matrix((60.5, 44.25), 77.0, 0.3), (192, 192), flags=cv2.INTER_LINEAR)
    page_crop = np.array(page["crop"], np.uint8).reshape(192, 192, 3)
    # OpenCV 5's float32 bilinear, reproduced: a level apart at most, where a sum lands on a rounding boundary
    for ours, theirs in ((page_aligned, aligned), (page_crop, crop)):
        difference = np.abs(ours.astype(int) - theirs.astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 0.001, (difference.max(), (difference > 0).mean())


@pytest.fixture(scope="module")
def sites(generator_file, tmp_path_factory):
    """The page built for the fp32 and int8 exports of the tiny generator: {variant: (folder, model)}; skipped before
    the export without Chromium, npm or a registry."""
    if headless.find_chromium() is None:
        pytest.skip("no headless Chromium for the browser page (apt-get install chromium)")
    root = tmp_path_factory.mktemp("web")
    try:
        page.install_packages(page.default_npm_dir())
    except RuntimeError as err:
        pytest.skip(f"the page's npm packages cannot be installed: {err}")
    from export import exporter  # lazy: TensorFlow, once Chromium and npm are known to be there

    variants = ("fp32", "int8")
    exporter.export_generator(
        generator_file,
        root / "export",
        (SIZE, SIZE),
        variants,
        calibration_count=4,
        gpu_check="off",
        per_op_report=False,
        range_quantile=0.9999,  # one range quantile and no variance correction: any int8 file serves the page
        correct_variance_bias=False,
        log=lambda *a: None,
    )
    models = {variant: root / "export" / f"drawing_{variant}.tflite" for variant in variants}
    return {variant: (page.build_page(model, root / variant), model) for variant, model in models.items()}


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("camera")
    photos, _ = clip_faces()
    clip = write_clip(root / "clip.avi", photos[:2], frames=50, frames_per_face=25)
    return headless.y4m_from_video(clip, root / "clip.y4m")


def to_base64_js(array: np.ndarray) -> str:
    return f"Uint8Array.from(atob('{base64.b64encode(array.tobytes()).decode()}'), (c) => c.charCodeAt(0))"


DRAW_ALIGNED = """(async () => {{
  const drawing = await kerasAsym.drawAligned({rgba}, {width}, {height}, {style});
  let text = "";
  for (let i = 0; i < drawing.length; i += 8192) text += String.fromCharCode(...drawing.subarray(i, i + 8192));
  return btoa(text);
}})()"""


def rgba_of(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=-1)


def draw_in_page(chromium: headless.Chromium, photo: np.ndarray, style) -> np.ndarray:
    encoded = chromium.evaluate(DRAW_ALIGNED.format(rgba=to_base64_js(rgba_of(photo)), width=SIZE, height=SIZE, style=list(style)))
    return np.frombuffer(base64.b64decode(encoded), np.uint8).reshape(SIZE, SIZE)


def test_the_page_draws_the_camera_live_on_webgpu_as_the_python_runtime_draws(sites, camera_clip, tmp_path, browser):
    folder, model = sites["fp32"]
    photos, _ = clip_faces()
    photo = cv2.resize(photos[0], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    styles = {"style2": [0.0, 1.0, 0.0], "mix": [0.2, 0.5, 0.3]}
    python = TFLiteGenerator(model)
    expected = {name: python.draw(photo, np.asarray(style, np.float32)) for name, style in styles.items()}
    frame = cv2.cvtColor(next(render_frames(photos[1:2], 1)), cv2.COLOR_BGR2RGB)
    with FaceLandmarker(threads=1, refine=True) as landmarker:
        expected_points = landmarker.largest(frame).points

    server, url = page.start_server(folder)
    log = tmp_path / "chromium.log"
    try:
        with headless.Chromium([*headless.WEBGPU_FLAGS, *headless.camera_flags(camera_clip)], executable=browser, log=log) as chromium:
            chromium.open(url + "?accelerator=webgpu")
            chromium.wait_for("typeof kerasAsym !== 'undefined'", timeout=20)
            chromium.evaluate("kerasAsym.ready.then(() => true)", timeout=60)
            accelerator = chromium.evaluate("kerasAsym.accelerator")
            assert accelerator == "WebGPU", f"the generator runs on {accelerator}, not WebGPU; console: {chromium.console[-5:]}"
            frames = chromium.wait_for("kerasAsym.framesDrawn >= 3 && kerasAsym.stats()", timeout=40)
            drawings = {name: draw_in_page(chromium, photo, style) for name, style in styles.items()}
            points = chromium.evaluate(f"kerasAsym.facePoints({to_base64_js(rgba_of(frame))}, {frame.shape[1]}, {frame.shape[0]})")
    finally:
        server.shutdown()
        server.server_close()
    assert frames["framesDrawn"] >= 3 and frames["detectorRuns"] >= 1, frames
    for name, drawing in drawings.items():
        assert psnr(drawing, expected[name]) >= PSNR_BAR_DB, (name, psnr(drawing, expected[name]))
    # the face found and its 5 points as the Python runtime finds them in a photo (detector, mesh twice, fitted points)
    inter_ocular = np.linalg.norm(expected_points[1] - expected_points[0])
    assert points is not None and np.abs(np.array(points) - expected_points).max() <= POINTS_BAR * inter_ocular, (points, expected_points)


def test_an_int8_export_draws_on_wasm_as_the_python_runtime_draws(sites, browser):
    """uint8 photo and style in, uint8 drawing out, quantized with model_io.json's scales: XNNPACK's integer kernels
    in WebAssembly give the Python runtime's bytes. (On WebGPU, LiteRT.js computes an int8 graph in float: 31-35 dB
    from XNNPACK's integer arithmetic, measured 2026-12-04, so no bar is set there.)"""
    folder, model = sites["int8"]
    photo = cv2.resize(clip_faces()[0][2], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    style = np.array([0.2, 0.5, 0.3], np.float32)
    expected = TFLiteGenerator(model).draw(photo, style)
    server, url = page.start_server(folder)
    try:
        with headless.Chromium(executable=browser) as chromium:
            chromium.open(url + "?accelerator=wasm&camera=off")
            chromium.wait_for("typeof kerasAsym !== 'undefined'", timeout=20)
            chromium.evaluate("kerasAsym.ready.then(() => true)", timeout=60)
            accelerator = chromium.evaluate("kerasAsym.accelerator")
            drawing = draw_in_page(chromium, photo, style.tolist())
    finally:
        server.shutdown()
        server.server_close()
    assert accelerator == "WASM"
    assert psnr(drawing, expected) >= PSNR_BAR_DB, psnr(drawing, expected)
