"""The 52 ARKit blendshapes and 15 Oculus visemes, computed procedurally for one head.

Every shape is built from this head's own landmarks (``vertices[0:468]`` are mediapipe's canonical
face-mesh landmarks, in mediapipe's order): eyeBlink moves each upper-lid landmark to its own
lower-lid partner, jawOpen rotates the jaw about a pivot placed from this face's proportions,
mouthSmile moves this face's mouth corners, and so on. Each shape names a few *driven* landmarks
with explicit offsets (zero offsets pin what must not move, e.g. the upper lip during
mouthLowerDown); every other vertex within the shape's radius gets a Gaussian-weighted
(Shepard) average of those offsets and of zero offsets on the landmarks farther out, so the motion
falls off smoothly into the neighbouring skin. Rigid parts (eyeballs, teeth, tongue) move only
with the shapes that move them: eyeLook* rotates the eyeballs about the eye centre, the jaw shapes
carry the lower teeth and tongue, tongueOut pushes the tongue out.

Offsets are written in "canonical centimetres" (mediapipe's canonical face is life-size in cm) and
scaled by this face's outer-eye-corner distance, so a small face gets smaller motions.

Conventions: metres, +Y up, +Z toward the viewer, "Left" = the avatar's own left = +X.

Public functions:

- :func:`compute_blendshapes` — (67, n, 3) deltas for a whole head (52 ARKit, then 15 visemes).
- :func:`landmark_blendshape_basis` — (52, 468, 3) deltas on the 468 landmarks alone; identical to
  rows ``[:52, :468]`` of :func:`compute_blendshapes` on any head with those landmarks, because
  every landmark offset is derived from the landmarks only. The tracking solver and the face
  stage's expression neutralisation use it.
- :func:`jaw_rig` — the jaw pivot, hinge axis, opening angle and per-vertex jaw weight shared by
  jawOpen and the skeleton (so the ``jaw`` joint rotated by ``JAW_OPEN_DEGREES`` reproduces jawOpen).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vrhub.geometry.canonical_face import load_canonical_face
from vrhub.geometry.topology import _build_adjacency, mesh_adjacency
from vrhub.pipeline.types import ARKIT_BLENDSHAPES, VISEMES

# --------------------------------------------------------------------------------------------
# mediapipe landmark index sets ("LEFT" in mediapipe = the subject's left = the avatar's left = +X)
# --------------------------------------------------------------------------------------------

#: Upper / lower lid landmarks, outer corner to inner corner, paired position by position.
LID_UPPER = {
    "L": np.array([466, 388, 387, 386, 385, 384, 398]),
    "R": np.array([246, 161, 160, 159, 158, 157, 173]),
}
LID_LOWER = {
    "L": np.array([249, 390, 373, 374, 380, 381, 382]),
    "R": np.array([7, 163, 144, 145, 153, 154, 155]),
}
EYE_CORNERS = {"L": np.array([263, 362]), "R": np.array([33, 133])}  # outer, inner
#: The ring of landmarks just outside the lid contour (upper half), outer to inner.
LID_CREASE_UPPER = {
    "L": np.array([467, 260, 259, 257, 258, 286, 414]),
    "R": np.array([247, 30, 29, 27, 28, 56, 190]),
}
LID_CREASE_UPPER_2 = {
    "L": np.array([342, 445, 444, 443, 442, 441, 413]),
    "R": np.array([113, 225, 224, 223, 222, 221, 189]),
}
LID_CREASE_LOWER = {
    "L": np.array([255, 339, 254, 253, 252, 256, 341]),
    "R": np.array([25, 110, 24, 23, 22, 26, 112]),
}
#: Eyebrow landmarks (upper row then lower row), outer to inner.
BROW = {
    "L": np.array([300, 293, 334, 296, 336, 276, 283, 282, 295, 285]),
    "R": np.array([70, 63, 105, 66, 107, 46, 53, 52, 65, 55]),
}
MOUTH_CORNER_OUTER = {"L": 291, "R": 61}
MOUTH_CORNER_INNER = {"L": 308, "R": 78}
#: Lip contours from the avatar's right corner to its left corner (corners excluded), paired.
LIP_UPPER_OUTER = np.array([185, 40, 39, 37, 0, 267, 269, 270, 409])
LIP_LOWER_OUTER = np.array([146, 91, 181, 84, 17, 314, 405, 321, 375])
LIP_UPPER_INNER = np.array([191, 80, 81, 82, 13, 312, 311, 310, 415])
LIP_LOWER_INNER = np.array([95, 88, 178, 87, 14, 317, 402, 318, 324])
LIP_CORNERS = np.array([61, 291, 78, 308])
LIP_UPPER = np.concatenate([LIP_UPPER_OUTER, LIP_UPPER_INNER])
LIP_LOWER = np.concatenate([LIP_LOWER_OUTER, LIP_LOWER_INNER])
LIPS = np.concatenate([LIP_UPPER, LIP_LOWER, LIP_CORNERS])
#: Nose: tip, bridge, and the alar wings (nostril rims) per side.
NOSE_TIP = np.array([1, 4, 5, 195, 197, 6, 168, 19, 94, 2])
NOSE_WING = {
    "L": np.array([294, 278, 327, 326, 344, 440, 360, 358]),
    "R": np.array([64, 48, 98, 97, 115, 220, 131, 129]),
}
#: Lower face outline (jawline), avatar's right ear to left ear through the chin.
JAWLINE = np.array(
    [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454]
)
CHIN = np.array(
    [
        152,
        175,
        199,
        200,
        18,
        148,
        377,
        176,
        400,
        171,
        396,
        208,
        428,
        32,
        262,
        140,
        369,
        201,
        421,
        194,
        418,
        83,
        313,
    ]
)
FOREHEAD_TOP = np.array([10, 338, 297, 332, 109, 67, 103, 151, 9, 8])  # fmt: skip

#: The 52 ARKit shapes then the visemes; the order of ``compute_blendshapes``' first axis.
BLENDSHAPE_NAMES: tuple[str, ...] = (*ARKIT_BLENDSHAPES, *VISEMES)

#: Jaw opening at jawOpen = 1, degrees about the hinge axis (+X; positive opens the mouth).
JAW_OPEN_DEGREES = 22.0
#: Eyeball rotation at eyeLook* = 1, degrees.
EYE_LOOK_DEGREES = {"horizontal": 28.0, "up": 22.0, "down": 25.0}

#: Oculus visemes as mixtures of the ARKit shapes (weights chosen after the Oculus viseme
#: reference pictures: PP closed pressed lips, FF lower lip under the upper teeth, ...).
VISEME_MIX: dict[str, dict[str, float]] = {
    "viseme_sil": {},
    "viseme_PP": {"mouthPressLeft": 0.75, "mouthPressRight": 0.75, "mouthRollLower": 0.3, "mouthRollUpper": 0.3},
    "viseme_FF": {"mouthRollLower": 0.7, "mouthUpperUpLeft": 0.25, "mouthUpperUpRight": 0.25, "jawOpen": 0.08, "mouthShrugLower": 0.2},
    "viseme_TH": {"jawOpen": 0.15, "tongueOut": 0.5, "mouthUpperUpLeft": 0.1, "mouthUpperUpRight": 0.1},
    "viseme_DD": {"jawOpen": 0.25, "mouthStretchLeft": 0.25, "mouthStretchRight": 0.25, "mouthUpperUpLeft": 0.1, "mouthUpperUpRight": 0.1},
    "viseme_kk": {"jawOpen": 0.35, "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3},
    "viseme_CH": {"jawOpen": 0.2, "mouthFunnel": 0.55, "mouthPucker": 0.2, "mouthUpperUpLeft": 0.15, "mouthUpperUpRight": 0.15},
    "viseme_SS": {"jawOpen": 0.1, "mouthStretchLeft": 0.4, "mouthStretchRight": 0.4, "mouthSmileLeft": 0.2, "mouthSmileRight": 0.2},
    "viseme_nn": {"jawOpen": 0.18, "mouthStretchLeft": 0.2, "mouthStretchRight": 0.2, "mouthUpperUpLeft": 0.1, "mouthUpperUpRight": 0.1},
    "viseme_RR": {"jawOpen": 0.15, "mouthFunnel": 0.35, "mouthPucker": 0.3},
    "viseme_aa": {"jawOpen": 0.7, "mouthLowerDownLeft": 0.2, "mouthLowerDownRight": 0.2, "mouthUpperUpLeft": 0.1, "mouthUpperUpRight": 0.1},
    "viseme_E": {"jawOpen": 0.35, "mouthStretchLeft": 0.4, "mouthStretchRight": 0.4, "mouthSmileLeft": 0.2, "mouthSmileRight": 0.2},
    "viseme_I": {"jawOpen": 0.2, "mouthSmileLeft": 0.45, "mouthSmileRight": 0.45, "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3},
    "viseme_O": {"jawOpen": 0.45, "mouthFunnel": 0.65, "mouthPucker": 0.15},
    "viseme_U": {"jawOpen": 0.15, "mouthPucker": 0.85, "mouthFunnel": 0.2},
}  # fmt: skip

_SIDES = ("L", "R")
_SIGN = {"L": 1.0, "R": -1.0}
_CANONICAL_EYE_SPAN_CM = 8.8917  # |landmark 263 - landmark 33| on mediapipe's canonical face


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((np.asarray(x, np.float64) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """(3, 3) rotation matrix about unit ``axis`` by ``degrees`` (right-handed)."""
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


# --------------------------------------------------------------------------------------------
# the face's own measurements
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceFrame:
    """Measurements of one face, from its 468 landmarks only.

    landmarks : (468, 3) float64 metres.
    cm : metres per canonical centimetre for this face (0.01 for a canonical-sized face).
    mouth_centre : (3,) float64; mouth_half_width : metres.
    jaw_pivot : (3,) float64 — the jaw hinge point; jaw_axis : (3,) unit hinge axis (+X).
    eye_centre_estimate : side -> (3,) eyeball centre guessed from the lids (used when the head has
        no eyeball vertices).
    """

    landmarks: np.ndarray
    cm: float
    mouth_centre: np.ndarray
    mouth_half_width: float
    jaw_pivot: np.ndarray
    jaw_axis: np.ndarray
    eye_centre_estimate: dict[str, np.ndarray]

    @staticmethod
    def from_landmarks(landmarks: np.ndarray) -> FaceFrame:
        lm = np.asarray(landmarks, np.float64)[:468]
        if lm.shape != (468, 3):
            raise ValueError(f"expected (468, 3) landmarks, got {lm.shape}")
        span = float(np.linalg.norm(lm[263] - lm[33]))
        if not np.isfinite(span) or span <= 0:
            raise ValueError("degenerate landmarks: the outer eye corners coincide")
        cm = span / _CANONICAL_EYE_SPAN_CM
        mouth_centre = lm[[61, 291, 13, 14]].mean(0)
        half = 0.5 * float(np.linalg.norm(lm[291] - lm[61]))
        ear_mid = 0.5 * (lm[234] + lm[454])
        # The effective hinge of an opening jaw sits below and slightly in front of the ear's
        # tragus (the condyle also slides forward while the jaw opens).
        pivot = ear_mid + np.array([0.0, -1.6 * cm, 0.6 * cm])
        pivot[0] = 0.5 * (lm[234, 0] + lm[454, 0])
        axis = lm[454] - lm[234]
        axis = axis / np.linalg.norm(axis)
        centres = {}
        for side in _SIDES:
            ring = np.concatenate([LID_UPPER[side], LID_LOWER[side], EYE_CORNERS[side]])
            centres[side] = lm[ring].mean(0) - np.array([0.0, 0.0, 1.25 * cm])
        return FaceFrame(lm, cm, mouth_centre, half, pivot, axis, centres)

    def side_weight(self, points: np.ndarray, side: str) -> np.ndarray:
        """(k,) weight in [0, 1] of how much ``points`` belong to the mouth's ``side`` half
        (0.5 on the midline, 1 from half-way to the corner outward); L + R = 1."""
        u = (np.asarray(points)[:, 0] - self.mouth_centre[0]) / self.mouth_half_width
        return _smoothstep(-0.6, 0.6, _SIGN[side] * u)


#: Jacobi iterations of the jaw weight over the landmarks' own face-mesh edges (0 = off)
JAW_LANDMARK_SMOOTHING = 8


# --------------------------------------------------------------------------------------------
# the field builder
# --------------------------------------------------------------------------------------------


class _Builder:
    """Turns "these landmarks move by these offsets" into a smooth (n, 3) delta field."""

    def __init__(
        self,
        vertices: np.ndarray,
        regions: Mapping[str, np.ndarray],
        triangles: np.ndarray | None = None,
        reference: bool = False,
    ):
        """reference : use the original, slower code paths (no topology cache, full fancy-index
        gathers); kept for the equivalence test and bench/rig_export.py's baseline."""
        self.v = np.asarray(vertices, np.float64)
        self.n = len(self.v)
        self.reference = reference
        self.adjacency = None
        self.degree = None
        if triangles is not None and len(triangles):
            if reference:
                self.adjacency = _build_adjacency(triangles, self.n)
            else:
                self.adjacency, self.degree = mesh_adjacency(triangles, self.n)
        self.frame = FaceFrame.from_landmarks(self.v[:468])
        self.lm = self.frame.landmarks
        self.cm = self.frame.cm
        self.regions = {k: np.asarray(r, np.int64) for k, r in regions.items() if r is not None and len(r)}
        rigid = np.zeros(self.n, bool)
        for name in ("eyeball_L", "eyeball_R", "teeth_upper", "teeth_lower", "tongue"):
            if name in self.regions:
                rigid[self.regions[name]] = True
        rigid[:468] = False
        self.rigid = rigid
        # squared distances of every vertex to every landmark: (n, 468)
        if reference:
            d2 = np.maximum(
                (self.v**2).sum(1)[:, None] + (self.lm**2).sum(1)[None, :] - 2.0 * (self.v @ self.lm.T), 0.0
            )
        else:  # one matmul: [v, |v|^2, 1] . [-2 lm, 1, |lm|^2]
            ones = np.ones((self.n, 1))
            a = np.concatenate([self.v, (self.v**2).sum(1)[:, None], ones], 1)
            b = np.concatenate([-2.0 * self.lm, ones[:468], (self.lm**2).sum(1)[:, None]], 1)
            d2 = a @ b.T
            np.maximum(d2, 0.0, out=d2)
        d2[np.arange(468), np.arange(468)] = 0.0
        self.d2 = d2.astype(np.float32)  # halves the cost of every field; ample precision
        self._eye_centres: dict[str, np.ndarray] = {}
        self._by_x: tuple[np.ndarray, np.ndarray] | None = None
        self.lm_columns = np.ascontiguousarray(self.lm.T)  # (3, 468)
        self.jaw_weight = self._jaw_weights()

    def region(self, name: str) -> np.ndarray:
        return self.regions.get(name, np.zeros(0, np.int64))

    # -- smooth interpolation of landmark offsets ------------------------------------------
    def field(
        self,
        driven: np.ndarray,
        offsets: np.ndarray,
        radius_cm: float,
        sigma_cm: float | None = None,
    ) -> np.ndarray:
        """(n, 3) deltas: ``driven`` landmarks move exactly by ``offsets`` ((k, 3) metres); other
        non-rigid vertices within ``radius_cm`` of a moving landmark get the Gaussian-weighted mean
        of the driven offsets and of zero offsets on the landmarks outside the radius."""
        driven = np.asarray(driven, np.int64)
        offsets = np.asarray(offsets, np.float64).reshape(len(driven), 3)
        # the last offset given for a landmark wins
        uniq, last = np.unique(driven[::-1], return_index=True)
        driven, offsets = uniq, offsets[::-1][last]
        out = np.zeros((self.n, 3))
        if self.reference:
            moving = np.linalg.norm(offsets, axis=1) > 1e-9
        else:
            moving = np.sqrt(offsets[:, 0] ** 2 + offsets[:, 1] ** 2 + offsets[:, 2] ** 2) > 1e-9
        if not moving.any():
            return out
        radius = radius_cm * self.cm
        sigma = (sigma_cm if sigma_cm is not None else 0.3 * radius_cm) * self.cm
        movers = driven[moving]
        # candidates: non-rigid vertices in the box around the moving landmarks
        if self.reference:
            lo = self.lm[movers].min(0) - radius
            hi = self.lm[movers].max(0) + radius
        else:  # column by column: numpy's reductions over a short axis are slow
            pts = self.lm_columns[:, movers]
            lo = np.array([pts[0].min(), pts[1].min(), pts[2].min()]) - radius
            hi = np.array([pts[0].max(), pts[1].max(), pts[2].max()]) + radius
        if self.reference:
            cand = np.flatnonzero(np.all((self.v >= lo) & (self.v <= hi), axis=1) & ~self.rigid)
            cand = cand[~np.isin(cand, driven)]
            d_moving = np.sqrt(self.d2[np.ix_(cand, movers)].min(1)) if len(cand) else np.zeros(0)
            rows = None
        else:
            cand = self._in_box(lo, hi)
            is_driven = np.zeros(self.n, bool)
            is_driven[driven] = True
            cand = cand[~is_driven[cand]]
            rows = self.d2[cand]  # (c, 468) contiguous row gather, reused below
            d_moving = np.sqrt(rows[:, movers].min(1)) if len(cand) else np.zeros(0)
        inside = d_moving < radius
        free, d_moving = cand[inside], d_moving[inside]
        if len(free):
            # zero anchors: landmarks outside the radius but near enough to matter
            d_lm = np.sqrt(self.d2[movers].min(0))  # (468,) landmark distance to the movers
            anchors = (d_lm >= radius) & (d_lm < 2 * radius + 3 * sigma)
            anchors[driven] = False
            ctrl = np.concatenate([driven, np.flatnonzero(anchors)])
            ctrl_off = np.concatenate([offsets, np.zeros((int(anchors.sum()), 3))])
            d2 = self.d2[np.ix_(free, ctrl)] if rows is None else rows[inside][:, ctrl]
            w = np.exp((d2 - d2.min(1, keepdims=True)) * np.float32(-0.5 / (sigma * sigma)))
            if self.reference:
                num = w @ ctrl_off.astype(np.float32)
            else:  # the anchors' offsets are zero: only the driven columns add to the sum
                num = w[:, : len(driven)] @ offsets.astype(np.float32)
            vals = num.astype(np.float64) / w.sum(1, keepdims=True, dtype=np.float64)
            fade = _smoothstep(radius, 0.7 * radius, d_moving)
            out[free] = vals * fade[:, None]
        out[driven] = offsets
        return out

    def _in_box(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """(c,) ascending indices of the non-rigid vertices with lo <= v <= hi (all three axes),
        through the non-rigid vertices sorted by x (two binary searches, then a short slice)."""
        if self._by_x is None:
            nonrigid = np.flatnonzero(~self.rigid)
            order = nonrigid[np.argsort(self.v[nonrigid, 0], kind="stable")]
            self._by_x = (order, self.v[order])
        order, sorted_v = self._by_x
        i0 = int(np.searchsorted(sorted_v[:, 0], lo[0], side="left"))
        i1 = int(np.searchsorted(sorted_v[:, 0], hi[0], side="right"))
        sv = sorted_v[i0:i1]
        inside = (sv[:, 1] >= lo[1]) & (sv[:, 1] <= hi[1]) & (sv[:, 2] >= lo[2]) & (sv[:, 2] <= hi[2])
        return np.sort(order[i0:i1][inside])

    def scalar_field(self, driven: np.ndarray, values: np.ndarray, sigma_cm: float) -> np.ndarray:
        """(n,) Gaussian-weighted mean of ``values`` on the ``driven`` landmarks, for every vertex."""
        d2 = self.d2[:, driven]
        sigma = sigma_cm * self.cm
        w = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * sigma * sigma))
        return (w @ np.asarray(values, np.float64)) / w.sum(1)

    # -- the jaw ---------------------------------------------------------------------------
    def _jaw_weights(self) -> np.ndarray:
        """(n,) how much each vertex follows the jaw (0 skull, 1 mandible), smooth in between."""
        f = self.frame
        corners = self.lm[[61, 291]].mean(0)
        # plane through the hinge axis and the mouth corners: below it is the mandible
        to_corner = corners - f.jaw_pivot
        normal = np.cross(f.jaw_axis, to_corner)
        normal /= np.linalg.norm(normal)
        if normal[1] > 0:  # point downward (toward the chin)
            normal = -normal
        below = (self.v - f.jaw_pivot) @ normal
        w_plane = _smoothstep(-0.8 * self.cm, 2.6 * self.cm, below)
        # around the lips the lips themselves decide: upper lip 0, lower lip 1, corners 1/2
        lip_ids = np.concatenate([LIP_UPPER, LIP_LOWER, LIP_CORNERS, [164, 2, 98, 327, 18, 200]])
        lip_vals = np.concatenate(
            [np.zeros(len(LIP_UPPER)), np.ones(len(LIP_LOWER)), np.full(4, 0.5), [0, 0, 0, 0, 1, 1]]
        )
        w_lips = self.scalar_field(lip_ids, lip_vals, 0.35)
        d_lips = np.sqrt(self.d2[:, LIPS].min(1))
        t = _smoothstep(0.6 * self.cm, 1.8 * self.cm, d_lips)
        w = (1 - t) * w_lips + t * w_plane
        # nothing behind the mandible's ramus follows the jaw ...
        w *= _smoothstep(f.jaw_pivot[2] - 2.0 * self.cm, f.jaw_pivot[2] - 0.3 * self.cm, self.v[:, 2])
        # ... nor the neck under the jawline: depth below the jawline point nearest in (x, z)
        jl = self.lm[JAWLINE]
        dxz = (self.v[:, None, 0] - jl[None, :, 0]) ** 2 + (self.v[:, None, 2] - jl[None, :, 2]) ** 2
        depth = jl[np.argmin(dxz, axis=1), 1] - self.v[:, 1]
        w *= _smoothstep(3.0 * self.cm, 0.6 * self.cm, depth)
        if JAW_LANDMARK_SMOOTHING > 0 and self.n >= 468:
            # The ramus and neck cut-offs are sharp in space and the face mesh's edges near the jaw
            # angle are long (58-177, 288-401): a single edge jumped by ~0.8 of the jaw weight. Smooth
            # the landmarks over the face mesh's own (canonical) edges, lips held, so a landmark's
            # weight still depends on the landmarks only.
            adj, deg = mesh_adjacency(load_canonical_face().triangles, 468)
            held = np.zeros(468, bool)
            held[lip_ids] = True
            lm_w = w[:468].copy()
            for _ in range(JAW_LANDMARK_SMOOTHING):
                lm_w = np.where(held, lm_w, 0.5 * lm_w + 0.5 * (adj @ lm_w) / deg)
            w[:468] = lm_w
        fixed = np.zeros(self.n, bool)
        fixed[:468] = True
        for name in ("eyeball_L", "eyeball_R", "teeth_upper", "scalp", "ear_L", "ear_R"):
            w[self.region(name)] = 0.0
            fixed[self.region(name)] = True
        for name in ("teeth_lower", "tongue"):
            w[self.region(name)] = 1.0
            fixed[self.region(name)] = True
        return np.clip(self.smooth(w, fixed), 0.0, 1.0)

    def smooth(self, values: np.ndarray, fixed: np.ndarray, iterations: int = 12) -> np.ndarray:
        """Laplacian smoothing of (n,) ``values`` over the mesh edges, ``fixed`` vertices held
        (no-op without triangles). Landmarks are always held, so landmark values never depend on
        the rest of the mesh."""
        if self.adjacency is None:
            return values
        free = ~fixed
        free[:468] = False
        out = values.copy()
        deg = (
            self.degree
            if self.degree is not None
            else np.maximum(np.asarray(self.adjacency.sum(1)).ravel(), 1)
        )
        for _ in range(iterations):
            out[free] = (self.adjacency @ out)[free] / deg[free]
        return out

    def jaw_rotation(self, degrees: float, axis: np.ndarray | None = None) -> np.ndarray:
        """(n, 3) deltas of the jaw rotated by ``degrees`` about the pivot, blended by jaw weight."""
        f = self.frame
        rot = _rotation(f.jaw_axis if axis is None else axis, degrees)
        p = self.v - f.jaw_pivot
        return (p @ rot.T - p) * self.jaw_weight[:, None]

    def jaw_translation(self, offset_cm: np.ndarray) -> np.ndarray:
        return np.asarray(offset_cm, np.float64)[None, :] * self.cm * self.jaw_weight[:, None]

    # -- the eyes --------------------------------------------------------------------------
    def eye_centre(self, side: str) -> np.ndarray:
        if not self.reference and side in self._eye_centres:
            return self._eye_centres[side].copy()
        ball = self.region(f"eyeball_{side}")
        if len(ball):
            lo, hi = self.v[ball].min(0), self.v[ball].max(0)
            centre = 0.5 * (lo + hi)
        else:
            centre = self.frame.eye_centre_estimate[side]
        self._eye_centres[side] = centre
        return centre.copy()

    def lid_gap(self, side: str) -> np.ndarray:
        """(7, 3) lower-lid minus upper-lid landmark offsets, outer to inner."""
        return self.lm[LID_LOWER[side]] - self.lm[LID_UPPER[side]]


