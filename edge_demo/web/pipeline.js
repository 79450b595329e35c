// The runtimes behind the page: MediaPipe's FaceDetector (BlazeFace short range), the 468-point face mesh and the
// keras-asym generator on LiteRT.js, and the tracker that ties them together as edge_demo/tracker.py does.
// Everything is served from this folder (vendor/, models/, model.tflite): nothing is fetched from a CDN.

import { FaceDetector, FilesetResolver } from "@mediapipe/tasks-vision";
import { Tensor, loadAndCompile, loadLiteRt, getWebGpuDevice, supportsFeature } from "@litertjs/core";
import {
  MESH_SIZE,
  OneEuroFilter,
  pointsFromMesh,
  roiFromDetection,
  roiFromMesh,
  roiMatrix,
  invertAffine,
  similarityMatrix,
  warpAffine,
} from "./align.js";

const PRESENCE_THRESHOLD = 0.5;
const here = (path) => new URL(path, document.baseURI).href;

async function fetchJson(path) {
  const response = await fetch(here(path));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} (build the page with python -m edge_demo.web.build)`);
  return response.json();
}

/** A queue of async calls, run one at a time: the camera loop and the test hook share one compiled model. */
function serialised(call) {
  let last = Promise.resolve();
  return (...args) => {
    const run = last.then(() => call(...args));
    last = run.catch(() => {});
    return run;
  };
}

/** numpy's rounding (half to even), so quantized inputs are the Python runtime's byte for byte. */
function roundHalfEven(value) {
  const floor = Math.floor(value), rest = value - floor;
  if (rest !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

function quantize(value, quantization, low, high) {
  const q = roundHalfEven(value / quantization.scale + quantization.zero_point);
  return Math.min(high, Math.max(low, q));
}

/** pixels.to_pixels on a float32 value, in float32 as NumPy computes it for a float32 drawing. */
function floatToPixel(value) {
  const v = Math.fround(Math.fround(Math.fround(value + 1) * 127.5) + 0.5);
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
}

/** A WebGPU adapter that runs on the CPU (SwiftShader, or what the browser calls a fallback adapter). */
function isSoftware(info) {
  return Boolean(info?.isFallbackAdapter) || /swiftshader|llvmpipe|software/i.test(`${info?.architecture} ${info?.description} ${info?.device}`);
}

/**
 * Where the generator should run, and LiteRT.js loaded for it. As the Python runtime's `auto`: WebGPU on a hardware
 * adapter; a software one (SwiftShader) runs the real WebGPU kernels slower than WASM, so only `webgpu` asks for
 * it. LiteRT.js is loaded with JSPI for WebGPU (a graph WebGPU cannot run whole is then split between WebGPU and
 * WASM instead of dropped to WASM) and with threads for WASM (cross-origin isolation permitting).
 */
export async function loadLiteRtRuntime(want) {
  const adapter = want !== "wasm" && "gpu" in navigator ? await navigator.gpu.requestAdapter({ powerPreference: "high-performance" }) : null;
  let gpu = adapter !== null, why = "";
  if (want === "wasm") why = "WASM asked for";
  else if (!adapter) why = "no WebGPU adapter";
  else if (want === "auto" && isSoftware(adapter.info)) {
    gpu = false;
    why = "only a software WebGPU adapter; ?accelerator=webgpu uses it";
  }
  const options = {};
  if (gpu && (await supportsFeature("jspi"))) options.jspi = true;
  else if (!gpu && self.crossOriginIsolated && (await supportsFeature("threads"))) options.threads = true;
  await loadLiteRt(here("vendor/litert/wasm/"), options);
  if (gpu && !getWebGpuDevice()) [gpu, why] = [false, "LiteRT.js could not create a WebGPU device"];
  return { options, gpu, why };
}

function adapterName(device) {
  const info = device?.adapterInfo;
  if (!info) return "";
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(" ").trim();
}

/**
 * The generator: uint8 RGB face in, uint8 gray drawing out, as edge_demo/runtime/generator.py's
 * TFLiteGenerator.draw: pixels through a 256-entry table into float [-1, 1] or the quantized uint8, the style
 * quantized the same way, the drawing back to pixels. Runs are queued: one model run at a time.
 */
export class Generator {
  /**
   * The generator on WebGPU when `gpu`, else (or when WebGPU cannot compile it) on WASM, `why` saying why not.
   * `precision`: WebGPU arithmetic, "fp32" (the drawings of the Python runtime) or "fp16" (faster where supported).
   */
  static async load(gpu, why, precision = "fp32") {
    const io = await fetchJson("model_io.json");
    const device = getWebGpuDevice();
    let model = null;
    if (gpu) {
      try {
        model = await loadAndCompile(here("model.tflite"), { accelerator: "webgpu", gpuOptions: { precision } });
      } catch (err) {
        why = `WebGPU could not compile it: ${String(err.message ?? err).split("\n")[0]}`;
      }
    }
    if (model === null) model = await loadAndCompile(here("model.tflite"), { accelerator: "wasm" });
    return new Generator(model, io, device, why);
  }

  constructor(model, io, device, why) {
    this.model = model;
    this.io = io;
    const onGpu = model.options.accelerator === "webgpu";
    this.accelerator = onGpu ? (model.isFullyAccelerated ? "WebGPU" : "WebGPU + WASM") : "WASM";
    this.precision = onGpu ? model.options.gpuOptions.precision : "fp32";
    this.adapter = onGpu ? adapterName(device) : "";
    this.fallbackReason = onGpu ? "" : why;
    const inputs = model.getInputDetails(), outputs = model.getOutputDetails();
    this.photo = inputs.find((d) => d.name === "photo") ?? inputs.find((d) => d.shape.length === 4);
    this.style = inputs.find((d) => d.name === "style") ?? inputs.find((d) => d.shape.length === 2);
    this.drawing = outputs.find((d) => d.name === "drawing") ?? outputs[0];
    if (!this.photo || this.photo.shape[3] !== 3) throw new Error("model.tflite: no (1, H, W, 3) photo input; not a keras-asym generator.");
    [this.height, this.width] = [this.photo.shape[1], this.photo.shape[2]];
    this.photoTable = this.inputTable(this.photo, io.photo);
    this.photoBuffer = this.photo.dtype === "float32" ? new Float32Array(this.height * this.width * 3) : new Uint8Array(this.height * this.width * 3);
    this.draw = serialised((rgb, style) => this.runOnce(rgb, style));
  }

  inputTable(detail, record) {
    const values = Array.from({ length: 256 }, (_, p) => p / 127.5 - 1);
    if (detail.dtype === "float32") return Float32Array.from(values);
    if (detail.dtype !== "uint8" || !record?.quantization) throw new Error(`model.tflite: a ${detail.dtype} ${detail.name} input without quantization in model_io.json.`);
    return Uint8Array.from(values, (v) => quantize(v, record.quantization, 0, 255));
  }

  styleTensor(style) {
    if (!this.style) return null;
    if (this.style.dtype === "float32") return new Tensor(Float32Array.from(style), [1, 3]);
    const q = this.io.style?.quantization;
    if (!q) throw new Error("model.tflite: a quantized style input without quantization in model_io.json.");
    return new Tensor(Uint8Array.from(style, (v) => quantize(v, q, 0, 255)), [1, 3]);
  }

  toPixels(values) {
    const out = new Uint8Array(this.height * this.width);
    if (this.drawing.dtype === "float32") {
      for (let i = 0; i < out.length; i++) out[i] = floatToPixel(values[i]);
      return out;
    }
    const q = this.io.drawing?.quantization;
    if (!q) throw new Error("model.tflite: a quantized drawing output without quantization in model_io.json.");
    const table = new Uint8Array(256);
    for (let level = 0; level < 256; level++) {
      const v = (level - q.zero_point) * q.scale;
      table[level] = Math.min(255, Math.max(0, Math.trunc((v + 1) * 127.5 + 0.5)));
    }
    for (let i = 0; i < out.length; i++) out[i] = table[values[i]];
    return out;
  }

  /** draw(rgb, style), queued: rgb is H*W*3 or H*W*4 (RGBA) bytes at the model's size; style 3 weights. */
  async runOnce(pixels, style) {
    const count = this.height * this.width, step = pixels.length / count;
    if (step !== 3 && step !== 4) throw new Error(`drawAligned: ${pixels.length} bytes is not a ${this.width}x${this.height} RGB or RGBA image.`);
    const table = this.photoTable, buffer = this.photoBuffer;
    for (let i = 0, o = 0, p = 0; i < count; i++, p += step) {
      buffer[o++] = table[pixels[p]];
      buffer[o++] = table[pixels[p + 1]];
      buffer[o++] = table[pixels[p + 2]];
    }
    const inputs = { [this.photo.name]: new Tensor(buffer, [1, this.height, this.width, 3]) };
    const styleTensor = this.styleTensor(style);
    if (styleTensor) inputs[this.style.name] = styleTensor;
    let outputs;
    try {
      outputs = await this.model.run(inputs);
    } finally {
      Object.values(inputs).forEach((t) => t.delete());
    }
    const result = outputs[this.drawing.name];
    const values = (await result.data()).slice();
    Object.values(outputs).forEach((t) => t.delete());
    return this.toPixels(values);
  }
}

/** MediaPipe BlazeFace (detections) plus the face mesh on LiteRT.js' WASM CPU, as edge_demo/runtime/faces.py. */
export class FaceFinder {
  constructor(detector, mesh, fivePoints) {
    this.detector = detector;
    this.mesh = mesh;
    this.fivePoints = fivePoints;
    const outputs = mesh.getOutputDetails();
    const size = (d) => d.shape.reduce((a, b) => a * b, 1);
    this.meshPoints = outputs.find((d) => d.name === "conv2d_21") ?? outputs.find((d) => size(d) === 468 * 3);
    this.meshFlag = outputs.find((d) => d.name === "conv2d_31") ?? outputs.find((d) => size(d) === 1);
    this.crop = new Uint8Array(MESH_SIZE * MESH_SIZE * 3);
    this.meshInput = new Float32Array(MESH_SIZE * MESH_SIZE * 3);
    this.lastTimestamp = 0;
    this.meshInRoi = serialised((image, center, size, angle) => this.runMesh(image, center, size, angle));
  }

  /** BlazeFace alone: [{box: [x, y, w, h], keypoints (pixels), score}] of an ImageData. */
  detections(image) {
    const timestamp = Math.max(performance.now(), this.lastTimestamp + 1);
    this.lastTimestamp = timestamp;
    const result = this.detector.detectForVideo(image, timestamp);
    return result.detections.map((d) => ({
      box: [d.boundingBox.originX, d.boundingBox.originY, d.boundingBox.width, d.boundingBox.height],
      keypoints: d.keypoints.map((k) => [k.x * image.width, k.y * image.height]),
      score: d.categories[0]?.score ?? 0,
    }));
  }

  /** meshInRoi(image, center, size, angle), queued: faces.mesh_in_roi, the mesh in image pixels and its presence. */
  async runMesh(image, center, size, angle) {
    const matrix = roiMatrix(center, size, angle);
    warpAffine(image.data, image.width, image.height, matrix, MESH_SIZE, MESH_SIZE, 0, 3, this.crop);
    for (let i = 0; i < this.crop.length; i++) this.meshInput[i] = this.crop[i] / 255;
    const input = new Tensor(this.meshInput, [1, MESH_SIZE, MESH_SIZE, 3]);
    let outputs;
    try {
      outputs = await this.mesh.run([input]);
    } finally {
      input.delete();
    }
    const details = this.mesh.getOutputDetails();
    const points = (await outputs[details.indexOf(this.meshPoints)].data()).slice();
    const flag = (await outputs[details.indexOf(this.meshFlag)].data())[0];
    outputs.forEach((t) => t.delete());
    const inverse = invertAffine(matrix), scale = size / MESH_SIZE, mesh = new Array(468);
    for (let k = 0; k < 468; k++) {
      const x = points[3 * k], y = points[3 * k + 1];
      mesh[k] = [inverse[0][0] * x + inverse[0][1] * y + inverse[0][2], inverse[1][0] * x + inverse[1][1] * y + inverse[1][2], points[3 * k + 2] * scale];
    }
    return { mesh, presence: 1 / (1 + Math.exp(-flag)) };
  }

  /** faces.FaceLandmarker.detect with refine: the largest face's 5 points in a still photo, or null. */
  async largest(image) {
    const found = this.detections(image);
    if (!found.length) return null;
    const face = found.reduce((a, b) => (b.box[2] * b.box[3] > a.box[2] * a.box[3] ? b : a));
    let { mesh } = await this.meshInRoi(image, ...roiFromDetection(face.box, face.keypoints));
    ({ mesh } = await this.meshInRoi(image, ...roiFromMesh(mesh)));
    return pointsFromMesh(mesh, this.fivePoints);
  }
}

/**
 * Everything the page runs, loaded in order (MediaPipe and LiteRT.js each install a global ModuleFactory while they
 * load): the detector, LiteRT.js, the mesh on WASM, and the generator where `want` (auto, webgpu, wasm) puts it.
 */
export async function loadRuntimes(want = "auto", precision = "fp32") {
  const fivePoints = await fetchJson("five_points.json");
  const fileset = await FilesetResolver.forVisionTasks(here("vendor/mediapipe/wasm"));
  const detector = await FaceDetector.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: here("models/face_detection_short_range.tflite"), delegate: "CPU" },
    runningMode: "VIDEO",
    minDetectionConfidence: 0.5,
  });
  self.Module = undefined;
  const liteRt = await loadLiteRtRuntime(want);
  const mesh = await loadAndCompile(here("models/face_landmark.tflite"), { accelerator: "wasm" });
  const generator = await Generator.load(liteRt.gpu, liteRt.why, precision);
  return { finder: new FaceFinder(detector, mesh, fivePoints), generator, liteRtOptions: liteRt.options };
}

/**
 * edge_demo/tracker.py's FaceTracker: BlazeFace every detectEvery frames, the mesh on its own previous ROI in
 * between, a low presence score forcing a detection, and the alignment matrix through a One-Euro filter.
 */
export class FaceTracker {
  constructor(finder, target, detectEvery = 10, smoothing = 1.5) {
    this.finder = finder;
    this.target = target;
    this.detectEvery = Math.max(1, detectEvery);
    this.filter = smoothing > 0 ? new OneEuroFilter(smoothing, 0.02) : null;
    this.roi = null;
    this.sinceDetection = 0;
    this.detections = 0;
    this.points = null;
  }

  detect(image) {
    this.detections += 1;
    this.sinceDetection = 0;
    const found = this.finder.detections(image);
    if (!found.length) return null;
    const face = found.reduce((a, b) => (b.box[2] * b.box[3] > a.box[2] * a.box[3] ? b : a));
    return roiFromDetection(face.box, face.keypoints);
  }

  /** The 2x3 alignment matrix for this frame (an ImageData), or null when no face is in view. */
  async update(image, seconds) {
    this.sinceDetection += 1;
    if (this.roi === null || this.sinceDetection >= this.detectEvery) {
      const roi = this.detect(image);
      if (roi === null) {
        this.roi = null;
        this.points = null;
        this.filter?.reset();
        return null;
      }
      this.roi = roi;
    }
    const { mesh, presence } = await this.finder.meshInRoi(image, ...this.roi);
    if (presence < PRESENCE_THRESHOLD) {
      this.roi = null;
      return this.sinceDetection ? this.update(image, seconds) : null;
    }
    this.roi = roiFromMesh(mesh);
    this.points = pointsFromMesh(mesh, this.finder.fivePoints);
    const matrix = similarityMatrix(this.points, this.target);
    if (!this.filter) return matrix;
    const [a, b, tx, ty] = this.filter.apply([matrix[0][0], matrix[1][0], matrix[0][2], matrix[1][2]], seconds);
    return [[a, -b, tx], [b, a, ty]];
  }
}
