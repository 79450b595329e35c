// The page: camera or photo in, the face tracked and aligned, the generator's drawing pasted over it (or beside
// it), live. Keys 1/2/3 pick a style, the three sliders mix them. Query parameters: ?accelerator=auto|webgpu|wasm,
// ?precision=fp32|fp16 (WebGPU arithmetic), ?view=paste|side, ?camera=off (no camera until asked: a photo, or
// window.kerasAsym.drawAligned only).

import { FaceTracker, loadRuntimes } from "./pipeline.js";
import { invertAffine, modelTemplate, normaliseStyle, similarityMatrix, warpAffine } from "./align.js";

const STAGES = ["capture", "detect", "align", "infer", "composite"];
const KEEP = 1000; // latencies kept per stage, for the medians
const params = new URLSearchParams(location.search);
const want = params.get("accelerator") ?? "auto";
const precision = params.get("precision") === "fp16" ? "fp16" : "fp32";
const element = (id) => document.getElementById(id);

const state = {
  style: Float32Array.of(1, 0, 0),
  styleName: "style1",
  view: params.get("view") === "side" ? "side" : "paste",
  accelerator: "loading",
  frames: 0,
  framesDrawn: 0,
  firstFrameAt: 0,
  lastFrameAt: 0,
  source: null, // the <video> being drawn, or null
  photo: null, // the ImageData of a still photo
  stages: Object.fromEntries(STAGES.map((s) => [s, []])),
};
let runtimes = null, tracker = null;

function fail(error) {
  const text = String(error?.message ?? error).split("\n")[0];
  element("status").textContent = `Error: ${text}`;
  document.body.dataset.error = text;
  console.error(error);
}

