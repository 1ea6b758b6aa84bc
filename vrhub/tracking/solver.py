"""Face landmarks -> the 52 ARKit weights and the head pose, by bounded least squares.

The solver works in the frame of a neutral landmark template (468 points, +Y up, +Z toward the
viewer, the template's own units). Per frame:

1. the landmarks are turned into a right-handed viewer frame (x right, y up, z toward the viewer),
2. the head pose (scale, rotation, translation) is found by weighted Procrustes (Horn's quaternion
   method) of the template onto the observed landmarks, using the template's rigid Procrustes weights,
3. the pose is removed and the residual ``local - neutral`` (1404 numbers) is explained as a
   non-negative combination of the rig's blendshape deltas on the landmark vertices:
   ``min_w |W^½ (B w - d)|² + λ|w|²`` with ``0 <= w <= 1``. ``BᵀWB + λI`` (52x52) and ``BᵀW``
   (52x1404) are precomputed, so a frame costs one matrix-vector product and a few 52x52 solves
   (projected Newton with an Armijo arc search; the minimiser is unique, so any correct method
   agrees with it),
4. eye gaze (eyeLook*) comes from the iris centres (landmarks 468 and 473) when 478 landmarks are
   given: the 468 landmark vertices carry eyelids, not eyeballs, so the least squares cannot see gaze.

The same matrices are exported as JSON (:func:`solver_matrices_json`); ``vrhub/web/solver.js``
implements the same steps, so a browser gets the same weights as Python for the same landmarks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vrhub.pipeline.types import ARKIT_BLENDSHAPES

#: Landmark indices used for gaze (mediapipe face mesh, "left" = the subject's own left).
LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_IRIS = 263, 362, 473
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_IRIS = 33, 133, 468
#: Iris travel, in half eye widths, that counts as weight 1 of eyeLookIn/Out and eyeLookUp/Down.
#: Approximation: eyeball radius ~1.2 cm, half eye width ~1.5 cm, ARKit full look ~30 deg sideways
#: and ~25 deg up/down.
GAZE_HORIZONTAL_FULL = 0.40
GAZE_VERTICAL_FULL = 0.34
#: Shapes solved from the iris, not from the least squares.
GAZE_SHAPES: tuple[str, ...] = tuple(n for n in ARKIT_BLENDSHAPES if n.startswith("eyeLook"))
#: Shapes the face-mesh landmarks cannot see: the tongue has no landmark, and what tongueOut does to
#: the lips is a subset of jawOpen, so solving it would only steal weight from jawOpen. Always 0.
UNOBSERVABLE_SHAPES: tuple[str, ...] = ("tongueOut",)
#: Assumed focal length of the camera, in image widths (about 53 degrees horizontal field of view),
#: used only for the head position estimate.
FOCAL_IN_WIDTHS = 1.0


@dataclass(frozen=True)
class SolverBasis:
    """A neutral landmark template and the rig's blendshapes on it.

    neutral : (468, 3) float64 — template landmarks, +Y up, +Z toward the viewer, any unit.
    deltas : (52, 468, 3) float64 — each ARKit shape's displacement at weight 1, same unit.
    procrustes_weights : (468,) float64 — >= 0, weights of the rigid points used for head pose.
    unit_mm : millimetres per template unit (10 for centimetres, 1000 for metres).
    names : the 52 shape names, in ARKit order.
    source : where the deltas came from (shown in the JSON and the bench).
    """

    neutral: np.ndarray
    deltas: np.ndarray
    procrustes_weights: np.ndarray
    unit_mm: float = 10.0
    names: tuple[str, ...] = ARKIT_BLENDSHAPES
    source: str = ""


@dataclass(frozen=True)
class SolverMatrices:
    """Everything a solver needs per frame, precomputed from a :class:`SolverBasis`.

    neutral : (468, 3) float64, template units.
    procrustes_weights : (468,) float64, normalised to sum 1.
    gram : (52, 52) float64 — ``BᵀWB + λI`` (rows/cols of gaze shapes are identity, rhs 0).
    projector : (52, 1404) float64 — ``BᵀW`` applied to the flattened residual (x, y, z per landmark);
        W = per-landmark weight (eyelids heavier) times per-coordinate weight (z lighter).
    lower, upper : (52,) float64 bounds.
    solved : (52,) bool — shapes solved by the least squares (gaze comes from the iris; the
        :data:`UNOBSERVABLE_SHAPES` stay 0).
    """

    names: tuple[str, ...]
    neutral: np.ndarray
    procrustes_weights: np.ndarray
    gram: np.ndarray
    projector: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    solved: np.ndarray
    unit_mm: float
    regularisation: float
    z_weight: float
    source: str = ""


@dataclass(frozen=True)
class HeadPose:
    """Head pose in the viewer frame (x right, y up, z toward the viewer).

    rotation : (3, 3) float64 — observed = scale * rotation @ template + translation.
    quaternion : (4,) float64 — the same rotation as (x, y, z, w), w >= 0.
    scale : image pixels per template unit.
    translation : (3,) float64 pixels (image origin, y up).
    position_mm : (3,) float64 — head position relative to the camera in mm, from the face scale
        and an assumed focal length (:data:`FOCAL_IN_WIDTHS`); z is negative (in front of the camera).
    """

    rotation: np.ndarray
    quaternion: np.ndarray
    scale: float
    translation: np.ndarray
    position_mm: np.ndarray


@dataclass(frozen=True)
class TrackingResult:
    """weights : (52,) float64 in [0, 1], ARKit order. residual_rms : template units."""

    weights: np.ndarray
    pose: HeadPose
    residual_rms: float
    iterations: int = 0

    def as_dict(self) -> dict[str, float]:
        return dict(zip(ARKIT_BLENDSHAPES, (float(w) for w in self.weights), strict=True))


# ----------------------------------------------------------------------------- matrices


#: Least-squares weight of the eyelid contour landmarks relative to the others. The lid contours
#: carry the eye state; with weight 1 the many landmarks around the eye that a real blink moves
#: differently from the rig outvote them (a fully closed eye in the GRID test clip solved to
#: eyeBlink 0.54-0.61; with 4: 0.87-0.91, open eyes unchanged at 0-0.15).
EYELID_WEIGHT = 4.0


def default_landmark_weights() -> np.ndarray:
    """(468,) float64 least-squares weights: :data:`EYELID_WEIGHT` on the lid contours, 1 elsewhere."""
    from vrhub.geometry.canonical_face import EYE_RING_L, EYE_RING_R  # noqa: PLC0415

    weights = np.ones(468)
    weights[list(EYE_RING_L) + list(EYE_RING_R)] = EYELID_WEIGHT
    return weights


def build_solver_matrices(
    basis: SolverBasis,
    regularisation: float = 0.01,
    z_weight: float = 0.5,
    landmark_weights: np.ndarray | None = None,
) -> SolverMatrices:
    """Precompute the normal equations of the bounded least squares.

    regularisation : λ relative to the mean diagonal of ``BᵀWB`` (keeps the problem strictly
        convex, so the minimiser is unique, and damps shapes the landmarks barely see).
    z_weight : weight of the depth coordinate relative to x and y (mediapipe's z is noisier).
    landmark_weights : (468,) per-landmark weights; default :func:`default_landmark_weights`.
    """
    neutral = np.asarray(basis.neutral, np.float64)
    deltas = np.asarray(basis.deltas, np.float64)
    n_shapes = len(basis.names)
    if neutral.shape != (468, 3) or deltas.shape != (n_shapes, 468, 3):
        raise ValueError(f"basis shapes {neutral.shape}, {deltas.shape}; want (468, 3), ({n_shapes}, 468, 3)")
    pw = np.clip(np.asarray(basis.procrustes_weights, np.float64), 0.0, None)
    if pw.shape != (468,) or pw.sum() <= 0:
        raise ValueError("procrustes_weights must be (468,) with a positive sum")
    solved = np.array([n not in GAZE_SHAPES and n not in UNOBSERVABLE_SHAPES for n in basis.names])
    lw = default_landmark_weights() if landmark_weights is None else np.asarray(landmark_weights, np.float64)
    coord_w = (lw[:, None] * np.array([1.0, 1.0, z_weight])[None, :]).reshape(-1)  # (1404,)
    b = deltas.reshape(n_shapes, -1) * solved[:, None]  # (52, 1404)
    projector = b * coord_w[None, :]
    gram = projector @ b.T
    diag = np.diag(gram)[solved]
    lam = regularisation * float(diag.mean()) if diag.size and diag.mean() > 0 else regularisation
    gram = gram + lam * np.eye(n_shapes)
    gram[~solved, :] = 0.0
    gram[:, ~solved] = 0.0
    gram[~solved, ~solved] = 1.0
    return SolverMatrices(
        names=tuple(basis.names),
        neutral=neutral,
        procrustes_weights=pw / pw.sum(),
        gram=gram,
        projector=projector,
        lower=np.zeros(n_shapes),
        upper=np.ones(n_shapes),
        solved=solved,
        unit_mm=float(basis.unit_mm),
        regularisation=lam,
        z_weight=z_weight,
        source=basis.source,
    )


def solver_matrices_to_dict(m: SolverMatrices) -> dict:
    """JSON-able form read by ``vrhub/web/solver.js`` (row-major nested lists, float32 precision)."""

    def rounded(a: np.ndarray) -> list:
        # 9 significant digits (not 9 decimals: small projector entries kept only ~4 digits)
        a = np.asarray(a, np.float64)
        scale = 10.0 ** np.floor(np.log10(np.where(a == 0, 1.0, np.abs(a))))
        return ((a / scale).round(8) * scale).tolist()

    return {
        "format": "vrhub-solver/1",
        "names": list(m.names),
        "source": m.source,
        "unit_mm": m.unit_mm,
        "regularisation": m.regularisation,
        "z_weight": m.z_weight,
        "neutral": rounded(m.neutral.reshape(-1)),
        "procrustes_weights": rounded(m.procrustes_weights),
        "gram": rounded(m.gram.reshape(-1)),
        "projector": rounded(m.projector.reshape(-1)),
        "lower": rounded(m.lower),
        "upper": rounded(m.upper),
        "solved": [bool(s) for s in m.solved],
        "gaze": {
            "left": [LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_IRIS],
            "right": [RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_IRIS],
            "horizontal_full": GAZE_HORIZONTAL_FULL,
            "vertical_full": GAZE_VERTICAL_FULL,
        },
        "focal_in_widths": FOCAL_IN_WIDTHS,
    }


def solver_matrices_from_dict(d: dict) -> SolverMatrices:
    """Inverse of :func:`solver_matrices_to_dict` (the JSON's rounding is what both sides use)."""
    n = len(d["names"])
    return SolverMatrices(
        names=tuple(d["names"]),
        neutral=np.array(d["neutral"], np.float64).reshape(468, 3),
        procrustes_weights=np.array(d["procrustes_weights"], np.float64),
        gram=np.array(d["gram"], np.float64).reshape(n, n),
        projector=np.array(d["projector"], np.float64).reshape(n, 468 * 3),
        lower=np.array(d["lower"], np.float64),
        upper=np.array(d["upper"], np.float64),
        solved=np.array(d["solved"], bool),
        unit_mm=float(d["unit_mm"]),
        regularisation=float(d["regularisation"]),
        z_weight=float(d["z_weight"]),
        source=str(d.get("source", "")),
    )


# ----------------------------------------------------------------------------- geometry


def landmarks_to_viewer_frame(
    landmarks: np.ndarray, image_size: tuple[int, int] | None = None, normalised: bool | None = None
) -> np.ndarray:
    """Mediapipe landmarks -> (n, 3) float64 pixels in a viewer frame (x right, y up, z toward viewer).

    landmarks : (n, 3) — x, y image coordinates (y down) and mediapipe's relative depth z (smaller is
        nearer the camera), either in pixels (z times the image width, as in FaceObservation) or
        normalised to [0, 1] as mediapipe returns them.
    image_size : (width, height) in pixels; needed for normalised input (else a square image).
    normalised : force the interpretation; by default values within [-1, 2] count as normalised.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 2 or lm.shape[1] < 3 or lm.shape[0] < 468:
        raise ValueError(f"landmarks must be (468 or 478, 3), got {lm.shape}")
    if normalised is None:
        normalised = bool(np.abs(lm[:, :2]).max() <= 2.0)
    out = np.empty((lm.shape[0], 3))
    if normalised:
        w, h = image_size if image_size is not None else (1, 1)
        out[:, 0] = lm[:, 0] * w
        out[:, 1] = -lm[:, 1] * h
        out[:, 2] = -lm[:, 2] * w
    else:
        out[:, 0] = lm[:, 0]
        out[:, 1] = -lm[:, 1]
        out[:, 2] = -lm[:, 2]
    return out


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(4,) (x, y, z, w) unit quaternion -> (3, 3) rotation matrix."""
    x, y, z, w = (float(v) for v in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def weighted_procrustes(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Similarity transform with ``target ≈ s * R @ source + t`` (Horn's quaternion method).

    source, target : (n, 3) float64; weights : (n,) float64 >= 0 summing to 1.
    Returns (s, R (3, 3), t (3,), q (4,) as x, y, z, w with w >= 0).
    """
    ms = weights @ source
    mt = weights @ target
    a = source - ms
    b = target - mt
    m = (a * weights[:, None]).T @ b  # (3, 3): sum w a_i b_j
    sxx, sxy, sxz = m[0]
    syx, syy, syz = m[1]
    szx, szy, szz = m[2]
    n = np.array(
        [
            [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
            [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
            [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
            [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
        ]
    )
    _, vecs = np.linalg.eigh(n)
    qw, qx, qy, qz = vecs[:, -1]
    q = np.array([qx, qy, qz, qw])
    if qw < 0:
        q = -q
    q /= np.linalg.norm(q)
    r = quaternion_to_matrix(q)
    ra = a @ r.T
    s = float(np.sum(weights[:, None] * ra * b) / np.sum(weights * np.einsum("ij,ij->i", a, a)))
    t = mt - s * (r @ ms)
    return s, r, t, q


def solve_box_qp(
    gram: np.ndarray,
    rhs: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    tol: float = 1e-10,
    newton_iter: int = 12,
    inverse: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``argmin ½wᵀGw - rhsᵀw`` subject to ``lower <= w <= upper``, G symmetric positive definite.

    Projected Newton (Bertsekas 1982) started from the clipped unconstrained minimiser: Newton steps
    on the free variables, diagonally scaled gradient steps on the ε-active ones, an Armijo search
    along the projection arc; typically 3-10 iterations, each one solve of at most 52x52. Projected
    Newton can crawl when a variable sits just off its bound (seen on 1 frame in 150 of the test
    video), so after ``newton_iter`` iterations a primal active-set method (Nocedal & Wright 16.5;
    finite, one bound added or dropped per solve) finishes from there. (A primal-dual active set
    method was tried first: it cycles on these blendshape Gram matrices, which are not M-matrices.)
    ``inverse`` (optional, ``G⁻¹``) saves the first solve; ``start`` (e.g. the previous video
    frame's weights) replaces the starting point: the minimiser is unique, so the start changes only
    the number of iterations. Returns (w (k,), iterations).
    """
    if start is not None:
        w0 = start
    else:
        w0 = inverse @ rhs if inverse is not None else np.linalg.solve(gram, rhs)
    w, iters, converged = _projected_newton(
        gram, rhs, lower, upper, np.clip(w0, lower, upper), tol, newton_iter
    )
    if converged:
        return w, iters
    w, more = _primal_active_set(gram, rhs, lower, upper, w, tol)
    return w, iters + more


def _primal_active_set(
    gram: np.ndarray,
    rhs: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    w: np.ndarray,
    tol: float,
    max_iter: int = 500,
) -> tuple[np.ndarray, int]:
    """Primal active-set method for the box QP from a feasible ``w``.

    The working set starts as the variables on a bound. Each iteration solves the Newton step of the
    free variables; a step that would cross a bound stops at it and adds it to the working set; a
    zero step drops the bound whose multiplier has the wrong sign (the most wrong first), or ends.
    """
    w = w.copy()
    at_lower = w <= lower
    at_upper = (w >= upper) & ~at_lower
    for it in range(1, max_iter + 1):
        g = gram @ w - rhs
        free = ~(at_lower | at_upper)
        p = np.zeros_like(w)
        if free.any():
            p[free] = np.linalg.solve(gram[free][:, free], -g[free])
        if np.abs(p).max() <= tol:
            # multipliers: g_i >= 0 at a lower bound, g_i <= 0 at an upper bound
            wrong = np.where(at_lower, -g, 0.0) + np.where(at_upper, g, 0.0)
            worst = int(np.argmax(wrong))
            if wrong[worst] <= tol:
                return w, it
            at_lower[worst] = at_upper[worst] = False
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            limit = np.where(p < 0, (lower - w) / p, np.where(p > 0, (upper - w) / p, np.inf))
        limit[~free] = np.inf
        block = int(np.argmin(limit))
        alpha = min(1.0, float(limit[block]))
        w = np.clip(w + alpha * p, lower, upper)
        if alpha < 1.0:
            if p[block] < 0:
                w[block] = lower[block]
                at_lower[block] = True
            else:
                w[block] = upper[block]
                at_upper[block] = True
    return w, max_iter


def _projected_newton(
    gram: np.ndarray,
    rhs: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    w: np.ndarray,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, int, bool]:
    """Projected Newton (Bertsekas 1982) with an Armijo search along the projection arc.

    Returns (w, iterations, converged)."""
    diag = np.diag(gram).copy()

    def objective(v: np.ndarray) -> float:
        return 0.5 * float(v @ (gram @ v)) - float(rhs @ v)

    f = objective(w)
    for it in range(1, max_iter + 1):
        g = gram @ w - rhs
        pg = w - np.clip(w - g, lower, upper)
        if np.abs(pg).max() <= tol:
            return w, it - 1, True
        eps = min(1e-3, float(np.abs(pg).max()))
        active = ((w <= lower + eps) & (g > 0)) | ((w >= upper - eps) & (g < 0))
        free = ~active
        d = -g / diag
        if free.any():
            d[free] = np.linalg.solve(gram[free][:, free], -g[free])
        step = 1.0
        while True:
            cand = np.clip(w + step * d, lower, upper)
            fc = objective(cand)
            if fc <= f + 1e-4 * float(g @ (cand - w)) or step < 1e-12:
                break
            step *= 0.5
        w, f = cand, fc
    return w, max_iter, False


# ----------------------------------------------------------------------------- solver


@dataclass
class FaceSolver:
    """Landmarks -> :class:`TrackingResult`. Holds the matrices and an optional personal neutral.

    ``calibrate_neutral(frames)`` records the pose-free offset of this person's relaxed face from
    the template, which is then subtracted from every frame (removes identity bleeding into weights).
    """

    matrices: SolverMatrices
    inverse: np.ndarray = field(init=False, repr=False)
    neutral_offset: np.ndarray = field(default_factory=lambda: np.zeros((468, 3)))
    gaze_offset: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    #: Start each solve from the previous frame's weights (video); the result does not depend on it.
    warm_start: bool = True
    previous: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.inverse = np.linalg.inv(self.matrices.gram)

    def pose_free(
        self, landmarks: np.ndarray, image_size: tuple[int, int] | None = None, normalised: bool | None = None
    ) -> tuple[np.ndarray, HeadPose]:
        """(n, 3) landmarks in template units with the head pose removed, and the pose."""
        m = self.matrices
        pts = landmarks_to_viewer_frame(landmarks, image_size, normalised)
        s, r, t, q = weighted_procrustes(m.neutral, pts[:468], m.procrustes_weights)
        local = ((pts - t) @ r) / s
        if image_size is not None:
            width, height = float(image_size[0]), float(image_size[1])
        else:  # unknown image: assume the face spans 40% of a square frame
            width = height = float(np.ptp(pts[:468, 0])) * 2.5 or 1.0
        focal = FOCAL_IN_WIDTHS * width
        depth_mm = focal / s * m.unit_mm
        centre = np.array([t[0] - width / 2, t[1] + height / 2])
        position = np.array([centre[0] / s * m.unit_mm, centre[1] / s * m.unit_mm, -depth_mm])
        return local, HeadPose(rotation=r, quaternion=q, scale=s, translation=t, position_mm=position)

    def solve(
        self, landmarks: np.ndarray, image_size: tuple[int, int] | None = None, normalised: bool | None = None
    ) -> TrackingResult:
        m = self.matrices
        local, pose = self.pose_free(landmarks, image_size, normalised)
        residual = (local[:468] - m.neutral - self.neutral_offset).reshape(-1)
        rhs = m.projector @ residual
        w, iters = solve_box_qp(m.gram, rhs, m.lower, m.upper, inverse=self.inverse, start=self.previous)
        if self.warm_start:
            self.previous = w
        if local.shape[0] >= 478:
            w = w.copy()
            self._apply_gaze(local, w)
        rms = float(np.sqrt(np.mean(residual**2)))
        return TrackingResult(weights=w, pose=pose, residual_rms=rms, iterations=iters)

    def gaze(self, local: np.ndarray) -> np.ndarray:
        """(2, 2) float64 — (horizontal outward, vertical up) iris offsets in half eye widths, rows left, right."""
        out = np.zeros((2, 2))
        for row, (outer, inner, iris, outward) in enumerate(
            (
                (LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_IRIS, 1.0),
                (RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_IRIS, -1.0),
            )
        ):
            mid = 0.5 * (local[outer] + local[inner])
            half = 0.5 * float(np.linalg.norm(local[outer, :2] - local[inner, :2])) or 1.0
            rel = local[iris] - mid
            out[row] = (outward * rel[0] / half, rel[1] / half)
        return out - self.gaze_offset

    def _apply_gaze(self, local: np.ndarray, w: np.ndarray) -> None:
        g = self.gaze(local)
        index = {n: i for i, n in enumerate(self.matrices.names)}
        for side, row in (("Left", 0), ("Right", 1)):
            h = g[row, 0] / GAZE_HORIZONTAL_FULL
            v = g[row, 1] / GAZE_VERTICAL_FULL
            w[index[f"eyeLookOut{side}"]] = min(max(h, 0.0), 1.0)
            w[index[f"eyeLookIn{side}"]] = min(max(-h, 0.0), 1.0)
            w[index[f"eyeLookUp{side}"]] = min(max(v, 0.0), 1.0)
            w[index[f"eyeLookDown{side}"]] = min(max(-v, 0.0), 1.0)

    def calibrate_neutral(
        self,
        frames: Sequence[np.ndarray],
        image_size: tuple[int, int] | None = None,
        normalised: bool | None = None,
    ) -> None:
        """Learn this person's neutral face from frames of a (mostly) relaxed face.

        People often talk while calibrating, so the frames are ranked by how far the jaw is open
        relative to their own median (jawOpen explaining ``frame - median``), and the pose-free median
        of the half with the mouth least open (at least one frame; ties by order) becomes the
        neutral; a blink is outvoted by the median. Same steps in ``solver.js``.
        """
        m = self.matrices
        locals_ = [self.pose_free(f, image_size, normalised)[0] for f in frames]
        if not locals_:
            return
        stack = np.stack([lo[:468] for lo in locals_])  # (k, 468, 3)
        median = np.median(stack, axis=0)
        jaw = m.names.index("jawOpen")
        opening = []
        for lo in stack:
            rhs = m.projector @ (lo - median).reshape(-1)
            w, _ = solve_box_qp(m.gram, rhs, m.lower, m.upper, inverse=self.inverse)
            opening.append(math.floor(float(w[jaw]) * 1e6))  # quantised: the same ranking as solver.js
        keep = np.argsort(np.array(opening), kind="stable")[: max(1, (len(stack) + 1) // 2)]
        keep.sort()
        self.neutral_offset = np.median(stack[keep], axis=0) - m.neutral
        self.gaze_offset = np.zeros((2, 2))
        if all(locals_[i].shape[0] >= 478 for i in keep):
            self.gaze_offset = np.median(np.stack([self.gaze(locals_[i]) for i in keep]), axis=0)

    def reset_calibration(self) -> None:
        self.neutral_offset = np.zeros((468, 3))
        self.gaze_offset = np.zeros((2, 2))


# ----------------------------------------------------------------------------- defaults


def rigid_landmark_weights(deltas: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """(468,) float64 Procrustes weights: 1 on landmarks that no blendshape moves by ``threshold``
    or more (template units; 0.05 cm), 0 elsewhere.

    mediapipe's own 33 Procrustes landmarks include jaw-line points (136, 365) that jawOpen moves by
    2.5 cm, which would tilt the estimated head whenever the mouth opens. The landmarks the rig keeps
    still (about 50: forehead, temples, nose bridge) make the pose independent of the expression.
    """
    motion = np.linalg.norm(np.asarray(deltas, np.float64), axis=2).max(axis=0)
    return (motion < threshold).astype(np.float64)


def default_solver_basis() -> SolverBasis:
    """The rig's own blendshapes (vrhub.geometry.blendshapes) on mediapipe's canonical face.

    The canonical face (centimetres) is the neutral template; the rig builds its 52 shapes on it in
    metres, which are converted to centimetres here.
    """
    from vrhub.geometry.blendshapes import landmark_blendshape_basis  # noqa: PLC0415
    from vrhub.geometry.canonical_face import load_canonical_face  # noqa: PLC0415

    face = load_canonical_face()
    neutral_cm = np.asarray(face.vertices, np.float64)
    deltas_cm = np.asarray(landmark_blendshape_basis(neutral_cm / 100.0), np.float64) * 100.0
    return SolverBasis(
        neutral=neutral_cm,
        deltas=deltas_cm,
        procrustes_weights=rigid_landmark_weights(deltas_cm),
        unit_mm=10.0,
        source="vrhub.geometry.blendshapes on the canonical face",
    )


_DEFAULT: SolverMatrices | None = None


def default_solver_matrices() -> SolverMatrices:
    """Built once per process from :func:`default_solver_basis`."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = build_solver_matrices(default_solver_basis())
    return _DEFAULT


def solver_matrices_json(matrices: SolverMatrices | None = None) -> str:
    """The solver matrices as JSON text for the browser (``GET /api/tracking/solver.json``)."""
    m = matrices if matrices is not None else default_solver_matrices()
    return json.dumps(solver_matrices_to_dict(m), separators=(",", ":"), allow_nan=False)


def rotation_to_euler_degrees(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw about +Y, pitch about +X, roll about +Z) in degrees for R = Ry(yaw) Rx(pitch) Rz(roll)."""
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -float(r[1, 2])))))
    yaw = math.degrees(math.atan2(float(r[0, 2]), float(r[2, 2])))
    roll = math.degrees(math.atan2(float(r[1, 0]), float(r[1, 1])))
    return yaw, pitch, roll
