// Face landmarks -> 52 ARKit weights + head pose, in the browser.
//
// A line-by-line port of vrhub/tracking/solver.py: the same matrices (GET /api/tracking/solver.json),
// the same steps (viewer frame, Horn's weighted Procrustes, bounded least squares by projected Newton
// warm-started from the previous frame, gaze from the iris centres), so the weights agree with
// Python's for the same landmarks. All arithmetic is float64.

/** Solve A x = b for a small dense symmetric positive definite A (row-major, n x n) by Cholesky. */
export function choleskySolve(a, b, n) {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j];
      for (let k = 0; k < j; k++) sum -= l[i * n + k] * l[j * n + k];
      if (i === j) l[i * n + i] = Math.sqrt(Math.max(sum, 1e-300));
      else l[i * n + j] = sum / l[j * n + j];
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = b[i];
    for (let k = 0; k < i; k++) sum -= l[i * n + k] * y[k];
    y[i] = sum / l[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let sum = y[i];
    for (let k = i + 1; k < n; k++) sum -= l[k * n + i] * x[k];
    x[i] = sum / l[i * n + i];
  }
  return x;
}

/** Eigenvector of the largest eigenvalue of a symmetric 4x4 matrix (cyclic Jacobi). */
function largestEigenvector4(m) {
  const a = m.slice();
  const v = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < 4; p++) for (let q = p + 1; q < 4; q++) off += a[p * 4 + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < 4; p++) {
      for (let q = p + 1; q < 4; q++) {
        const apq = a[p * 4 + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * 4 + q] - a[p * 4 + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < 4; k++) {
          const akp = a[k * 4 + p];
          const akq = a[k * 4 + q];
          a[k * 4 + p] = c * akp - s * akq;
          a[k * 4 + q] = s * akp + c * akq;
        }
        for (let k = 0; k < 4; k++) {
          const apk = a[p * 4 + k];
          const aqk = a[q * 4 + k];
          a[p * 4 + k] = c * apk - s * aqk;
          a[q * 4 + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < 4; k++) {
          const vkp = v[k * 4 + p];
          const vkq = v[k * 4 + q];
          v[k * 4 + p] = c * vkp - s * vkq;
          v[k * 4 + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  let best = 0;
  for (let i = 1; i < 4; i++) if (a[i * 4 + i] > a[best * 4 + best]) best = i;
  return [v[best], v[4 + best], v[8 + best], v[12 + best]];
}

export function quaternionToMatrix([x, y, z, w]) {
  return [
    1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
    2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
    2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
  ];
}

/** target ≈ s R source + t; source/target Float64Array (n*3), weights (n) summing to 1. */
export function weightedProcrustes(source, target, weights, n) {
  const ms = [0, 0, 0];
  const mt = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const w = weights[i];
    if (!w) continue;
    for (let c = 0; c < 3; c++) {
      ms[c] += w * source[i * 3 + c];
      mt[c] += w * target[i * 3 + c];
    }
  }
  const m = new Float64Array(9);
  let norm = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i];
    if (!w) continue;
    const a0 = source[i * 3] - ms[0], a1 = source[i * 3 + 1] - ms[1], a2 = source[i * 3 + 2] - ms[2];
    const b0 = target[i * 3] - mt[0], b1 = target[i * 3 + 1] - mt[1], b2 = target[i * 3 + 2] - mt[2];
    m[0] += w * a0 * b0; m[1] += w * a0 * b1; m[2] += w * a0 * b2;
    m[3] += w * a1 * b0; m[4] += w * a1 * b1; m[5] += w * a1 * b2;
    m[6] += w * a2 * b0; m[7] += w * a2 * b1; m[8] += w * a2 * b2;
    norm += w * (a0 * a0 + a1 * a1 + a2 * a2);
  }
  const [sxx, sxy, sxz, syx, syy, syz, szx, szy, szz] = m;
  const nm = [
    sxx + syy + szz, syz - szy, szx - sxz, sxy - syx,
    syz - szy, sxx - syy - szz, sxy + syx, szx + sxz,
    szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy,
    sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz,
  ];
  let [qw, qx, qy, qz] = largestEigenvector4(nm);
  if (qw < 0) { qw = -qw; qx = -qx; qy = -qy; qz = -qz; }
  const qn = Math.hypot(qx, qy, qz, qw);
  const q = [qx / qn, qy / qn, qz / qn, qw / qn];
  const r = quaternionToMatrix(q);
  // s = sum w (R a)·b / sum w |a|²  ==  trace(Rᵀ... ) computed from m: sum_ij R_ji m_ij
  let num = 0;
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) num += r[j * 3 + i] * m[i * 3 + j];
  const s = num / norm;
  const t = [0, 1, 2].map((c) => mt[c] - s * (r[c * 3] * ms[0] + r[c * 3 + 1] * ms[1] + r[c * 3 + 2] * ms[2]));
  return { s, r, t, q };
}