# --------------------------------------------------------------------------------------------
# the shapes
# --------------------------------------------------------------------------------------------


def _cm(b: _Builder, *xyz: float) -> np.ndarray:
    return np.array(xyz, np.float64) * b.cm


def _eye_blink(b: _Builder, side: str) -> np.ndarray:
    up, lo = LID_UPPER[side], LID_LOWER[side]
    gap = b.lid_gap(side)
    meet = b.lm[lo] - 0.12 * gap  # the lids meet just above the lower lid
    meet[:, 2] = np.maximum(b.lm[up, 2], b.lm[lo, 2]) + 0.05 * b.cm  # over the cornea
    inward = _cm(b, -0.12 * _SIGN[side], 0, 0)  # the closing lid slides a little toward the nose
    sweep = meet - b.lm[up]
    driven = np.concatenate(
        [up, lo, EYE_CORNERS[side], LID_CREASE_UPPER[side], LID_CREASE_UPPER_2[side], BROW[side]]
    )
    offsets = np.concatenate(
        [
            sweep + inward,
            meet - b.lm[lo] + inward,
            np.zeros((2, 3)),
            0.85 * sweep + inward,
            0.6 * sweep + 0.5 * inward,
            np.zeros((len(BROW[side]), 3)),
        ]
    )
    return b.field(driven, offsets, 1.6, 0.45)


