"""Hair-card geometry: the head's scalp surface, strand paths, polystrip ribbons, a scalp cap shell and
the procedural RGBA strand texture. Public helpers for hair plugins.

Frame: the HeadModel's (metres, +Y up, +Z toward the viewer, +X the avatar's own left).
Everything is vectorised over strands; loops run over the few steps along a strand only.

Typical use in a hair plugin::

    surface = ScalpSurface.from_head(head)
    roots = surface.sample_roots(400, hairline=Hairline())          # (n, 3) on the scalp
    paths = grow_strands(surface, roots, length=0.12, steps=8)      # (n, 9, 3)
    mesh = ribbons(paths, widths=0.012, surface=surface, column=1)  # CardMesh
    hair = finish(mesh + cap_shell(surface, Hairline()), colour_rgb=(60, 40, 30), style="mine")
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vrhub.pipeline.types import HairModel, HeadModel

#: number of texture columns in the strand atlas: 0 = dense cap, 1..3 = strand cards of different density
ATLAS_COLUMNS = 4
#: Column 0 holds the dense cap (v below CAP_V) and the ragged hairline strip (v above it).
CAP_V = 0.84


def polar_direction(polar: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Unit directions (..., 3) from the head centre: ``polar`` radians from the top (+Y), ``azimuth``
    radians round it (0 = front, +Z; +pi/2 = the head's left, +X)."""
    sp = np.sin(polar)
    return np.stack([sp * np.sin(azimuth), np.cos(polar), sp * np.cos(azimuth)], axis=-1)


#: how far hair sits outside the skin (metres)
SCALP_OFFSET = 0.004
#: regions whose vertices the hair must stay outside
COLLISION_REGIONS = ("scalp", "face", "ear_L", "ear_R", "neck")


#: how far above the face's side outline (y of a unit direction) the hairline runs at the temples
FACE_EDGE_MARGIN = 0.03


@dataclass(frozen=True)
class Hairline:
    """Where hair grows on the unit head sphere (directions from the head centre).

    front_y : the hairline's height (y of the unit direction) at the forehead;
    side_y : its height above the ears; back_y : at the nape;
    recede : 0..1 pulls the temples back (receding hairline);
    crown_gap : 0..1 angular radius of a bald top/crown patch (as a fraction of the top cap);
    crown_tilt : where that patch is centred, as the z of its centre direction (-0.44 = the crown,
    behind the top; 0 = the very top; positive = toward the forehead).
    face_edge : (azimuth, y) knots, sorted by azimuth, of the face's upper outline (both sides,
    from ear to ear over the forehead), or () for none. Between the two azimuths of
    ``edge_blend`` (absolute values) the hairline turns from its forehead course down to
    :data:`FACE_EDGE_MARGIN` above this outline, where that is lower: hair grows down beside the
    temples to the face's edge, as a real hairline does (a hairline that stays at the forehead's
    height round to the ears leaves a band of bare skin there, and the face reads wider).
    """

    front_y: float = 0.52
    side_y: float = 0.1
    back_y: float = -0.45
    recede: float = 0.0
    crown_gap: float = 0.0
    crown_tilt: float = -0.44
    face_edge: tuple[tuple[float, float], ...] = ()
    edge_blend: tuple[float, float] = (0.0, 0.0)

    def limit_y(self, az: np.ndarray) -> np.ndarray:
        """Height (y of the unit direction) of the lower hairline at azimuth ``az`` (radians, 0 = front
        (+Z), +-pi = back): hair grows above it."""
        az = np.asarray(az, np.float64)
        front = np.cos(az).clip(0, 1)  # 1 at the front, 0 at the sides and back
        back = (-np.cos(az)).clip(0, 1)
        side = 1.0 - front - back
        base = front * self.front_y + side * self.side_y + back * self.back_y
        if self.face_edge:
            knots = np.asarray(self.face_edge, np.float64)
            # beyond the outline's ends (behind the ears) nothing lowers the hairline
            edge = np.interp(az, knots[:, 0], knots[:, 1] + FACE_EDGE_MARGIN, left=np.inf, right=np.inf)
            b0, b1 = self.edge_blend
            w = np.clip((np.abs(az) - b0) / max(b1 - b0, 1e-6), 0.0, 1.0)
            base = base + w * (np.minimum(base, edge) - base)
        temple = np.exp(-(((np.abs(az) - 0.75) / 0.3) ** 2)) * self.recede
        return base + 0.35 * temple

    def in_crown_gap(self, d: np.ndarray) -> np.ndarray:
        """d : (n, 3) unit directions. Returns (n,) bool, True inside the bald crown patch."""
        if self.crown_gap <= 0:
            return np.zeros(len(d), bool)
        d = np.asarray(d, np.float64)
        tilt = float(np.clip(self.crown_tilt, -0.9, 0.9))
        axis_y = float(np.sqrt(1.0 - tilt * tilt))
        top_angle = np.arccos(np.clip(d[:, 1] * axis_y + d[:, 2] * tilt, -1, 1))
        return top_angle <= self.crown_gap * 0.9

    def contains(self, d: np.ndarray) -> np.ndarray:
        """d : (n, 3) unit directions. Returns (n,) bool, True where hair grows."""
        d = np.asarray(d, np.float64)
        ok = d[:, 1] > self.limit_y(np.arctan2(d[:, 0], d[:, 2]))
        return ok & ~self.in_crown_gap(d)