function clip(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

function subSolve(gram, n, free, rhs) {
  const idx = [];
  for (let i = 0; i < n; i++) if (free[i]) idx.push(i);
  const k = idx.length;
  const a = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) a[i * k + j] = gram[idx[i] * n + idx[j]];
  const x = choleskySolve(a, idx.map((i) => rhs[i]), k);
  return { idx, x };
}

function matVec(a, x, rows, cols) {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let sum = 0;
    const off = i * cols;
    for (let j = 0; j < cols; j++) sum += a[off + j] * x[j];
    out[i] = sum;
  }
  return out;
}

/**
 * argmin ½wᵀGw − rhsᵀw with lower <= w <= upper: projected Newton from ``start`` or the clipped
 * unconstrained minimiser; after ``newtonIter`` iterations a primal active-set method finishes
 * (same as solve_box_qp in Python).
 */
export function solveBoxQP(gram, rhs, lower, upper, inverse, n, tol = 1e-10, newtonIter = 12, start = null) {
  let w = start ? Float64Array.from(start) : inverse ? matVec(inverse, rhs, n, n) : choleskySolve(gram, rhs, n);
  for (let i = 0; i < n; i++) w[i] = clip(w[i], lower[i], upper[i]);
  const out = projectedNewton(gram, rhs, lower, upper, w, n, tol, newtonIter);
  if (out.converged) return { w: out.w, iterations: out.iterations };
  const finish = primalActiveSet(gram, rhs, lower, upper, out.w, n, tol);
  return { w: finish.w, iterations: out.iterations + finish.iterations };
}

/** Primal active-set method for the box QP from a feasible ``w`` (see _primal_active_set in Python). */
function primalActiveSet(gram, rhs, lower, upper, start, n, tol, maxIter = 500) {
  const w = Float64Array.from(start);
  const atLower = new Uint8Array(n);
  const atUpper = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    atLower[i] = w[i] <= lower[i] ? 1 : 0;
    atUpper[i] = !atLower[i] && w[i] >= upper[i] ? 1 : 0;
  }
  for (let it = 1; it <= maxIter; it++) {
    const g = matVec(gram, w, n, n);
    for (let i = 0; i < n; i++) g[i] -= rhs[i];
    const free = new Uint8Array(n);
    let anyFree = false;
    for (let i = 0; i < n; i++) {
      free[i] = atLower[i] || atUpper[i] ? 0 : 1;
      anyFree = anyFree || free[i] === 1;
    }
    const p = new Float64Array(n);
    if (anyFree) {
      const neg = new Float64Array(n);
      for (let i = 0; i < n; i++) neg[i] = -g[i];
      const { idx, x } = subSolve(gram, n, free, neg);
      idx.forEach((i, k) => { p[i] = x[k]; });
    }
    let pMax = 0;
    for (let i = 0; i < n; i++) pMax = Math.max(pMax, Math.abs(p[i]));
    if (pMax <= tol) {
      let worst = 0;
      let worstValue = -Infinity;
      for (let i = 0; i < n; i++) {
        const wrong = atLower[i] ? -g[i] : atUpper[i] ? g[i] : 0;
        if (wrong > worstValue) { worstValue = wrong; worst = i; }
      }
      if (worstValue <= tol) return { w, iterations: it };
      atLower[worst] = 0;
      atUpper[worst] = 0;
      continue;
    }
    let block = -1;
    let limit = Infinity;
    for (let i = 0; i < n; i++) {
      if (!free[i]) continue;
      const l = p[i] < 0 ? (lower[i] - w[i]) / p[i] : p[i] > 0 ? (upper[i] - w[i]) / p[i] : Infinity;
      if (l < limit) { limit = l; block = i; }
    }
    const alpha = Math.min(1, limit);
    for (let i = 0; i < n; i++) w[i] = clip(w[i] + alpha * p[i], lower[i], upper[i]);
    if (alpha < 1) {
      if (p[block] < 0) { w[block] = lower[block]; atLower[block] = 1; }
      else { w[block] = upper[block]; atUpper[block] = 1; }
    }
  }
  return { w, iterations: maxIter };
}