function median(values) {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function record(stage, ms) {
  const list = state.stages[stage];
  list.push(ms);
  if (list.length > KEEP) list.shift();
}

function stats() {
  const seconds = (state.lastFrameAt - state.firstFrameAt) / 1000;
  return {
    frames: state.frames,
    framesDrawn: state.framesDrawn,
    detectorRuns: tracker?.detections ?? 0,
    seconds,
    fps: seconds > 0 ? (state.frames - 1) / seconds : 0,
    stagesMs: Object.fromEntries(STAGES.map((s) => [s, median(state.stages[s])])),
    accelerator: state.accelerator,
    liteRtBuild: runtimes?.liteRtOptions.jspi ? "jspi" : runtimes?.liteRtOptions.threads ? "threads" : "plain",
    now: performance.now(),
  };
}

function showStatus(face) {
  const s = stats();
  const gpu = runtimes.generator.adapter ? ` (${runtimes.generator.adapter})` : "";
  element("status").textContent =
    `${state.source ? `${s.fps.toFixed(1)} FPS` : "photo"} · generator ${s.stagesMs.infer.toFixed(1)} ms · ${state.styleName} · ` +
    `${state.accelerator}${gpu}${face ? "" : " · no face"}`;
  document.body.dataset.framesDrawn = String(state.framesDrawn);
}

// === Style ===

function setStyle(weights, fromSliders = false) {
  const style = normaliseStyle(weights);
  if (style === null) {
    element("mix").textContent = "weights sum to 0: keeping the last style";
    return;
  }
  state.style = style;
  const one = style.findIndex((v) => v === 1);
  state.styleName = one >= 0 ? `style${one + 1}` : `mix ${Array.from(style, (v) => v.toFixed(2)).join(",")}`;
  element("mix").textContent = state.styleName;
  if (!fromSliders) [0, 1, 2].forEach((k) => (element(`style${k + 1}`).value = String(Math.round(weights[k] * 100))));
  if (state.photo && !state.source) drawPhoto(state.photo).catch(fail);
}

function sliders() {
  return [0, 1, 2].map((k) => Number(element(`style${k + 1}`).value) / 100);
}

// === One frame ===

const work = document.createElement("canvas");
const workContext = work.getContext("2d", { willReadFrequently: true });
const drawingCanvas = document.createElement("canvas");

let framePixels = new Uint8ClampedArray(0);

/** An image, video or canvas as ImageData (kept in `work` for the compositor): the portable path. */
function grab(source) {
  const width = source.videoWidth ?? source.width, height = source.videoHeight ?? source.height;
  if (work.width !== width || work.height !== height) [work.width, work.height] = [width, height];
  workContext.drawImage(source, 0, 0);
  return workContext.getImageData(0, 0, width, height);
}

/**
 * A camera's VideoFrame as ImageData, then closed. The fast path: a camera frame read back through a canvas costs
 * ~30 ms for 640x480 in headless Chromium (a GPU readback), its copy out of a MediaStreamTrackProcessor ~0.6 ms.
 */
async function grabVideoFrame(frame) {
  try {
    const width = frame.displayWidth, height = frame.displayHeight;
    if (framePixels.length !== width * height * 4) framePixels = new Uint8ClampedArray(width * height * 4);
    await frame.copyTo(framePixels, { format: "RGBA" });
    const image = new ImageData(framePixels, width, height);
    if (work.width !== width || work.height !== height) [work.width, work.height] = [width, height];
    workContext.putImageData(image, 0, 0);
    return image;
  } finally {
    frame.close();
  }
}

/** app.Compositor.compose: the frame with the drawing warped back over the face, or the drawing beside it. */
function compose(frame, drawing, matrix) {
  const { generator } = runtimes;
  const view = element("view"), context = view.getContext("2d");
  const sideWidth = state.view === "side" ? Math.round((frame.height * generator.width) / generator.height) : 0;
  if (view.width !== frame.width + sideWidth || view.height !== frame.height) [view.width, view.height] = [frame.width + sideWidth, frame.height];
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.fillStyle = "white";
  context.fillRect(0, 0, view.width, view.height);
  context.drawImage(work, 0, 0);
  if (!drawing) return;
  [drawingCanvas.width, drawingCanvas.height] = [generator.width, generator.height];
  const gray = new ImageData(generator.width, generator.height);
  for (let i = 0, o = 0; i < drawing.length; i++, o += 4) {
    gray.data[o] = gray.data[o + 1] = gray.data[o + 2] = drawing[i];
    gray.data[o + 3] = 255;
  }
  drawingCanvas.getContext("2d").putImageData(gray, 0, 0);
  if (state.view === "side") {
    context.drawImage(drawingCanvas, frame.width, 0, sideWidth, frame.height);
    return;
  }
  // OpenCV puts pixel centres on integers, a canvas on half-integers: shift by half a pixel either side.
  const [[a, b, e], [c, d, f]] = invertAffine(matrix);
  context.setTransform(a, c, b, d, e - (a + b) / 2 + 0.5, f - (c + d) / 2 + 0.5);
  context.drawImage(drawingCanvas, 0, 0);
  context.setTransform(1, 0, 0, 1, 0, 0);
}

async function drawFrame(frame, matrix) {
  const { generator } = runtimes;
  let drawing = null;
  const t1 = performance.now();
  if (matrix) {
    const aligned = warpAffine(frame.data, frame.width, frame.height, matrix, generator.width, generator.height, 255, 4);
    const t2 = performance.now();
    record("align", t2 - t1);
    drawing = await generator.draw(aligned, state.style);
    record("infer", performance.now() - t2);
  }
  const t3 = performance.now();
  compose(frame, drawing, matrix);
  record("composite", performance.now() - t3);
  return drawing;
}

/** One camera frame: `capture` gives it as ImageData; tracked, aligned, drawn, composed, counted. */
async function step(capture) {
  const start = performance.now();
  const frame = await capture();
  const t0 = performance.now();
  record("capture", t0 - start);
  const matrix = await tracker.update(frame, t0 / 1000);
  record("detect", performance.now() - t0);
  const drawing = await drawFrame(frame, matrix);
  state.frames += 1;
  state.lastFrameAt = performance.now();
  if (state.frames === 1) state.firstFrameAt = state.lastFrameAt;
  if (drawing) state.framesDrawn += 1;
  showStatus(Boolean(drawing));
}

function nextVideoFrame(video) {
  const frame = "requestVideoFrameCallback" in video ? new Promise((resolve) => video.requestVideoFrameCallback(resolve)) : null;
  return Promise.race([frame, new Promise((resolve) => setTimeout(resolve, frame ? 200 : 0))].filter(Boolean));
}

let cameraRun = Promise.resolve(); // the camera loop, awaited before a photo takes the canvas

function startCamera() {
  if (!state.source) cameraRun = runCamera();
  return cameraRun;
}

async function runCamera() {
  const video = element("camera");
  state.source = video;
  state.photo = null;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) {
    state.source = null;
    throw new Error(`no camera (${err.name}): open a photo instead`);
  }
  if (state.source !== video) return stream.getTracks().forEach((t) => t.stop()); // stopped while asking
  video.srcObject = stream;
  await video.play();
  const { generator } = runtimes;
  tracker = new FaceTracker(runtimes.finder, modelTemplate(generator.height, generator.width));
  if ("MediaStreamTrackProcessor" in self) {
    // maxBufferSize 1: the newest frame waits while the page works; older ones are dropped, as the Python demo does
    const [track] = video.srcObject.getVideoTracks();
    const reader = new MediaStreamTrackProcessor({ track, maxBufferSize: 1 }).readable.getReader();
    try {
      while (state.source === video) {
        const { value, done } = await reader.read();
        if (done) break;
        await step(() => grabVideoFrame(value));
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    return;
  }
  while (state.source === video) {
    if (video.readyState >= 2 && video.videoWidth) await step(() => grab(video));
    await nextVideoFrame(video);
  }
}

/** A still photo: detection, the mesh twice (refined), alignment, drawing; redrawn when the style changes. */
async function drawPhoto(frame) {
  const { finder, generator } = runtimes;
  const points = await finder.largest(frame);
  const matrix = points ? similarityMatrix(points, modelTemplate(generator.height, generator.width)) : null;
  const drawing = await drawFrame(frame, matrix);
  if (drawing) state.framesDrawn += 1;
  showStatus(Boolean(drawing));
}

async function openPhoto(file) {
  stopCamera();
  await cameraRun.catch(() => {});
  const bitmap = await createImageBitmap(file);
  state.photo = grab(bitmap);
  await drawPhoto(state.photo);
}

function stopCamera() {
  const video = element("camera");
  state.source = null;
  video.srcObject?.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
}

// === Wiring ===

const ready = (async () => {
  element("status").textContent = "Loading the face models and the generator…";
  if (!["auto", "webgpu", "wasm"].includes(want)) throw new Error(`?accelerator=${want}: expected auto, webgpu or wasm.`);
  runtimes = await loadRuntimes(want, precision);
  state.accelerator = runtimes.generator.accelerator;
  document.body.dataset.accelerator = state.accelerator;
  const { generator } = runtimes;
  const why = generator.fallbackReason ? ` (${generator.fallbackReason})` : "";
  const arithmetic = generator.accelerator === "WASM" ? "" : `, ${generator.precision}`;
  element("accelerator").textContent = `Generator ${generator.width}x${generator.height} on ${state.accelerator}${arithmetic}${why}`;
  element("status").textContent = "Ready.";
})();

ready
  .then(() => (params.get("camera") === "off" ? null : startCamera()))
  .catch(fail);

element("camera-button").addEventListener("click", () => ready.then(() => (state.source ? stopCamera() : startCamera())).catch(fail));
element("photo").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) ready.then(() => openPhoto(file)).catch(fail);
});
element("view-select").value = state.view;
element("view-select").addEventListener("change", (event) => {
  state.view = event.target.value;
  if (state.photo && !state.source) drawPhoto(state.photo).catch(fail);
});
[1, 2, 3].forEach((k) => element(`style${k}`).addEventListener("input", () => setStyle(sliders(), true)));
document.addEventListener("keydown", (event) => {
  if (["1", "2", "3"].includes(event.key)) setStyle([0, 1, 2].map((k) => (k === Number(event.key) - 1 ? 1 : 0)));
});

/** The test hook: the page's state, and the generator alone on an already aligned face. */
window.kerasAsym = {
  ready,
  get accelerator() {
    return state.accelerator;
  },
  get adapter() {
    return runtimes?.generator.adapter ?? "";
  },
  get precision() {
    return runtimes?.generator.precision ?? "";
  },
  get framesDrawn() {
    return state.framesDrawn;
  },
  stats,
  async drawAligned(rgba, width, height, style) {
    await ready;
    const { generator } = runtimes;
    if (width !== generator.width || height !== generator.height) {
      throw new Error(`drawAligned: the generator runs at ${generator.width}x${generator.height}, given ${width}x${height}.`);
    }
    if (style.length !== 3) throw new Error("drawAligned: style needs 3 weights.");
    return generator.draw(rgba instanceof Uint8Array ? rgba : Uint8Array.from(rgba), Float32Array.from(style));
  },
  /** The 5 alignment points of the largest face in an RGBA image, found as for a photo (the mesh refined); or null. */
  async facePoints(rgba, width, height) {
    await ready;
    return runtimes.finder.largest(new ImageData(new Uint8ClampedArray(rgba), width, height));
  },
};