@dataclass(frozen=True)
class FaceZone:
    """The part of the face hair must not cover: |x - cx| < half_width, y < top_y, z > front_z.

    Strands entering it are moved sideways to its edge (hair parts around the face); with
    ``stop_at_top`` (a fringe) they are held at ``top_y`` instead (bangs end at the brows).
    """

    cx: float
    half_width: float
    top_y: float
    front_z: float
    stop_at_top: bool = False

    @staticmethod
    def from_head(head: HeadModel, stop_at_top: bool = False, margin: float = 0.004) -> "FaceZone":
        """From the face landmarks: cheeks 234/454, brows 105/334, the ear plane at the cheeks' z."""
        v = np.asarray(head.vertices, np.float64)[np.asarray(head.landmark_vertices)]
        cheeks, brows = v[[234, 454]], v[[105, 334]]
        return FaceZone(
            cx=float(cheeks[:, 0].mean()),
            half_width=float(np.abs(cheeks[:, 0] - cheeks[:, 0].mean()).max()) * 0.9,
            top_y=float(brows[:, 1].mean()) + margin,
            front_z=float(cheeks[:, 2].mean()),
            stop_at_top=stop_at_top,
        )

    def keep_out(self, p: np.ndarray) -> np.ndarray:
        """p : (..., 3) points; returns them moved out of the zone."""
        q = np.array(p, np.float64, copy=True)
        dx = q[..., 0] - self.cx
        inside = (np.abs(dx) < self.half_width) & (q[..., 1] < self.top_y) & (q[..., 2] > self.front_z)
        if self.stop_at_top:
            q[..., 1] = np.where(inside, self.top_y, q[..., 1])
        else:
            side = np.where(dx >= 0, 1.0, -1.0)
            q[..., 0] = np.where(inside, self.cx + side * self.half_width, q[..., 0])
        return q


@dataclass
class CardMesh:
    """Triangle soup of hair cards. vertices (n, 3) float32; triangles (m, 3) uint32; uvs (n, 2) float32."""

    vertices: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray

    def __add__(self, other: "CardMesh") -> "CardMesh":
        off = len(self.vertices)
        return CardMesh(
            np.concatenate([self.vertices, other.vertices]).astype(np.float32),
            np.concatenate([self.triangles, other.triangles + off]).astype(np.uint32),
            np.concatenate([self.uvs, other.uvs]).astype(np.float32),
        )

    @staticmethod
    def empty() -> "CardMesh":
        return CardMesh(
            np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32), np.zeros((0, 2), np.float32)
        )