function projectedNewton(gram, rhs, lower, upper, w, n, tol, maxIter) {
  const objective = (v) => {
    const gv = matVec(gram, v, n, n);
    let f = 0;
    for (let i = 0; i < n; i++) f += 0.5 * v[i] * gv[i] - rhs[i] * v[i];
    return f;
  };
  let f = objective(w);
  for (let it = 1; it <= maxIter; it++) {
    const g = matVec(gram, w, n, n);
    for (let i = 0; i < n; i++) g[i] -= rhs[i];
    let pgMax = 0;
    for (let i = 0; i < n; i++) pgMax = Math.max(pgMax, Math.abs(w[i] - clip(w[i] - g[i], lower[i], upper[i])));
    if (pgMax <= tol) return { w, iterations: it - 1, converged: true };
    const eps = Math.min(1e-3, pgMax);
    const free = new Uint8Array(n);
    const d = new Float64Array(n);
    let anyFree = false;
    for (let i = 0; i < n; i++) {
      const active = (w[i] <= lower[i] + eps && g[i] > 0) || (w[i] >= upper[i] - eps && g[i] < 0);
      free[i] = active ? 0 : 1;
      anyFree = anyFree || !active;
      d[i] = -g[i] / gram[i * n + i];
    }
    if (anyFree) {
      const neg = new Float64Array(n);
      for (let i = 0; i < n; i++) neg[i] = -g[i];
      const { idx, x } = subSolve(gram, n, free, neg);
      idx.forEach((i, k) => { d[i] = x[k]; });
    }
    let step = 1;
    let cand;
    let fc;
    for (;;) {
      cand = new Float64Array(n);
      let decrease = 0;
      for (let i = 0; i < n; i++) {
        cand[i] = clip(w[i] + step * d[i], lower[i], upper[i]);
        decrease += g[i] * (cand[i] - w[i]);
      }
      fc = objective(cand);
      if (fc <= f + 1e-4 * decrease || step < 1e-12) break;
      step *= 0.5;
    }
    w = cand;
    f = fc;
  }
  return { w, iterations: maxIter, converged: false };
}

/** Landmarks -> Float64Array (n*3) in the viewer frame: x right, y up, z toward the viewer, pixels. */
export function landmarksToViewerFrame(landmarks, width = 1, height = 1, normalised = true) {
  const n = landmarks.length;
  const out = new Float64Array(n * 3);
  const sx = normalised ? width : 1;
  const sy = normalised ? height : 1;
  for (let i = 0; i < n; i++) {
    const p = landmarks[i];
    const x = Array.isArray(p) ? p[0] : p.x;
    const y = Array.isArray(p) ? p[1] : p.y;
    const z = Array.isArray(p) ? p[2] : p.z;
    out[i * 3] = x * sx;
    out[i * 3 + 1] = -y * sy;
    out[i * 3 + 2] = -z * sx;
  }
  return out;
}

