"""The procedural hairstyle library: named styles of hair cards, chosen and varied by HairAttributes.

Styles (``STYLES``): bald, buzz, spiky_short, short_straight, short_curly, short_coily, medium_straight,
medium_wavy, medium_curly, medium_coily (an afro), long_straight, long_wavy, long_curly, bun, ponytail.
Every style takes the fringe (none / partial / full), the parting (none / left / centre / right, the
subject's own side; left = +X), the baldness pattern (receding hairline, bare crown) and the photo's
hair colour from the attributes.
Each is built on the head's own scalp (``ScalpSurface``) and kept under ``MAX_TRIANGLES``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vrhub.hair.cards import (
    SCALP_OFFSET,
    CardMesh,
    FaceZone,
    Hairline,
    ScalpSurface,
    cap_shell,
    finish,
    grow_strands,
    hairline_band,
    polar_direction,
    ribbons,
)
from vrhub.pipeline.types import HairAttributes, HairModel, HeadModel

MAX_TRIANGLES = 8000
#: radians the scalp shell ends above the hairline; the ragged hairline strip covers the rest
HAIRLINE_LIFT = 0.04
#: metres a side-swept (partial) fringe's tips move toward the far temple
FRINGE_SWEEP = 0.016
#: where a partial fringe's roots start across the forehead (x of the unit direction, on the
#: parting's side of the middle); its strands grow from short wisps there to full length
PARTIAL_INNER = -0.2
#: metres over which a fringe's tips spread above the brows
FRINGE_RAGGED = 0.012


@dataclass(frozen=True)
class StyleSpec:
    """Parameters of one hairstyle (lengths in metres).

    length : strand length; steps : segments per strand; width : card width at the root;
    lift : 0 (lies on the head) .. 1 (stands out, spikes); gravity : how much strands fall;
    curl_amplitude / curl_turns : helical curl; volume : distance from the skin at the tip;
    cap_only : only the scalp shell (buzz); extra : "bun" | "ponytail" | "".
    """

    length: float
    steps: int = 8
    width: float = 0.014
    lift: float = 0.0
    gravity: float = 1.0
    curl_amplitude: float = 0.0
    curl_turns: float = 0.0
    volume: float = 0.008
    cap_only: bool = False
    extra: str = ""
    layers: int = 2
    hug: float = 0.8


STYLES: dict[str, StyleSpec] = {
    "buzz": StyleSpec(length=0.0, cap_only=True),
    "spiky_short": StyleSpec(length=0.045, steps=4, width=0.010, lift=0.75, gravity=0.0, volume=0.01),
    "short_straight": StyleSpec(length=0.075, steps=5, width=0.016, gravity=0.4, volume=0.008),
    "short_curly": StyleSpec(
        length=0.06,
        steps=6,
        width=0.014,
        lift=0.2,
        gravity=0.2,
        curl_amplitude=0.008,
        curl_turns=2.0,
        volume=0.016,
        hug=0.5,
    ),
    # coily (type 4) hair grows outward in tight coils: a rounded, even silhouette, not a falling mop
    "short_coily": StyleSpec(
        length=0.045,
        steps=6,
        width=0.012,
        lift=0.45,
        gravity=0.05,
        curl_amplitude=0.004,
        curl_turns=4.0,
        volume=0.02,
        hug=0.2,
    ),
    "medium_coily": StyleSpec(  # an afro: short coils held out in a dense rounded volume
        length=0.06,
        steps=8,
        width=0.016,
        lift=0.25,
        gravity=0.1,
        curl_amplitude=0.012,
        curl_turns=3.5,
        volume=0.05,
        hug=0.1,
    ),
    "medium_straight": StyleSpec(length=0.2, steps=9, width=0.018, gravity=1.0, volume=0.012),
    "medium_wavy": StyleSpec(
        length=0.19, steps=10, width=0.018, gravity=1.0, curl_amplitude=0.012, curl_turns=1.5, volume=0.016
    ),
    "medium_curly": StyleSpec(
        length=0.16,
        steps=10,
        width=0.016,
        lift=0.1,
        gravity=0.7,
        curl_amplitude=0.02,
        curl_turns=3.0,
        volume=0.035,
        hug=0.3,
    ),
    "long_straight": StyleSpec(length=0.34, steps=11, width=0.018, gravity=1.0, volume=0.012),
    "long_wavy": StyleSpec(
        length=0.33, steps=12, width=0.018, gravity=1.0, curl_amplitude=0.015, curl_turns=2.0, volume=0.018
    ),
    "long_curly": StyleSpec(
        length=0.28,
        steps=12,
        width=0.016,
        lift=0.1,
        gravity=0.8,
        curl_amplitude=0.025,
        curl_turns=4.0,
        volume=0.04,
        hug=0.3,
    ),
    "bun": StyleSpec(length=0.13, steps=6, width=0.016, gravity=0.1, volume=0.004, extra="bun", hug=1.0),
    "ponytail": StyleSpec(
        length=0.13, steps=6, width=0.016, gravity=0.1, volume=0.004, extra="ponytail", hug=1.0
    ),
}

STYLE_NAMES: tuple[str, ...] = ("bald", *STYLES)


def choose_style(attributes: HairAttributes) -> str:
    """The library style that best matches the attributes (headwear never turns into baldness)."""
    length, texture = attributes.length, attributes.texture
    if attributes.baldness == "full" or length == "bald":
        return "buzz" if attributes.headwear != "none" else "bald"
    if length == "buzz":
        return "buzz"
    curly = texture in ("curly", "coily")
    if length == "short":
        if attributes.spikiness == "spiky":
            return "spiky_short"
        if texture == "coily":
            return "short_coily"
        return "short_curly" if curly else "short_straight"
    if length == "medium":
        if texture == "coily":
            return "medium_coily"
        return "medium_curly" if curly else ("medium_wavy" if texture == "wavy" else "medium_straight")
    if length == "long":
        return "long_curly" if curly else ("long_wavy" if texture == "wavy" else "long_straight")
    return "short_straight"


def hairline_for(attributes: HairAttributes, surface: ScalpSurface, head: HeadModel) -> Hairline:
    """Hairline from the head (forehead top = canonical landmark 10) and the baldness pattern."""
    front_y = 0.5
    if len(head.vertices) > 10:
        lv = np.asarray(head.landmark_vertices)
        forehead = np.asarray(head.vertices[lv[10]], np.float64)
        d = forehead - surface.centre
        front_y = float(d[1] / max(np.linalg.norm(d), 1e-9)) + 0.02
        if attributes.hairline is not None and len(lv) > 152:
            # the photo's own hairline, measured above landmark 10 in forehead-to-chin units; only
            # ever raised (a fringe is drawn by fringe strands, and a hair mask that runs over the
            # forehead is a segmentation error more often than a hairline)
            # The photo measures it as a height in the image, so it is placed at that height in
            # the photo's view: the point of the forehead's midline that high above landmark 10
            # along the image's up direction at the photo's pitch. (Taking the direction of the
            # point that far along the chin -> forehead line put the hairline about half as high:
            # that point floats in front of the sloping forehead, and the ray from the head's
            # centre through it meets the scalp lower down.)
            pitch = np.radians(float(head.quality.get("pitch", 0.0) or 0.0))
            up = np.array([0.0, np.cos(pitch), np.sin(pitch)])
            chin = np.asarray(head.vertices[lv[152]], np.float64)
            lift = float(np.clip(attributes.hairline, 0.0, 0.45)) * float((forehead - chin) @ up)
            front_y = max(front_y, midline_direction_y(surface, float(forehead @ up) + lift, up))
    if attributes.baldness == "crown_or_top":
        # male-pattern baldness: bare from the forehead over the top to the crown, hair left as a
        # horseshoe over the ears and round the back
        return Hairline(front_y=max(front_y, 0.75), recede=0.7, crown_gap=1.0, crown_tilt=-0.12)
    recede = 0.7 if attributes.baldness == "receding" else 0.0
    edge, blend = face_edge(surface, head)
    return Hairline(front_y=front_y, recede=recede, face_edge=edge, edge_blend=blend)


#: The face oval's landmarks from the forehead's middle (10) down each side to the ear (234 on the
#: subject's right, 454 on the left), in mediapipe's face mesh.
OVAL_RIGHT = (10, 109, 67, 103, 54, 21, 162, 127, 234)
OVAL_LEFT = (10, 338, 297, 332, 284, 251, 389, 356, 454)
#: The hairline turns down toward the face's edge between these landmarks' azimuths (upper
#: forehead -> forehead corner).
EDGE_BLEND_LANDMARKS = (67, 54)


def face_edge(
    surface: ScalpSurface, head: HeadModel
) -> tuple[tuple[tuple[float, float], ...], tuple[float, float]]:
    """The face's upper outline as (azimuth, y) knots of unit directions from the scalp's centre,
    sorted by azimuth, and the |azimuth| range over which the hairline turns down to it (see
    :class:`vrhub.hair.cards.Hairline`). ((), (0, 0)) for a head without the face mesh."""
    if len(head.vertices) < 468:
        return (), (0.0, 0.0)
    ids = OVAL_RIGHT[::-1] + OVAL_LEFT[1:]
    d = np.asarray(head.vertices, np.float64)[np.asarray(head.landmark_vertices)[list(ids)]] - surface.centre
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    az = np.arctan2(d[:, 0], d[:, 2])
    order = np.argsort(az, kind="stable")
    knots = tuple((float(a), float(y)) for a, y in zip(az[order], d[order, 1], strict=True))
    # the blend runs between the two sides' mean |azimuth| of each landmark pair
    b0, b1 = (
        float(np.abs(az[[ids.index(i), ids.index(OVAL_LEFT[OVAL_RIGHT.index(i)])]]).mean())
        for i in EDGE_BLEND_LANDMARKS
    )
    return knots, (b0, max(b1, b0 + 1e-3))


def midline_direction_y(surface: ScalpSurface, height: float, up: np.ndarray | None = None) -> float:
    """y of the unit direction (from the scalp's centre) at which the front midline of the head
    surface is ``height`` metres along ``up`` (head frame; default +Y, the image's up in a photo
    taken at the head's own level); the surface is searched from the top of the head down to its
    equator."""
    u = np.array([0.0, 1.0, 0.0]) if up is None else np.asarray(up, np.float64)
    polar = np.linspace(0.02, np.pi / 2, 200)
    d = polar_direction(polar, np.zeros_like(polar))
    y = surface.project(d, 0.0) @ u
    # from the highest point along ``up`` (the top of the head, or behind it for a raised chin)
    # the midline falls to the equator
    top = int(np.argmax(y))
    polar, y = polar[top:], y[top:]
    if height >= y[0] or len(y) < 2:
        return float(np.cos(polar[0]))
    if height <= y[-1]:
        return float(np.cos(polar[-1]))
    k = int(np.argmax(y < height))
    t = (y[k - 1] - height) / max(y[k - 1] - y[k], 1e-12)
    return float(np.cos(polar[k - 1] + t * (polar[k] - polar[k - 1])))


def _part_x(attributes: HairAttributes, surface: ScalpSurface) -> float | None:
    rx = surface.radii[0]
    return {"left": 0.35 * rx, "right": -0.35 * rx, "centre": 0.0}.get(attributes.parting, None)


def build_style(name: str, attributes: HairAttributes, head: HeadModel, seed: int = 0) -> HairModel:
    """Hair cards of style ``name`` fitted to ``head``, coloured and varied by ``attributes``."""
    if name == "bald":
        return HairModel.empty("bald")
    spec = STYLES[name]
    surface = ScalpSurface.from_head(head)
    hairline = hairline_for(attributes, surface, head)
    colour = tuple(int(c) for c in attributes.colour_rgb)
    if spec.cap_only:
        mesh = cap_shell(surface, hairline, rows=28, cols=56, offset=0.0015)
        return finish(mesh, colour, style=name, stubble=True)  # type: ignore[arg-type]

    # the shell stops short of the hairline and a strip of ragged strand tips finishes it
    mesh = cap_shell(surface, hairline, offset=0.002, edge_lift=HAIRLINE_LIFT) + hairline_band(
        surface, hairline
    )
    budget = MAX_TRIANGLES - len(mesh.triangles) - 200
    extra_budget = 0
    if spec.extra:
        extra_budget = budget // 3
        budget -= extra_budget
    fringe = attributes.fringe if attributes.fringe in ("partial", "full") else "none"
    fringe_budget = budget // 6 if fringe != "none" else 0
    budget -= fringe_budget
    tris_per = 2 * spec.steps
    n_main = max(40, budget // tris_per)
    part_x = _part_x(attributes, surface) if not spec.extra else None

    face_zone = FaceZone.from_head(head) if len(head.vertices) >= 468 else None
    # main strands in layers: an inner layer lying close, an outer one with more volume
    per_layer = n_main // spec.layers
    for layer in range(spec.layers):
        roots, dirs = surface.sample_roots(per_layer, hairline, seed=seed + layer)
        roots, dirs = roots[:per_layer], dirs[:per_layer]
        rng = np.random.default_rng(seed + 10 + layer)
        lengths = spec.length * rng.uniform(0.8, 1.1, len(roots))
        # strands from the front hairline are shorter when they must clear the face
        front = (dirs[:, 2] > 0.55) & (dirs[:, 1] < hairline.front_y + 0.25)
        if spec.gravity > 0.5:
            lengths = np.where(front & (part_x is None), lengths * 0.9, lengths)
        paths = grow_strands(
            surface,
            roots,
            lengths,
            steps=spec.steps,
            part_x=part_x,
            lift=spec.lift,
            gravity=spec.gravity,
            curl_amplitude=spec.curl_amplitude,
            curl_turns=spec.curl_turns,
            volume=spec.volume * (0.5 + layer),
            hug=spec.hug,
            face=face_zone,
            seed=seed + layer,
        )
        facing = "normal" if spec.lift > 0.5 else "surface"
        cards = ribbons(
            paths,
            spec.width * (1.2 - 0.3 * layer),
            surface,
            column=1 + layer % 3,
            taper=0.9 if spec.lift > 0.5 else 0.5,
            facing=facing,
        )
        if face_zone is not None:  # card edges too, not only the strand centre lines
            cards.vertices = face_zone.keep_out(cards.vertices).astype(np.float32)
        mesh = mesh + cards

    if fringe != "none":
        mesh = mesh + _fringe(surface, hairline, spec, fringe, attributes, fringe_budget, seed, head)
    if spec.extra == "bun":
        mesh = mesh + _bun(surface, extra_budget, seed)
    elif spec.extra == "ponytail":
        mesh = mesh + _ponytail(surface, extra_budget, seed)
    return finish(mesh, colour, style=_style_label(name, attributes))  # type: ignore[arg-type]


def _style_label(name: str, attributes: HairAttributes) -> str:
    parts = [name]
    if attributes.fringe in ("partial", "full"):
        parts.append(f"fringe_{attributes.fringe}")
    if attributes.parting in ("left", "right", "centre"):
        parts.append(f"part_{attributes.parting}")
    return "+".join(parts)


def _fringe(
    surface: ScalpSurface,
    hairline: Hairline,
    spec: StyleSpec,
    kind: str,
    attributes: HairAttributes,
    budget: int,
    seed: int,
    head: HeadModel,
) -> CardMesh:
    """Strands from the front of the scalp combed forward over the forehead (full: brow to brow;
    partial: a side-swept lock, densest and longest on the side away from the parting, thinning out
    in short wisps toward the other side). Tips end at uneven heights above the brows."""
    steps = 6
    n = max(12, budget // (2 * steps))
    roots, dirs = surface.sample_roots(n * 8, replace(hairline, crown_gap=0.0), seed=seed + 99)
    front = (dirs[:, 2] > 0.6) & (dirs[:, 1] < hairline.front_y + 0.3)
    rng = np.random.default_rng(seed + 98)
    sign = -1.0 if attributes.parting == "left" else 1.0
    across = sign * dirs[:, 0]  # > 0 on the lock's side
    if kind == "partial":
        # the lock reaches past the middle of the forehead and fades out there, strand by strand
        front &= across > PARTIAL_INNER + rng.normal(0.0, 0.05, len(dirs))
    roots, dirs, across = roots[front][:n], dirs[front][:n], across[front][:n]
    if len(roots) == 0:
        return CardMesh.empty()
    base = 0.075 if spec.length > 0.05 else 0.05
    length = base * rng.uniform(0.8, 1.12, len(roots))
    if kind == "partial":
        # short wisps at the inner edge, the full length from a little past the middle outward
        length *= np.clip(0.3 + 0.7 * (across - PARTIAL_INNER) / (0.2 - PARTIAL_INNER), 0.3, 1.0)
    fwd = np.ones(len(roots), bool)
    face = FaceZone.from_head(head, stop_at_top=True) if len(head.vertices) >= 468 else None
    paths = grow_strands(
        surface, roots, length, steps=steps, gravity=0.6, forward=fwd, volume=0.006,
        curl_amplitude=spec.curl_amplitude * 0.5, curl_turns=spec.curl_turns * 0.5, seed=seed + 5,
        face=face,
    )  # fmt: skip
    if face is not None:
        # every strand stops at its own height over the brows, so the tips do not line up
        stop = face.top_y + rng.uniform(0.0, FRINGE_RAGGED, len(paths))[:, None]
        over = (np.abs(paths[..., 0] - face.cx) < face.half_width) & (paths[..., 2] > face.front_z)
        paths[..., 1] = np.where(over, np.maximum(paths[..., 1], stop), paths[..., 1])
    if kind == "partial":
        # swept toward the far temple: the tips shift sideways, more the further along the strand
        t = np.linspace(0.0, 1.0, steps + 1) ** 1.3
        paths[:, :, 0] += sign * FRINGE_SWEEP * t[None, :]
        paths = surface.push_out(paths, SCALP_OFFSET)
        if face is not None:
            paths = face.keep_out(paths)
    return ribbons(paths, 0.016, surface, column=1, taper=0.5)


def _bun(surface: ScalpSurface, budget: int, seed: int) -> CardMesh:
    """A bun at the back of the crown: coiled strands around a sphere of ~4 cm radius."""
    c, r = surface.centre, surface.radii
    centre = c + np.array([0.0, 0.45 * r[1], -1.0 * r[2] - 0.02])
    steps = 10
    n = max(16, budget // (2 * steps))
    rng = np.random.default_rng(seed + 7)
    radius = 0.035
    start = rng.uniform(0, 2 * np.pi, n)
    tilt = rng.uniform(-1.2, 1.2, n)
    t = np.linspace(0, 1.6 * np.pi, steps + 1)
    ang = start[:, None] + t[None, :]
    el = tilt[:, None] * np.cos(t[None, :] * 0.5)
    pts = np.stack([np.cos(el) * np.cos(ang), np.sin(el), np.cos(el) * np.sin(ang)], -1) * radius
    paths = centre + pts
    tmp = ScalpSurface(centre, np.array([radius] * 3), np.zeros((0, 3)))
    return ribbons(paths, 0.014, tmp, column=2, taper=0.2)


def _ponytail(surface: ScalpSurface, budget: int, seed: int) -> CardMesh:
    """A ponytail gathered at the back of the head, falling ~25 cm."""
    c, r = surface.centre, surface.radii
    tie = c + np.array([0.0, 0.15 * r[1], -1.02 * r[2] - 0.012])
    steps = 10
    n = max(16, budget // (2 * steps))
    rng = np.random.default_rng(seed + 8)
    spread = rng.normal(0, 1, (n, 2)) * 0.012
    t = np.linspace(0, 1, steps + 1)
    y = -0.25 * t
    z = -0.05 * np.sin(t * np.pi * 0.5) - 0.02 * t
    bulge = 0.6 + 1.4 * np.sin(np.clip(t, 0, 1) * np.pi * 0.8)
    paths = np.empty((n, steps + 1, 3))
    paths[..., 0] = tie[0] + spread[:, :1] * bulge[None, :]
    paths[..., 1] = tie[1] + y[None, :]
    paths[..., 2] = tie[2] + z[None, :] + spread[:, 1:] * bulge[None, :]
    tmp = ScalpSurface(tie + np.array([0, 0, 0.05]), np.array([0.05] * 3), np.zeros((0, 3)))
    return ribbons(paths, 0.016, tmp, column=2, taper=0.6)


def build_hair(attributes: HairAttributes, head: HeadModel, style: str | None = None) -> HairModel:
    """The hairstyle for these attributes on this head (``style`` forces a library style)."""
    return build_style(style or choose_style(attributes), attributes, head)