class ScalpSurface:
    """The head's outer surface seen from its centre: radius as a function of direction.

    centre : (3,) float64, radii : (3,) float64 of a fitted axis-aligned ellipsoid;
    dirs : (k, 3) unit directions and rho : (k,) distances of the collision vertices from the centre.
    """

    def __init__(self, centre: np.ndarray, radii: np.ndarray, points: np.ndarray):
        self.centre = np.asarray(centre, np.float64)
        self.radii = np.asarray(radii, np.float64)
        rel = np.asarray(points, np.float64) - self.centre
        self.rho = np.linalg.norm(rel, axis=1)
        self.dirs = rel / np.maximum(self.rho[:, None], 1e-9)
        self._map: np.ndarray | None = None

    @staticmethod
    def from_head(head: HeadModel) -> "ScalpSurface":
        """Fit to the head's scalp (and face/ears/neck for collisions)."""
        v = np.asarray(head.vertices, np.float64)
        scalp = np.asarray(head.regions.get("scalp", np.zeros(0, np.int64)), np.int64)
        face = np.arange(min(468, len(v)))
        fit_idx = np.concatenate([scalp, face]) if len(scalp) else np.arange(len(v))
        centre, radii = fit_ellipsoid(v[fit_idx])
        coll = [np.asarray(head.regions.get(r, np.zeros(0, np.int64)), np.int64) for r in COLLISION_REGIONS]
        coll_idx = np.unique(np.concatenate(coll + [face]))
        if len(scalp) == 0:  # a head without a scalp region: every vertex collides
            coll_idx = np.arange(len(v))
        return ScalpSurface(centre, radii, v[coll_idx])

    def ellipsoid_radius(self, d: np.ndarray) -> np.ndarray:
        """d : (n, 3) unit directions. Returns (n,) radius of the fitted ellipsoid."""
        return 1.0 / np.sqrt(((d / self.radii) ** 2).sum(axis=1))

    #: angular resolution of the radius map (bins over the polar angle; twice as many in azimuth)
    MAP_ROWS = 90
    #: angular reach of a vertex in the map (radians): hair clears every vertex within it
    REACH = 0.12

    def _radius_map(self) -> np.ndarray:
        """(rows, 2 * rows) float64 head radius per direction bin: the largest vertex radius within
        REACH of the bin, or 0.98 of the ellipsoid where no vertex is near. Built once."""
        from scipy.ndimage import maximum_filter

        rows, cols = self.MAP_ROWS, 2 * self.MAP_ROWS
        grid = np.zeros((rows, cols))
        if len(self.dirs):
            i, j = self._bins(self.dirs)
            np.maximum.at(grid, (i, j), self.rho)
        reach = int(np.ceil(self.REACH / (np.pi / rows)))
        grid = maximum_filter(grid, size=(2 * reach + 1, 2 * reach + 1), mode=("nearest", "wrap"))
        pol = (np.arange(rows) + 0.5) * np.pi / rows
        az = (np.arange(cols) + 0.5) * 2 * np.pi / cols - np.pi
        P, A = np.meshgrid(pol, az, indexing="ij")
        d = polar_direction(P, A).reshape(-1, 3)
        ell = self.ellipsoid_radius(d).reshape(rows, cols) * 0.98
        return np.where(grid > 0, grid, ell)

    def _bins(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = self.MAP_ROWS, 2 * self.MAP_ROWS
        pol = np.arccos(np.clip(d[:, 1], -1, 1))
        az = np.arctan2(d[:, 0], d[:, 2])
        i = np.clip((pol / np.pi * rows).astype(np.int64), 0, rows - 1)
        j = np.clip(((az + np.pi) / (2 * np.pi) * cols).astype(np.int64), 0, cols - 1)
        return i, j

    def radius(self, d: np.ndarray) -> np.ndarray:
        """Radius of the head surface along unit directions d (n, 3): the largest radius among the
        collision vertices within REACH of the direction (a precomputed map), else the ellipsoid.
        Returns (n,) float64."""
        if self._map is None:
            self._map = self._radius_map()
        i, j = self._bins(np.asarray(d, np.float64))
        return self._map[i, j]

    def project(self, d: np.ndarray, offset: float = SCALP_OFFSET) -> np.ndarray:
        """Points on the surface (plus ``offset`` outward) along unit directions d (n, 3). Returns (n, 3)."""
        return self.centre + d * (self.radius(d) + offset)[:, None]

    def push_out(self, p: np.ndarray, offset: float = SCALP_OFFSET) -> np.ndarray:
        """Move points p (..., 3) radially outward so they are at least ``offset`` outside the head."""
        shape = p.shape
        q = p.reshape(-1, 3) - self.centre
        r = np.linalg.norm(q, axis=1)
        d = q / np.maximum(r[:, None], 1e-9)
        rmin = self.radius(d) + offset
        below = (self.centre[1] + q[:, 1]) < self.centre[1] - 0.6 * self.radii[1]  # under the skull: no push
        r2 = np.where(below, r, np.maximum(r, rmin))
        return (self.centre + d * r2[:, None]).reshape(shape)

    def pull_in(self, p: np.ndarray, offset: float, strength: float) -> np.ndarray:
        """Pull points p (n, 3) over the skull (above the ears) toward ``offset`` outside the surface."""
        q = p - self.centre
        r = np.linalg.norm(q, axis=1)
        d = q / np.maximum(r[:, None], 1e-9)
        target = self.radius(d) + offset
        on_skull = d[:, 1] > -0.15
        r2 = np.where(on_skull & (r > target), r - strength * (r - target), r)
        return self.centre + d * r2[:, None]

    def sample_roots(self, n: int, hairline: Hairline, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """About n roots spread evenly (Fibonacci sphere) over the hair-growing part of the scalp.

        Returns roots (m, 3) float64 on the surface + SCALP_OFFSET, and their unit directions (m, 3).
        """
        total = int(n * 2.2) + 16
        i = np.arange(total) + 0.5
        phi = np.arccos(1 - 2 * i / total)
        theta = np.pi * (1 + 5**0.5) * i
        d = polar_direction(phi, theta)
        rng = np.random.default_rng(seed)
        d = d + rng.normal(0, 0.01, d.shape)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        d = d[hairline.contains(d)]
        return self.project(d), d


def fit_ellipsoid(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares axis-aligned ellipsoid through points (n, 3). Returns centre (3,), radii (3,)."""
    p = np.asarray(points, np.float64)
    a = np.column_stack([p**2, p])
    coef, *_ = np.linalg.lstsq(a, np.ones(len(p)), rcond=None)
    A, D = coef[:3], coef[3:]
    if np.any(A <= 0):
        c = p.mean(axis=0)
        return c, np.maximum(np.ptp(p, axis=0) / 2, 0.05)
    centre = -D / (2 * A)
    k = 1 + (D**2 / (4 * A)).sum()
    radii = np.sqrt(k / A)
    return centre, radii


def grow_strands(
    surface: ScalpSurface,
    roots: np.ndarray,
    length: float | np.ndarray,
    steps: int = 8,
    part_x: float | None = None,
    lift: float = 0.0,
    gravity: float = 1.0,
    curl_amplitude: float = 0.0,
    curl_turns: float = 0.0,
    volume: float = 0.006,
    forward: np.ndarray | None = None,
    hug: float = 0.8,
    face: FaceZone | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Grow strands from roots over the head.

    roots : (n, 3) on the scalp; length : metres (scalar or (n,)).
    part_x : x of the parting in the head frame (strands comb away from it sideways); None = combed back.
    lift : 0..1 how much strands stand out along the surface normal (1 = spiky).
    gravity : 0..1 how strongly strands fall downward once past the scalp.
    curl_amplitude : metres of helical offset; curl_turns : turns along the strand.
    volume : extra distance from the skin that grows with the strand (metres at the tip).
    hug : 0..1 how strongly strands over the skull are pulled back onto the head (lying hair).
    face : keep strands out of the face (see FaceZone); None = no constraint.
    forward : (n,) bool, strands combed forward (fringe) instead of back.
    Returns paths (n, steps + 1, 3) float64.
    """
    roots = np.asarray(roots, np.float64)
    n = len(roots)
    L = np.broadcast_to(np.asarray(length, np.float64), (n,))
    c = surface.centre
    normal = roots - c
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    # initial combing direction: backward (or forward for a fringe), sideways away from the parting
    comb = np.tile(np.array([0.0, -0.2, -1.0]), (n, 1))
    if forward is not None:
        comb[forward] = np.array([0.0, -0.9, 0.5])
    if part_x is not None:
        side = np.sign(roots[:, 0] - part_x)
        side[side == 0] = 1
        near_top = np.clip(normal[:, 1], 0, 1)
        comb = comb * (1 - near_top[:, None] * 0.6)
        comb[:, 0] += side * (0.6 + near_top)
        comb[:, 1] -= 0.4
    comb = comb - (comb * normal).sum(axis=1, keepdims=True) * normal
    comb /= np.maximum(np.linalg.norm(comb, axis=1, keepdims=True), 1e-9)
    direction = (1 - lift) * comb + lift * (normal + np.array([0, 0.3, 0]))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, n)
    step = L / steps
    paths = np.empty((n, steps + 1, 3))
    paths[:, 0] = roots
    p = roots.copy()
    down = np.array([0.0, -1.0, 0.0])
    for s in range(1, steps + 1):
        t = s / steps
        rel = p - c
        nrm = rel / np.linalg.norm(rel, axis=1, keepdims=True)
        # follow the surface (remove the inward normal part), fall with gravity as the strand grows
        tang = direction - np.minimum((direction * nrm).sum(axis=1, keepdims=True), 0) * nrm * (1 - lift)
        g = gravity * min(1.0, t * 1.5) * (1 - lift)
        direction = tang * (1 - g * 0.35) + down * g * 0.35
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        p = p + direction * step[:, None]
        p = surface.push_out(p, SCALP_OFFSET + volume * t)
        if hug > 0:
            p = surface.pull_in(p, SCALP_OFFSET + volume * t, hug * (1 - lift))
        if face is not None:
            p = face.keep_out(p)
        paths[:, s] = p
    if curl_amplitude > 0 and curl_turns > 0:
        t = np.linspace(0, 1, steps + 1)
        tangent = np.gradient(paths, axis=1)
        tangent /= np.maximum(np.linalg.norm(tangent, axis=2, keepdims=True), 1e-9)
        rel = paths - c
        n1 = rel - (rel * tangent).sum(axis=2, keepdims=True) * tangent
        n1 /= np.maximum(np.linalg.norm(n1, axis=2, keepdims=True), 1e-9)
        n2 = np.cross(tangent, n1)
        ang = 2 * np.pi * curl_turns * t[None, :] + phase[:, None]
        amp = curl_amplitude * np.clip(t * 3, 0, 1)[None, :, None]
        paths = paths + amp * (np.cos(ang)[..., None] * n1 * 0.6 + np.sin(ang)[..., None] * n2)
        paths = surface.push_out(paths, SCALP_OFFSET)
    if face is not None:
        paths = face.keep_out(paths)
    return paths


def ribbons(
    paths: np.ndarray,
    widths: float | np.ndarray,
    surface: ScalpSurface,
    column: int = 1,
    taper: float = 0.5,
    facing: str = "surface",
) -> CardMesh:
    """Polystrip cards along strand paths.

    paths : (n, k, 3); widths : metres at the root (scalar or (n,)), narrowing by ``taper`` at the tip.
    facing : "surface" = the card lies along the head (width across the surface),
             "normal" = the card stands out of the surface (spikes).
    column : texture atlas column (1..3). Returns a CardMesh with 2*n*k vertices and 2*n*(k-1) triangles.
    """
    paths = np.asarray(paths, np.float64)
    n, k, _ = paths.shape
    w = np.broadcast_to(np.asarray(widths, np.float64), (n,))
    tangent = np.gradient(paths, axis=1)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=2, keepdims=True), 1e-9)
    rel = paths - surface.centre
    nrm = rel / np.maximum(np.linalg.norm(rel, axis=2, keepdims=True), 1e-9)
    side = np.cross(tangent, nrm) if facing == "surface" else np.cross(tangent, np.cross(nrm, tangent))
    side_n = np.linalg.norm(side, axis=2, keepdims=True)
    fallback = np.cross(tangent, np.array([0.0, 0.0, 1.0]))
    side = np.where(side_n > 1e-6, side / np.maximum(side_n, 1e-9), fallback)
    t = np.linspace(0, 1, k)
    half = 0.5 * w[:, None] * (1 - taper * t[None, :])
    left = paths - side * half[..., None]
    right = paths + side * half[..., None]
    verts = np.stack([left, right], axis=2).reshape(-1, 3)
    u0 = column / ATLAS_COLUMNS
    u1 = (column + 1) / ATLAS_COLUMNS
    uv = np.empty((n, k, 2, 2))
    uv[:, :, 0, 0] = u0 + 0.01
    uv[:, :, 1, 0] = u1 - 0.01
    uv[:, :, :, 1] = t[None, :, None] * 0.98 + 0.01
    base = (np.arange(n)[:, None] * k + np.arange(k - 1)[None, :]) * 2  # (n, k-1)
    a, b, c2, d = base, base + 1, base + 2, base + 3
    tris = np.stack([np.stack([a, c2, b], -1), np.stack([b, c2, d], -1)], axis=2).reshape(-1, 3)
    return CardMesh(verts.astype(np.float32), tris.astype(np.uint32), uv.reshape(-1, 2).astype(np.float32))


