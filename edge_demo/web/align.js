// Face geometry of the Python runtime, in plain JavaScript: the official 5-point template, the least-squares
// similarity, OpenCV's bilinear warpAffine, the face-mesh ROI and the One-Euro filter. Each function names the
// Python function it mirrors (edge_demo/runtime/alignment.py, faces.py, tracker.py, app.py) so the two stay one
// design; no DOM here, so Node can check it against the Python numbers.

export const TEMPLATE_480 = [[180, 230], [300, 230], [240, 301], [186, 365.6], [294, 365.6]];
export const MESH_SIZE = 192;
export const ROI_SCALE = 1.5;
export const WHITE = 255;

/** alignment.template: the 5 target points for a size x size face, 0-based pixel centres. */
export function template(size = 512) {
  const scale = size / 512;
  return TEMPLATE_480.map((p) => p.map((v) => (((v - 240) / 560) * 512 + 256 - 1) * scale + (scale - 1) / 2));
}

/** app.model_template: the template centred in a (possibly non-square) model input. */
export function modelTemplate(height, width) {
  const side = Math.min(height, width);
  return template(side).map(([x, y]) => [x + (width - side) / 2, y + (height - side) / 2]);
}

/** alignment.similarity_matrix: least-squares x' = a x - b y + tx, y' = b x + a y + ty (closed form). */
export function similarityMatrix(source, target) {
  if (source.length !== target.length || source.length < 2) throw new Error("need matching lists of >= 2 points");
  const n = source.length;
  let sx = 0, sy = 0, tx = 0, ty = 0;
  for (let i = 0; i < n; i++) {
    sx += source[i][0]; sy += source[i][1]; tx += target[i][0]; ty += target[i][1];
  }
  sx /= n; sy /= n; tx /= n; ty /= n;
  let dot = 0, cross = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const x = source[i][0] - sx, y = source[i][1] - sy, u = target[i][0] - tx, v = target[i][1] - ty;
    dot += x * u + y * v;
    cross += x * v - y * u;
    norm += x * x + y * y;
  }
  if (norm === 0) throw new Error("the source points coincide");
  const a = dot / norm, b = cross / norm;
  return [[a, -b, tx - a * sx + b * sy], [b, a, ty - b * sx - a * sy]];
}

/** alignment.invert (cv2.invertAffineTransform). */
export function invertAffine(m) {
  const [[a, b, c], [d, e, f]] = m;
  const det = a * e - b * d;
  if (det === 0) throw new Error("singular affine matrix");
  const ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
  return [[ia, ib, -ia * c - ib * f], [id, ie, -id * c - ie * f]];
}

export function transformPoints(m, points) {
  return points.map(([x, y]) => [m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2]]);
}

/** OpenCV's rounding of a float to a pixel (cvRound: half to even), clipped to 0..255. */
function toByte(value) {
  const floor = Math.floor(value), rest = value - floor;
  const rounded = rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  return rounded < 0 ? 0 : rounded > 255 ? 255 : rounded;
}

/**
 * cv2.warpAffine(src, m, (width, height), INTER_LINEAR, BORDER_CONSTANT, fill) on RGBA bytes, written as RGB
 * (channels 3) or RGBA. As OpenCV 5 computes it: each destination pixel's source position in float32, bilinear
 * weights from its fraction, the sum rounded; so an aligned face is the Python runtime's to the byte.
 */
export function warpAffine(src, srcWidth, srcHeight, m, width, height, fill = 0, channels = 3, out = null) {
  const [[a, b, c], [d, e, f]] = invertAffine(m);
  const dst = out ?? new Uint8Array(width * height * channels);
  const maxX = srcWidth - 1, maxY = srcHeight - 1;
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++, o += channels) {
      const sx = Math.fround(a * x + b * y + c), sy = Math.fround(d * x + e * y + f);
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      const in0 = y0 >= 0 && y0 <= maxY, in1 = y0 + 1 >= 0 && y0 + 1 <= maxY;
      const ix0 = x0 >= 0 && x0 <= maxX, ix1 = x0 + 1 >= 0 && x0 + 1 <= maxX;
      const p00 = (y0 * srcWidth + x0) * 4, p01 = p00 + 4, p10 = p00 + srcWidth * 4, p11 = p10 + 4;
      for (let k = 0; k < channels; k++) {
        const outside = k === 3 ? 255 : fill;
        const v00 = in0 && ix0 ? src[p00 + k] : outside, v01 = in0 && ix1 ? src[p01 + k] : outside;
        const v10 = in1 && ix0 ? src[p10 + k] : outside, v11 = in1 && ix1 ? src[p11 + k] : outside;
        dst[o + k] = toByte(v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11);
      }
    }
  }
  return dst;
}