def _eye_squint(b: _Builder, side: str) -> np.ndarray:
    up, lo = LID_UPPER[side], LID_LOWER[side]
    gap = b.lid_gap(side)
    centre = np.sin(np.linspace(0.25, np.pi - 0.25, len(lo)))[:, None]
    low_cr = LID_CREASE_LOWER[side]
    inward = _cm(b, -0.2 * _SIGN[side], 0, 0)
    driven = np.concatenate([lo, up, low_cr, BROW[side]])
    offsets = np.concatenate(
        [
            -0.35 * gap * centre + _cm(b, 0, 0, 0.05) + inward * centre,
            0.08 * gap,
            (-0.3 * gap * centre) + _cm(b, 0, 0.1, 0.05) + inward * centre,
            np.zeros((len(BROW[side]), 3)),
        ]
    )
    return b.field(driven, offsets, 2.4, 0.7)


def _eye_wide(b: _Builder, side: str) -> np.ndarray:
    up, lo = LID_UPPER[side], LID_LOWER[side]
    gap = b.lid_gap(side)
    centre = np.sin(np.linspace(0.25, np.pi - 0.25, len(up)))[:, None]
    driven = np.concatenate([up, lo, LID_CREASE_UPPER[side], BROW[side]])
    offsets = np.concatenate(
        [
            -0.45 * gap * centre + _cm(b, 0, 0, -0.05),
            0.06 * gap * centre,
            -0.2 * gap * centre,
            np.zeros((len(BROW[side]), 3)),
        ]
    )
    return b.field(driven, offsets, 1.5, 0.45)