export class FaceSolver {
  /** @param {object} m the JSON of GET /api/tracking/solver.json */
  constructor(m) {
    if (m.format !== "vrhub-solver/1") throw new Error(`unknown solver format ${m.format}`);
    this.names = m.names;
    this.n = m.names.length;
    this.neutral = Float64Array.from(m.neutral);
    this.procrustesWeights = Float64Array.from(m.procrustes_weights);
    this.gram = Float64Array.from(m.gram);
    this.projector = Float64Array.from(m.projector);
    this.lower = Float64Array.from(m.lower);
    this.upper = Float64Array.from(m.upper);
    this.unitMm = m.unit_mm;
    this.gazeInfo = m.gaze;
    this.focalInWidths = m.focal_in_widths;
    this.source = m.source;
    this.index = Object.fromEntries(m.names.map((name, i) => [name, i]));
    const n = this.n;
    this.inverse = new Float64Array(n * n);
    for (let j = 0; j < n; j++) {
      const e = new Float64Array(n);
      e[j] = 1;
      const col = choleskySolve(this.gram, e, n);
      for (let i = 0; i < n; i++) this.inverse[i * n + j] = col[i];
    }
    this.neutralOffset = new Float64Array(468 * 3);
    this.gazeOffset = [[0, 0], [0, 0]];
    // Start each solve from the previous frame's weights (video); the minimiser does not depend on it.
    this.warmStart = true;
    this.previous = null;
  }