/** faces._roi_matrix: the 2x3 affine taking a rotated square ROI to the MESH_SIZE crop. */
export function roiMatrix(center, size, angle) {
  const scale = MESH_SIZE / size, cos = Math.cos(angle) * scale, sin = Math.sin(angle) * scale;
  const [cx, cy] = center, half = MESH_SIZE / 2;
  return [[cos, sin, half - cos * cx - sin * cy], [-sin, cos, half + sin * cx - cos * cy]];
}

/** faces.roi_from_mesh: (centre, side, angle) of the ROI around a previous mesh; how the mesh tracks a face. */
export function roiFromMesh(mesh) {
  const angle = Math.atan2(mesh[263][1] - mesh[33][1], mesh[263][0] - mesh[33][0]);
  let lx = Infinity, ly = Infinity, hx = -Infinity, hy = -Infinity;
  for (const [x, y] of mesh) {
    lx = Math.min(lx, x); ly = Math.min(ly, y); hx = Math.max(hx, x); hy = Math.max(hy, y);
  }
  return [[(lx + hx) / 2, (ly + hy) / 2], ROI_SCALE * Math.max(hx - lx, hy - ly), angle];
}

/** faces.detect's first ROI: the BlazeFace box, 1.5x its longer side, turned to level the eyes. */
export function roiFromDetection(box, keypoints) {
  const [x, y, w, h] = box;
  const angle = Math.atan2(keypoints[1][1] - keypoints[0][1], keypoints[1][0] - keypoints[0][0]);
  return [[x + w / 2, y + h / 2], ROI_SCALE * Math.max(w, h), angle];
}

/** faces.points_from_mesh: the official 5 points as the fitted weighted means of five_points.json. */
export function pointsFromMesh(mesh, fivePoints) {
  return fivePoints.order.map((name) => {
    const { indices, weights } = fivePoints[name];
    let x = 0, y = 0;
    indices.forEach((index, k) => {
      x += weights[k] * mesh[index][0];
      y += weights[k] * mesh[index][1];
    });
    return [x, y];
  });
}

/** tracker.OneEuroFilter (Casiez et al., CHI 2012): still faces stop jittering, moving ones are followed. */
export class OneEuroFilter {
  constructor(minCutoff = 1.5, beta = 0.02, dCutoff = 1.0) {
    Object.assign(this, { minCutoff, beta, dCutoff });
    this.reset();
  }

  reset() {
    this.value = null;
  }

  static alpha(cutoff, dt) {
    return 1 / (1 + 1 / (2 * Math.PI * cutoff) / dt);
  }

  /** Filters a vector of numbers at a time in seconds. */
  apply(value, seconds) {
    if (this.value === null) {
      this.value = value.slice();
      this.derivative = value.map(() => 0);
      this.time = seconds;
      return this.value;
    }
    const dt = Math.max(seconds - this.time, 1e-3);
    this.time = seconds;
    const aD = OneEuroFilter.alpha(this.dCutoff, dt);
    this.derivative = value.map((v, i) => aD * ((v - this.value[i]) / dt) + (1 - aD) * this.derivative[i]);
    this.value = value.map((v, i) => {
      const a = OneEuroFilter.alpha(this.minCutoff + this.beta * Math.abs(this.derivative[i]), dt);
      return a * v + (1 - a) * this.value[i];
    });
    return this.value;
  }
}

/** styles.parse for three slider weights: non-negative, divided by the largest, then by the sum; null if all 0. */
export function normaliseStyle(weights) {
  if (weights.length !== 3 || weights.some((w) => !Number.isFinite(w) || w < 0)) return null;
  const top = Math.max(...weights);
  if (top <= 0) return null;
  const scaled = weights.map((w) => w / top);
  const sum = scaled.reduce((a, b) => a + b, 0);
  return Float32Array.from(scaled, (w) => w / sum);
}