def _eye_look(b: _Builder, side: str, direction: str) -> np.ndarray:
    """Rotate the eyeball about its centre; the lids follow the gaze a little."""
    s = _SIGN[side]
    # where the cornea goes: In = toward the nose (-X for the left eye), Out = away from it
    target = {"In": np.array([-s, 0, 0]), "Out": np.array([s, 0, 0]), "Up": np.array([0, 1.0, 0]), "Down": np.array([0, -1.0, 0])}[direction]  # fmt: skip
    degrees = EYE_LOOK_DEGREES["horizontal" if direction in ("In", "Out") else direction.lower()]
    axis = np.cross(np.array([0, 0, 1.0]), target)  # turns +Z toward the target
    rot = _rotation(axis, degrees)
    out = np.zeros((b.n, 3))
    ball = b.region(f"eyeball_{side}")
    if len(ball):
        c = b.eye_centre(side)
        p = b.v[ball] - c
        out[ball] = p @ rot.T - p
    up, lo = LID_UPPER[side], LID_LOWER[side]
    gap = b.lid_gap(side)
    centre = np.sin(np.linspace(0.25, np.pi - 0.25, len(up)))[:, None]
    if direction == "Up":
        off_up, off_lo = -0.22 * gap * centre, -0.1 * gap * centre
    elif direction == "Down":
        off_up, off_lo = 0.35 * gap * centre, 0.12 * gap * centre
    else:
        # the lids ride along the eyeball: a third of the gaze, about the (landmark-only) eye centre
        follow = _rotation(axis, 0.35 * degrees)
        c = b.frame.eye_centre_estimate[side]
        p_up, p_lo = b.lm[up] - c, b.lm[lo] - c
        off_up = (p_up @ follow.T - p_up) * (0.4 + 0.6 * centre)
        off_lo = (p_lo @ follow.T - p_lo) * (0.4 + 0.6 * centre)
    lids = b.field(
        np.concatenate([up, lo, EYE_CORNERS[side], BROW[side]]),
        np.concatenate([off_up, off_lo, np.zeros((2 + len(BROW[side]), 3))]),
        1.2,
        0.4,
    )
    lids[ball] = 0.0
    return out + lids