def hairline_polar(hairline: Hairline, az: np.ndarray, top: float = 0.02) -> np.ndarray:
    """Polar angle (radians from the top of the head) of the lower hairline at azimuths ``az``,
    kept between just below ``top`` and below the ears."""
    return np.clip(np.arccos(np.clip(hairline.limit_y(az), -1.0, 1.0)), top + 0.05, 0.72 * np.pi)


def cap_shell(
    surface: ScalpSurface,
    hairline: Hairline,
    rows: int = 16,
    cols: int = 48,
    offset: float = 0.003,
    edge_lift: float = 0.0,
) -> CardMesh:
    """A shell over the hair-growing scalp (so no skin shows between cards), textured with the dense
    cap part of the atlas's column 0. ``edge_lift`` (radians) ends it that far above the hairline,
    for :func:`hairline_band` to finish. Returns a CardMesh of at most 2 * rows * cols triangles."""
    az = np.linspace(-np.pi, np.pi, cols + 1)
    # each column runs from the top down to the hairline itself (at most to below the ears), so the
    # shell's lower edge follows the hairline smoothly instead of in grid steps
    top = 0.02
    bottom = np.maximum(hairline_polar(hairline, az, top) - edge_lift, top + 0.05)
    P = top + (bottom - top)[None, :] * np.linspace(0.0, 1.0, rows + 1)[:, None]
    A = np.broadcast_to(az[None, :], P.shape)
    d = polar_direction(P, A).reshape(-1, 3)
    verts = surface.project(d, offset)
    inside = (~hairline.in_crown_gap(d)).reshape(rows + 1, cols + 1)
    uv = np.stack([(A / (2 * np.pi) + 0.5) * 4.0, P / np.pi * 3.0], -1).reshape(-1, 2)
    uv = np.column_stack(
        [
            np.mod(uv[:, 0], 1.0) * (0.98 / ATLAS_COLUMNS) + 0.005,
            np.mod(uv[:, 1], 1.0) * (CAP_V - 0.02) + 0.01,
        ]
    )
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a = i * (cols + 1) + j
    b, c2, d2 = a + 1, a + cols + 1, a + cols + 2
    # a bald crown patch: a quad goes when all its corners are in the patch
    keep = inside[i, j] | inside[i, j + 1] | inside[i + 1, j] | inside[i + 1, j + 1]
    t1 = np.stack([a, b, c2], -1)[keep]
    t2 = np.stack([b, d2, c2], -1)[keep]
    tris = np.concatenate([t1, t2])
    # only the vertices the kept quads use (a bald crown drops many)
    used, tris = np.unique(tris, return_inverse=True)
    tris = tris.reshape(-1, 3).astype(np.uint32)
    # the seam at az = +-pi duplicates vertices; the UV wrap is hidden under the cards
    return CardMesh(verts[used].astype(np.float32), tris, uv[used].astype(np.float32))