  static async load(url = "/api/tracking/solver.json") {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`could not load the face solver (${response.status} ${response.statusText})`);
    return new FaceSolver(await response.json());
  }

  /** Pose-free landmarks (Float64Array n*3, template units) and the head pose. */
  poseFree(landmarks, width = 1, height = 1, normalised = true) {
    const pts = landmarksToViewerFrame(landmarks, width, height, normalised);
    const count = landmarks.length;
    const { s, r, t, q } = weightedProcrustes(this.neutral, pts, this.procrustesWeights, 468);
    const local = new Float64Array(count * 3);
    for (let i = 0; i < count; i++) {
      const d0 = pts[i * 3] - t[0], d1 = pts[i * 3 + 1] - t[1], d2 = pts[i * 3 + 2] - t[2];
      // (pts - t) @ R, then / s
      local[i * 3] = (d0 * r[0] + d1 * r[3] + d2 * r[6]) / s;
      local[i * 3 + 1] = (d0 * r[1] + d1 * r[4] + d2 * r[7]) / s;
      local[i * 3 + 2] = (d0 * r[2] + d1 * r[5] + d2 * r[8]) / s;
    }
    const w = width;
    const h = height;
    const focal = this.focalInWidths * w;
    const positionMm = [((t[0] - w / 2) / s) * this.unitMm, ((t[1] + h / 2) / s) * this.unitMm, -(focal / s) * this.unitMm];
    return { local, pose: { rotation: r, quaternion: q, scale: s, translation: t, positionMm } };
  }

  gaze(local) {
    const out = [];
    const rows = [[...this.gazeInfo.left, 1], [...this.gazeInfo.right, -1]];
    rows.forEach(([outer, inner, iris, outward], row) => {
      const mid = [0, 1, 2].map((c) => 0.5 * (local[outer * 3 + c] + local[inner * 3 + c]));
      const half = 0.5 * Math.hypot(local[outer * 3] - local[inner * 3], local[outer * 3 + 1] - local[inner * 3 + 1]) || 1;
      const rel = [0, 1, 2].map((c) => local[iris * 3 + c] - mid[c]);
      out.push([(outward * rel[0]) / half - this.gazeOffset[row][0], rel[1] / half - this.gazeOffset[row][1]]);
    });
    return out;
  }

  /**
   * @param landmarks array of {x, y, z} (mediapipe results) or [x, y, z], 468 or 478 of them
   * @returns {{weights: Float64Array, pose: object, residualRms: number, iterations: number}}
   */
  solve(landmarks, width = 1, height = 1, normalised = true) {
    const { local, pose } = this.poseFree(landmarks, width, height, normalised);
    const residual = new Float64Array(468 * 3);
    let sq = 0;
    for (let i = 0; i < 468 * 3; i++) {
      residual[i] = local[i] - this.neutral[i] - this.neutralOffset[i];
      sq += residual[i] * residual[i];
    }
    const rhs = matVec(this.projector, residual, this.n, 468 * 3);
    const { w, iterations } = solveBoxQP(this.gram, rhs, this.lower, this.upper, this.inverse, this.n, 1e-10, 12, this.previous);
    if (this.warmStart) this.previous = Float64Array.from(w);
    if (landmarks.length >= 478) {
      const g = this.gaze(local);
      [["Left", 0], ["Right", 1]].forEach(([side, row]) => {
        const h = g[row][0] / this.gazeInfo.horizontal_full;
        const v = g[row][1] / this.gazeInfo.vertical_full;
        w[this.index[`eyeLookOut${side}`]] = clip(h, 0, 1);
        w[this.index[`eyeLookIn${side}`]] = clip(-h, 0, 1);
        w[this.index[`eyeLookUp${side}`]] = clip(v, 0, 1);
        w[this.index[`eyeLookDown${side}`]] = clip(-v, 0, 1);
      });
    }
    return { weights: w, pose, residualRms: Math.sqrt(sq / (468 * 3)), iterations };
  }

  /**
   * Learn this person's neutral from frames of a (mostly) relaxed face: rank the frames by jawOpen
   * explaining (frame − their median), keep the half with the mouth least open (at least one; ties
   * by order) and take its pose-free median. Same steps as FaceSolver.calibrate_neutral in Python.
   */
  calibrateNeutral(frames, width = 1, height = 1, normalised = true) {
    if (!frames.length) return;
    const locals = frames.map((f) => this.poseFree(f, width, height, normalised).local);
    const median = (values) => {
      const sorted = Float64Array.from(values).sort();
      const k = sorted.length;
      return k % 2 ? sorted[(k - 1) / 2] : 0.5 * (sorted[k / 2 - 1] + sorted[k / 2]);
    };
    const size = 468 * 3;
    const mid = new Float64Array(size);
    for (let i = 0; i < size; i++) mid[i] = median(locals.map((l) => l[i]));
    const jaw = this.index.jawOpen;
    const opening = locals.map((l) => {
      const d = new Float64Array(size);
      for (let i = 0; i < size; i++) d[i] = l[i] - mid[i];
      const rhs = matVec(this.projector, d, this.n, size);
      return Math.floor(solveBoxQP(this.gram, rhs, this.lower, this.upper, this.inverse, this.n).w[jaw] * 1e6);
    });
    const order = opening.map((e, i) => [e, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const keep = order.slice(0, Math.max(1, Math.floor((locals.length + 1) / 2))).map((p) => p[1]).sort((a, b) => a - b);
    const kept = keep.map((i) => locals[i]);
    for (let i = 0; i < size; i++) this.neutralOffset[i] = median(kept.map((l) => l[i])) - this.neutral[i];
    this.gazeOffset = [[0, 0], [0, 0]];
    if (keep.every((i) => frames[i].length >= 478)) {
      const gazes = kept.map((l) => this.gaze(l));
      this.gazeOffset = [0, 1].map((row) => [0, 1].map((c) => median(gazes.map((g) => g[row][c]))));
    }
  }

  resetCalibration() {
    this.neutralOffset.fill(0);
    this.gazeOffset = [[0, 0], [0, 0]];
  }
}