def _mouth_corner(
    b: _Builder, side: str, corner_cm: tuple[float, float, float], radius: float = 2.6
) -> np.ndarray:
    """Move this side's mouth corner by ``corner_cm`` (x outward, y, z); the lips follow with
    distance from the corner; the other corner stays."""
    s = _SIGN[side]
    dx, dy, dz = corner_cm
    off = _cm(b, s * dx, dy, dz)
    lips = np.concatenate([LIP_UPPER, LIP_LOWER])
    corner = b.lm[MOUTH_CORNER_OUTER[side]]
    d = np.linalg.norm(b.lm[lips] - corner, axis=1) / (2 * b.frame.mouth_half_width)
    w = np.clip(1 - d, 0, 1) ** 1.6
    other = [MOUTH_CORNER_OUTER["R" if side == "L" else "L"], MOUTH_CORNER_INNER["R" if side == "L" else "L"]]
    driven = np.concatenate([[MOUTH_CORNER_OUTER[side], MOUTH_CORNER_INNER[side]], lips, other, NOSE_TIP])
    offsets = np.concatenate([[off, 0.9 * off], w[:, None] * off, np.zeros((2 + len(NOSE_TIP), 3))])
    return b.field(driven, offsets, radius, 0.7)


def _lip_sides(b: _Builder, ids: np.ndarray, side: str | None) -> np.ndarray:
    if side is None:
        return np.ones(len(ids))
    return b.frame.side_weight(b.lm[ids], side)