def hairline_band(
    surface: ScalpSurface,
    hairline: Hairline,
    cols: int = 72,
    above: float = 0.10,
    below: float = 0.02,
    offset: float = 0.0025,
    repeats: int = 24,
) -> CardMesh:
    """A strip of hair along the lower hairline whose strand tips end raggedly (the hairline part of
    the atlas's column 0), so the hair does not stop in one clean line across the forehead. It runs
    from ``above`` radians over the hairline (over the shell's edge) to ``below`` under it; each quad
    has its own vertices, so the texture repeats ``repeats`` times round the head without a seam.
    Quads inside a bald crown patch are left out. Returns at most 2 * cols triangles."""
    az = np.linspace(-np.pi, np.pi, cols + 1)
    polar = hairline_polar(hairline, az)
    upper, lower = np.maximum(polar - above, 0.03), polar + below

    j = np.arange(cols)
    corners = [(upper[j], az[j]), (upper[j + 1], az[j + 1]), (lower[j], az[j]), (lower[j + 1], az[j + 1])]
    d = np.stack([polar_direction(p, a) for p, a in corners], axis=1)  # (cols, 4, 3)
    keep = ~hairline.in_crown_gap(d.reshape(-1, 3)).reshape(cols, 4).all(axis=1)
    d = d[keep]
    if not len(d):
        return CardMesh.empty()
    verts = surface.project(d.reshape(-1, 3), offset)
    per = max(1, cols // repeats)  # quads per texture repeat
    k = np.flatnonzero(keep) % per
    u0 = 0.005 + (0.98 / ATLAS_COLUMNS) * k / per
    u1 = 0.005 + (0.98 / ATLAS_COLUMNS) * (k + 1) / per
    v0, v1 = CAP_V + 0.01, 0.99
    uv = np.stack(
        [
            np.stack([u0, np.full_like(u0, v0)], -1),
            np.stack([u1, np.full_like(u0, v0)], -1),
            np.stack([u0, np.full_like(u0, v1)], -1),
            np.stack([u1, np.full_like(u0, v1)], -1),
        ],
        1,
    )
    base = 4 * np.arange(len(d))[:, None]
    tris = np.concatenate([base + [0, 2, 1], base + [1, 2, 3]]).astype(np.uint32)
    return CardMesh(verts.astype(np.float32), tris, uv.reshape(-1, 2).astype(np.float32))


def strand_texture(
    colour_rgb: tuple[int, int, int], size: int = 256, seed: int = 7, stubble: bool = False
) -> np.ndarray:
    """Procedural RGBA strand atlas (size, size, 4) uint8 with ATLAS_COLUMNS columns.

    Column 0: dense cap (alpha 1, fine strands; with ``stubble`` sparse dots over skin-coloured alpha 0.8)
    above CAP_V, and below it the hairline strip (the same strands ending in ragged tips);
    columns 1..3: cards with 20 / 12 / 7 strands, alpha fading at the card edges and the tip (v = 1).
    Colour: the hair colour modulated by per-strand brightness and a root-to-tip gradient, each
    column's alpha-weighted mean equal to ``colour_rgb``.
    """
    rng = np.random.default_rng(seed)
    h = w = size
    cw = w // ATLAS_COLUMNS
    lum = np.zeros((h, w), np.float32)
    alpha = np.zeros((h, w), np.float32)
    v = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.arange(cw, dtype=np.float32)[None, :]
    # column 0: dense strands
    freq = rng.uniform(0.6, 1.4, 24)
    col0 = 0.75 + 0.25 * np.sin(x * freq[:, None, None].mean() * 1.7 + 3 * np.sin(v * 6.0))
    noise = rng.normal(0, 0.08, (h, cw)).astype(np.float32)
    lum[:, :cw] = np.clip(col0 + noise, 0.4, 1.1)
    alpha[:, :cw] = 0.8 if stubble else 1.0
    if not stubble:
        # the hairline part (v > CAP_V): the same strands, each column of texels ending at its own
        # random length, so a band mapped onto it ends in ragged tips (see hairline_band)
        band = v[:, 0] > CAP_V
        t = (v[band, 0] - CAP_V) / (1.0 - CAP_V)  # 0 at the band's top, 1 at its bottom
        tips = np.convolve(rng.uniform(0.25, 1.0, cw + 2), np.ones(3) / 3, "valid")[None, :]
        alpha[band, :cw] = np.clip((tips - t[:, None]) / 0.08, 0.0, 1.0)
    if stubble:
        dots = rng.random((h, cw)) < 0.25
        lum[:, :cw] = np.where(dots, 0.7, 1.0)
    for c, count in zip(range(1, ATLAS_COLUMNS), (20, 12, 7), strict=True):
        centres = rng.uniform(0.08, 0.92, count) * cw
        widths = rng.uniform(0.8, 2.2, count) * (cw / 64)
        brightness = rng.uniform(0.7, 1.15, count)
        wobble = rng.uniform(-2, 2, count)
        xs = x[None] - (centres[:, None, None] + wobble[:, None, None] * np.sin(v[None] * 3.0))
        prof = np.exp(-0.5 * (xs / widths[:, None, None]) ** 2)  # (count, h, cw)
        ends = rng.uniform(0.8, 1.0, count)[:, None, None]
        prof = prof * (v[None] < ends)
        a = np.clip(prof.max(axis=0) * 1.6, 0, 1)
        l_ = (prof * brightness[:, None, None]).max(axis=0) / np.maximum(prof.max(axis=0), 1e-3)
        edge = np.clip(np.minimum(x, cw - 1 - x) / (cw * 0.06), 0, 1)
        tip = np.clip((1.0 - v) / 0.15, 0, 1)
        alpha[:, c * cw : (c + 1) * cw] = a * edge * tip
        lum[:, c * cw : (c + 1) * cw] = np.where(a > 0.01, l_, 1.0)
    gradient = 0.85 + 0.3 * v  # slightly lighter toward the tips
    shade = lum * gradient
    # ``colour_rgb`` is the hair's mean colour (what the photo shows): each column's strand pattern
    # varies round it instead of darkening it (unnormalised, the cap averaged 0.75 of the colour and
    # rendered hair came out ~7 L* darker than the photo's)
    for c in range(ATLAS_COLUMNS):
        cols = slice(c * cw, (c + 1) * cw)
        weight = alpha[:, cols]
        shade[:, cols] /= float((shade[:, cols] * weight).sum() / max(float(weight.sum()), 1e-6))
    rgb = np.clip(np.asarray(colour_rgb, np.float32)[None, None, :] * shade[..., None], 0, 255)
    return np.dstack([rgb, alpha[..., None] * 255]).astype(np.uint8)


def finish(mesh: CardMesh, colour_rgb: tuple[int, int, int], style: str, stubble: bool = False) -> HairModel:
    """Wrap cards as a HairModel with the strand texture in the hair colour (alphaMode MASK)."""
    return HairModel(
        vertices=mesh.vertices.astype(np.float32),
        triangles=mesh.triangles.astype(np.uint32),
        uvs=mesh.uvs.astype(np.float32),
        texture=strand_texture(colour_rgb, stubble=stubble),
        style=style,
        alpha_mode="MASK",
        alpha_cutoff=0.4,
    )