def _lips_move(
    b: _Builder,
    moves: list[tuple[np.ndarray, np.ndarray]],
    side: str | None = None,
    radius: float = 1.8,
    sigma: float = 0.5,
    extra: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> np.ndarray:
    """Lip landmark groups each moved by a (3,) canonical-cm offset, scaled by ``side`` weight;
    lip landmarks not listed are pinned."""
    driven, offsets = [], []
    listed = np.concatenate([ids for ids, _ in moves])
    pinned = np.setdiff1d(LIPS, listed)
    driven.append(pinned)
    offsets.append(np.zeros((len(pinned), 3)))
    for ids, off in moves:
        ids = np.atleast_1d(ids)
        w = _lip_sides(b, ids, side)
        o = np.asarray(off, np.float64)
        o = np.broadcast_to(o, (len(ids), 3)) * b.cm
        driven.append(ids)
        offsets.append(o * w[:, None])
    for ids, off in extra or []:
        driven.append(np.atleast_1d(ids))
        offsets.append(np.broadcast_to(np.asarray(off, np.float64) * b.cm, (len(np.atleast_1d(ids)), 3)))
    driven.append(NOSE_TIP)
    offsets.append(np.zeros((len(NOSE_TIP), 3)))
    return b.field(np.concatenate(driven), np.concatenate(offsets), radius, sigma)


def _towards_mouth_centre(b: _Builder, ids: np.ndarray, fraction: float) -> np.ndarray:
    """(k, 3) canonical-cm offsets pulling ``ids`` horizontally toward the mouth's midline."""
    dx = -(b.lm[ids, 0] - b.frame.mouth_centre[0]) * fraction / b.cm
    return np.stack([dx, np.zeros_like(dx), np.zeros_like(dx)], 1)


def _mouth_close(b: _Builder) -> np.ndarray:
    """Lips closed over an open jaw: the lower lip undoes jawOpen's motion and both lips meet
    half-way across this face's own resting lip gap (so jawOpen + mouthClose = closed lips)."""
    jaw = b.jaw_rotation(JAW_OPEN_DEGREES)
    gap = b.lm[LIP_UPPER_INNER] - b.lm[LIP_LOWER_INNER]  # (9, 3) lower -> upper
    driven = np.concatenate([LIP_LOWER_INNER, LIP_LOWER_OUTER, LIP_UPPER_INNER, LIP_UPPER_OUTER, LIP_CORNERS])
    offsets = np.concatenate(
        [
            -jaw[LIP_LOWER_INNER] + 0.5 * gap,
            -jaw[LIP_LOWER_OUTER] + 0.5 * gap,
            -0.5 * gap,
            -0.5 * gap,
            np.zeros((4, 3)),
        ]
    )
    return b.field(
        np.concatenate([driven, NOSE_TIP]), np.concatenate([offsets, np.zeros((len(NOSE_TIP), 3))]), 2.0, 0.55
    )


def _funnel(b: _Builder) -> np.ndarray:
    corners = LIP_CORNERS
    moves = [
        (LIP_UPPER_OUTER, np.array([0, 0.2, 0.55])),
        (LIP_LOWER_OUTER, np.array([0, -0.2, 0.55])),
        (LIP_UPPER_INNER, np.array([0, 0.25, 0.45])),
        (LIP_LOWER_INNER, np.array([0, -0.3, 0.45])),
        (corners, _towards_mouth_centre(b, corners, 0.22) + np.array([0, 0, 0.2])),
    ]
    return _lips_move(b, moves, radius=2.4, sigma=0.7)


def _pucker(b: _Builder) -> np.ndarray:
    lips = np.concatenate([LIP_UPPER_OUTER, LIP_LOWER_OUTER, LIP_UPPER_INNER, LIP_LOWER_INNER, LIP_CORNERS])
    inward = _towards_mouth_centre(b, lips, 0.38)
    fwd = np.where(np.isin(lips, LIP_CORNERS), 0.25, 0.6)[:, None] * np.array([0, 0, 1.0])
    press = np.where(
        np.isin(lips, LIP_UPPER_INNER), -0.05, np.where(np.isin(lips, LIP_LOWER_INNER), 0.1, 0.0)
    )
    off = inward + fwd + press[:, None] * np.array([0, 1.0, 0])
    return _lips_move(b, [(lips, off)], radius=2.4, sigma=0.7)


def _mouth_shift(b: _Builder, side: str) -> np.ndarray:
    s = _SIGN[side]
    lips = np.concatenate([LIP_UPPER, LIP_LOWER, LIP_CORNERS])
    return _lips_move(b, [(lips, np.array([0.65 * s, 0, 0]))], radius=2.6, sigma=0.8)


def _tongue_out(b: _Builder) -> np.ndarray:
    out = 0.3 * b.jaw_rotation(JAW_OPEN_DEGREES)
    tongue = b.region("tongue")
    if len(tongue):
        z = b.v[tongue, 2]
        front = _smoothstep(z.min(), z.max(), z)
        out[tongue] += front[:, None] * _cm(b, 0, -0.2, 3.2) + (1 - front[:, None]) * _cm(b, 0, 0.0, 1.6)
    return out


def _brow(b: _Builder, side: str, inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """Move this side's brow: ``inner`` offset at its inner end, ``outer`` at its outer end
    (canonical cm, x toward the avatar's left), linearly in between; the lids stay."""
    ids = BROW[side]
    x = np.abs(b.lm[ids, 0] - b.frame.mouth_centre[0])
    t = (x - x.min()) / max(x.max() - x.min(), 1e-9)  # 0 inner .. 1 outer
    off = ((1 - t)[:, None] * inner + t[:, None] * outer) * b.cm
    lids = np.concatenate([LID_UPPER[side], EYE_CORNERS[side], LID_LOWER[side], [9, 8, 168]])
    return b.field(np.concatenate([ids, lids]), np.concatenate([off, np.zeros((len(lids), 3))]), 3.0, 0.9)


def _cheek_centre(b: _Builder, side: str) -> np.ndarray:
    lid = b.lm[LID_LOWER[side][3]]
    corner = b.lm[MOUTH_CORNER_OUTER[side]]
    c = 0.5 * (lid + corner)
    c[0] += _SIGN[side] * 1.1 * b.cm
    return c


def _cheek_ids(b: _Builder, side: str, radius_cm: float) -> tuple[np.ndarray, np.ndarray]:
    c = _cheek_centre(b, side)
    d = np.linalg.norm(b.lm - c, axis=1)
    ids = np.flatnonzero(d < radius_cm * b.cm)
    ids = np.setdiff1d(ids, np.concatenate([LIPS, LID_LOWER[side], NOSE_WING[side]]))
    w = np.clip(1 - d[ids] / (radius_cm * b.cm), 0, 1)
    return ids, w


def _cheek_puff(b: _Builder) -> np.ndarray:
    driven, offsets = [], []
    for side in _SIDES:
        ids, w = _cheek_ids(b, side, 2.8)
        axis_pt = np.stack(
            [np.full(len(ids), b.frame.mouth_centre[0]), b.lm[ids, 1], b.lm[ids, 2] - 4.0 * b.cm], 1
        )
        radial = b.lm[ids] - axis_pt
        radial /= np.linalg.norm(radial, axis=1, keepdims=True)
        driven.append(ids)
        offsets.append(radial * (0.75 * b.cm * np.sin(0.5 * np.pi * w) ** 1.0)[:, None])
    lips = np.concatenate([LIP_UPPER_OUTER, LIP_LOWER_OUTER])
    driven += [lips, LIP_CORNERS, NOSE_TIP, LID_LOWER["L"], LID_LOWER["R"]]
    offsets += [np.tile(_cm(b, 0, 0, 0.18), (len(lips), 1)), np.tile(_cm(b, 0, 0, 0.1), (4, 1)), np.zeros((len(NOSE_TIP) + 14, 3))]  # fmt: skip
    return b.field(np.concatenate(driven), np.concatenate(offsets), 2.0, 0.6)


def _patch(
    b: _Builder, centre: np.ndarray, radius_cm: float, offset_cm: np.ndarray, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks within ``radius_cm`` of ``centre`` (minus ``exclude``) and their offsets
    (k, 3) metres: ``offset_cm`` times a smooth bump (1 at the centre, 0 at the radius)."""
    d = np.linalg.norm(b.lm - centre, axis=1) / (radius_cm * b.cm)
    ids = np.setdiff1d(np.flatnonzero(d < 1.0), exclude)
    w = 0.5 * (1 + np.cos(np.pi * np.clip(d[ids], 0, 1)))
    return ids, w[:, None] * np.asarray(offset_cm, np.float64) * b.cm


def _cheek_squint(b: _Builder, side: str) -> np.ndarray:
    """The cheek bulges up toward the eye: a broad patch over the cheekbone rises and comes forward."""
    s = _SIGN[side]
    centre = 0.5 * (b.lm[EYE_CORNERS[side][0]] + b.lm[MOUTH_CORNER_OUTER[side]]) + _cm(b, 2.2 * s, -0.3, -1.6)
    lo = LID_LOWER[side]
    pins = np.concatenate([LIPS, LID_UPPER[side], EYE_CORNERS[side], NOSE_TIP, BROW[side]])
    ids, off = _patch(b, centre, 5.0, np.array([-0.05 * s, 0.55, 0.25]), np.concatenate([pins, lo]))
    off *= np.sqrt(np.linalg.norm(off, axis=1, keepdims=True) / max(np.linalg.norm(off, axis=1).max(), 1e-12))
    driven = np.concatenate([ids, lo, pins])
    offsets = np.concatenate([off, np.tile(_cm(b, 0, 0.04, 0.02), (len(lo), 1)), np.zeros((len(pins), 3))])
    return b.field(driven, offsets, 1.5, 0.6)


def _nose_sneer(b: _Builder, side: str) -> np.ndarray:
    """The nostril wing, the nasolabial fold and the side of the upper lip pull up together."""
    s = _SIGN[side]
    wing = NOSE_WING[side]
    centre = 0.5 * (b.lm[wing].mean(0) + b.lm[MOUTH_CORNER_OUTER[side]]) + _cm(b, 0.4 * s, 0.3, -0.2)
    pins = np.concatenate(
        [
            LIP_LOWER,
            LIP_CORNERS[[0, 2]] if side == "L" else LIP_CORNERS[[1, 3]],
            NOSE_TIP[:2],
            [152, 175, 199],
        ]
    )
    ids, off = _patch(b, centre, 3.4, np.array([-0.1 * s, 0.95, 0.15]), pins)
    brow_in = BROW[side][[3, 4, 8, 9]]
    driven = np.concatenate([ids, brow_in, pins])
    offsets = np.concatenate([off, np.tile(_cm(b, -0.05 * s, -0.15, 0.0), (4, 1)), np.zeros((len(pins), 3))])
    return b.field(driven, offsets, 1.5, 0.5)


def _arkit_shapes(b: _Builder) -> dict[str, np.ndarray]:
    """name -> (n, 3) metres, for the 52 ARKit shapes."""
    shapes: dict[str, np.ndarray] = {}
    for side, Side in (("L", "Left"), ("R", "Right")):
        shapes[f"eyeBlink{Side}"] = _eye_blink(b, side)
        for d in ("Down", "In", "Out", "Up"):
            shapes[f"eyeLook{d}{Side}"] = _eye_look(b, side, d)
        shapes[f"eyeSquint{Side}"] = _eye_squint(b, side)
        shapes[f"eyeWide{Side}"] = _eye_wide(b, side)
        s = _SIGN[side]
        shapes[f"jaw{Side}"] = b.jaw_translation(np.array([0.55 * s, 0.0, 0.0]))
        shapes[f"mouth{Side}"] = _mouth_shift(b, side)
        shapes[f"mouthSmile{Side}"] = _mouth_corner(b, side, (0.45, 0.7, -0.35))
        shapes[f"mouthFrown{Side}"] = _mouth_corner(b, side, (0.15, -0.55, -0.05))
        below = b.lm[MOUTH_CORNER_OUTER[side]] + _cm(b, 0.2 * s, -1.6, -0.4)
        ids, off = _patch(
            b, below, 2.4, np.array([0.1 * s, 0.5, -0.15]), np.concatenate([LIPS, NOSE_WING[side]])
        )
        keep = np.concatenate([NOSE_WING[side], [MOUTH_CORNER_OUTER[side]]])
        shapes[f"mouthDimple{Side}"] = _mouth_corner(b, side, (0.15, 0.3, -0.55), radius=2.4) + b.field(
            np.concatenate([ids, keep]), np.concatenate([off, np.zeros((len(keep), 3))]), 1.5, 0.5
        )
        shapes[f"mouthStretch{Side}"] = _mouth_corner(b, side, (0.55, -0.25, -0.2))
        chin_side = CHIN[b.frame.side_weight(b.lm[CHIN], side) > 0.5]
        shapes[f"mouthPress{Side}"] = _lips_move(
            b,
            [
                (LIP_UPPER_INNER, np.array([0, -0.06, -0.02])),
                (LIP_LOWER_INNER, np.array([0, 0.2, 0.05])),
                (LIP_UPPER_OUTER, np.array([0, -0.05, -0.05])),
                (LIP_LOWER_OUTER, np.array([0, 0.25, 0.1])),
                (
                    np.array([MOUTH_CORNER_OUTER[side], MOUTH_CORNER_INNER[side]]),
                    np.array([0.1 * s, 0.05, 0]),
                ),
                (chin_side, np.array([0, 0.3, 0.18])),
            ],
            side=side,
            radius=3.0,
            sigma=0.8,
        )
        shapes[f"mouthLowerDown{Side}"] = _lips_move(
            b,
            [
                (LIP_LOWER_OUTER, np.array([0.06 * s, -0.45, -0.12])),
                (LIP_LOWER_INNER, np.array([0.06 * s, -0.42, -0.08])),
            ],
            side=side,
            radius=3.2,
            sigma=0.9,
        )
        fold = 0.5 * (b.lm[NOSE_WING[side]].mean(0) + b.lm[MOUTH_CORNER_OUTER[side]])
        ids, off = _patch(b, fold, 2.2, np.array([0.15 * s, 0.55, -0.1]), np.concatenate([LIPS, NOSE_TIP]))
        shapes[f"mouthUpperUp{Side}"] = _lips_move(
            b,
            [
                (LIP_UPPER_OUTER, np.array([0.15 * s, 0.6, 0.0])),
                (LIP_UPPER_INNER, np.array([0.12 * s, 0.5, 0.0])),
            ],
            side=side,
            extra=[(ids, off / b.cm)],
            radius=2.6,
            sigma=0.7,
        )
        shapes[f"browDown{Side}"] = _brow(
            b, side, np.array([-0.3 * s, -0.35, 0.15]), np.array([-0.25 * s, -0.2, 0.25])
        )
        shapes[f"browOuterUp{Side}"] = _brow(b, side, np.array([0, 0.05, 0]), np.array([0, 0.65, 0.05]))
        shapes[f"cheekSquint{Side}"] = _cheek_squint(b, side)
        shapes[f"noseSneer{Side}"] = _nose_sneer(b, side)
    shapes["jawForward"] = b.jaw_translation(np.array([0.0, 0.0, 0.6]))
    shapes["jawOpen"] = b.jaw_rotation(JAW_OPEN_DEGREES)
    shapes["mouthClose"] = _mouth_close(b)
    shapes["mouthFunnel"] = _funnel(b)
    shapes["mouthPucker"] = _pucker(b)
    shapes["mouthRollLower"] = _lips_move(
        b,
        [(LIP_LOWER_OUTER, np.array([0, 0.8, -0.3])), (LIP_LOWER_INNER, np.array([0, 0.45, -0.9]))],
        radius=2.2,
    )
    shapes["mouthRollUpper"] = _lips_move(
        b,
        [(LIP_UPPER_OUTER, np.array([0, -0.35, -0.7])), (LIP_UPPER_INNER, np.array([0, 0.3, -0.8]))],
        radius=2.2,
    )
    chin = np.setdiff1d(CHIN, [152, 148, 377])
    shapes["mouthShrugLower"] = _lips_move(
        b,
        [(LIP_LOWER_OUTER, np.array([0, 0.28, 0.18])), (LIP_LOWER_INNER, np.array([0, 0.22, 0.12]))],
        extra=[(chin, np.array([0, 0.22, 0.1]))],
        radius=2.0,
    )
    shapes["mouthShrugUpper"] = _lips_move(
        b, [(LIP_UPPER_OUTER, np.array([0, 0.22, 0.15])), (LIP_UPPER_INNER, np.array([0, 0.18, 0.1]))]
    )
    inner_up = np.zeros((b.n, 3))
    for side in _SIDES:
        s = _SIGN[side]
        inner_up += _brow(b, side, np.array([-0.05 * s, 0.6, 0.05]), np.array([0, 0.0, 0]))
    shapes["browInnerUp"] = inner_up
    shapes["cheekPuff"] = _cheek_puff(b)
    shapes["tongueOut"] = _tongue_out(b)
    return shapes


def _visemes(shapes: Mapping[str, np.ndarray], n: int) -> list[np.ndarray]:
    out = []
    for name in VISEMES:
        d = np.zeros((n, 3))
        for shape, weight in VISEME_MIX[name].items():
            d += weight * shapes[shape]
        out.append(d)
    return out


def compute_blendshapes(
    vertices: np.ndarray,
    regions: Mapping[str, np.ndarray] | None = None,
    visemes: bool = True,
    triangles: np.ndarray | None = None,
) -> tuple[tuple[str, ...], np.ndarray]:
    """Blendshape deltas of one head.

    vertices : (n, 3) float, metres; ``vertices[:468]`` are the canonical face-mesh landmarks.
    regions : name -> (k,) int vertex indices (eyeball_L/R, teeth_upper/lower, tongue, neck, scalp,
        ear_L/R ... — missing or empty regions are tolerated; their shapes then move only skin).
    visemes : also return the 15 Oculus visemes after the 52 ARKit shapes.
    triangles : (m, 3) int, optional — lets the jaw weights be smoothed over the mesh.
    Returns (names, deltas): deltas (52 or 67, n, 3) float32 metres, in ``names`` order.
    """
    names, deltas, _, _ = blendshapes_and_jaw(vertices, regions, visemes, triangles)
    return names, deltas


def landmark_blendshape_basis(vertices_468: np.ndarray) -> np.ndarray:
    """The 52 ARKit deltas on the 468 face-mesh landmarks alone.

    vertices_468 : (468, 3) float — the landmarks in the head frame (metres, +Y up, +Z toward the
        viewer, +X the face's own left), e.g. ``head.vertices[:468]`` or a neutral face from a photo.
    Returns (52, 468, 3) float32 metres, ARKit order. Equal to ``compute_blendshapes(v)[1][:52, :468]``
    for any head whose first 468 vertices are these landmarks (eyeball rotation is not visible
    on the landmarks; eyeLook* there is the lids' small follow of the gaze).
    """
    v = np.asarray(vertices_468, np.float64)[:468]
    return compute_blendshapes(v, {}, visemes=False)[1]


@dataclass(frozen=True)
class JawRig:
    """The jaw hinge shared by the jawOpen shape and the ``jaw`` joint.

    pivot : (3,) float64 metres; axis : (3,) unit hinge axis; open_degrees : jawOpen = 1 angle
    (rotation about ``axis`` by +open_degrees opens the mouth); weights : (n,) float64 in [0, 1].
    """

    pivot: np.ndarray
    axis: np.ndarray
    open_degrees: float
    weights: np.ndarray


def jaw_rig(
    vertices: np.ndarray, regions: Mapping[str, np.ndarray] | None = None, triangles: np.ndarray | None = None
) -> JawRig:
    """The jaw hinge and per-vertex jaw weights of a head (see :class:`JawRig`)."""
    b = _Builder(vertices, regions or {}, triangles)
    return JawRig(b.frame.jaw_pivot, b.frame.jaw_axis, JAW_OPEN_DEGREES, b.jaw_weight)


def blendshapes_and_jaw(
    vertices: np.ndarray,
    regions: Mapping[str, np.ndarray] | None = None,
    visemes: bool = True,
    triangles: np.ndarray | None = None,
    reference: bool = False,
) -> tuple[tuple[str, ...], np.ndarray, JawRig, dict[str, np.ndarray]]:
    """:func:`compute_blendshapes` and :func:`jaw_rig` in one pass (they share the distance table),
    plus the eye centres: side ("L"/"R") -> (3,) metres.

    reference : run the original (slower, uncached) code paths; the results agree with the default
    fast path to float32 rounding (tests/test_rig_export_speed.py, bench/rig_export.py)."""
    b = _Builder(vertices, regions or {}, triangles, reference=reference)
    shapes = _arkit_shapes(b)
    stack = [shapes[name] for name in ARKIT_BLENDSHAPES]
    names: tuple[str, ...] = ARKIT_BLENDSHAPES
    if visemes:
        stack += _visemes(shapes, b.n)
        names = BLENDSHAPE_NAMES
    jaw = JawRig(b.frame.jaw_pivot, b.frame.jaw_axis, JAW_OPEN_DEGREES, b.jaw_weight)
    eyes = {side: b.eye_centre(side) for side in _SIDES}
    return names, np.stack(stack).astype(np.float32), jaw, eyes
