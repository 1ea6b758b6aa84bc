"""The landmark_head reconstruct stage turns real photos into closed, textured, metric heads."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from vrhub.pipeline.run import PipelineError
from vrhub.pipeline.types import ARKIT_BLENDSHAPES, HeadModel, Photo, Segmentation
from vrhub.stages.landmark_head import reconstruct_head
from vrhub.stages.mediapipe_detect import detect_face

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACES = SHARED / "data" / "faces"
PHOTOS = sorted(p for p in FACES.glob("*") if p.suffix.lower() in {".jpg", ".png"}) if FACES.is_dir() else []
needs_photos = pytest.mark.skipif(not PHOTOS, reason="../shared/data/faces is not present")

REGIONS = (
    "face",
    "scalp",
    "neck",
    "ear_L",
    "ear_R",
    "eyeball_L",
    "eyeball_R",
    "teeth_upper",
    "teeth_lower",
    "tongue",
    "mouth_cavity",
)


def _photo(path: Path) -> Photo:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return Photo(np.ascontiguousarray(bgr[:, :, ::-1]), name=path.name)


def _inside(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Ray-parity point-in-closed-mesh test: points (k, 3), triangle corners (m, 3, 3) -> (k,) bool."""
    d = np.array([0.5773, 0.5774, 0.5773])  # a direction no edge of these meshes is parallel to
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    e1, e2 = b - a, c - a
    h = np.cross(d, e2)
    det = (e1 * h).sum(1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s_ = points[:, None, :] - a[None]
    u = (s_ * h[None]).sum(2) * inv
    q = np.cross(s_, e1[None])
    w = (q * d).sum(2) * inv
    dist = (q * e2[None]).sum(2) * inv
    hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (dist > 0)
    return hit.sum(1) % 2 == 1


def _inside_the_mouth(head: HeadModel) -> dict[str, float]:
    """Share of the teeth's and tongue's vertices inside the mouth pocket (the cavity's triangles
    closed by a fan over the inner lip ring)."""
    from vrhub.geometry.canonical_face import MOUTH_RING

    v, t = head.vertices, head.triangles
    ring = np.asarray(MOUTH_RING)
    cavity = set(head.regions["mouth_cavity"].tolist()) | set(ring.tolist())
    pocket = t[np.isin(t, list(cavity)).all(1)].astype(np.int64)
    verts = np.concatenate([v.astype(float), v[ring].mean(0, keepdims=True).astype(float)])
    fan = np.stack([ring, np.roll(ring, -1), np.full(len(ring), len(v))], 1)
    closed = verts[np.concatenate([pocket, fan])]
    return {
        name: float(_inside(v[head.regions[name]].astype(float), closed).mean())
        for name in ("teeth_upper", "teeth_lower", "tongue")
    }


def _no_segmentation(photo: Photo) -> Segmentation:
    z = np.zeros(photo.pixels.shape[:2], np.float32)
    return Segmentation(hair=z, skin=z + 1, body=z, background=z)


def _build(path: Path, size: int = 512) -> tuple[Photo, HeadModel]:
    photo = _photo(path)
    face = detect_face(photo)
    return photo, reconstruct_head(photo, face, _no_segmentation(photo), texture_size=size)


@needs_photos
@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_every_shared_photo_gives_a_closed_metric_textured_head(path: Path):
    photo, head = _build(path)
    v, t = head.vertices, head.triangles
    assert v.dtype == np.float32 and t.dtype == np.uint32 and head.uvs.dtype == np.float32
    assert np.array_equal(head.landmark_vertices, np.arange(468))
    for name in REGIONS:
        assert len(head.regions[name]) > 0, name
    # metres: head ~ 15 cm wide, eyes ~ 6.3 cm apart, chin below the eyes below the crown
    width = v[:, 0].max() - v[:, 0].min()
    assert 0.13 < width < 0.24
    assert v[10, 1] > 0 > v[152, 1]
    assert v[1, 2] > 0.05  # nose tip in front of the ears' plane
    # closed but for the neck
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]).astype(np.int64)
    counts = Counter(map(tuple, np.sort(e, 1).tolist()))
    open_edges = [k for k, c in counts.items() if c != 2]
    assert all(counts[k] == 1 for k in open_edges)
    rim_y = v[np.unique(np.array(open_edges)), 1]
    assert np.ptp(rim_y) < 1e-4 and rim_y.mean() < v[152, 1]
    assert len(t) <= 12_000
    # texture: not flat, no NaN-born black, skin tone plausible
    tex = head.albedo
    assert tex.shape == (512, 512, 3) and tex.dtype == np.uint8
    face_px = tex[180:330, 180:330].reshape(-1, 3).astype(float)
    assert face_px.std(0).mean() > 8
    assert 40 < np.mean(head.skin_tone) < 250
    assert head.expression_removed.shape == (52,)
    # inner parts stay inside: each eyeball is enclosed by its lids and socket (every ring and
    # socket vertex outside the ball), teeth and tongue sit behind the lips
    from vrhub.geometry.canonical_face import EYE_RING_L, EYE_RING_R

    for side, ring in (("L", EYE_RING_L), ("R", EYE_RING_R)):
        ball = v[head.regions[f"eyeball_{side}"]].astype(float)
        centre = ball.mean(0)
        radius = np.linalg.norm(ball - centre, axis=1).mean()
        around = np.concatenate([v[list(ring)], v[head.regions[f"eye_socket_{side}"]]]).astype(float)
        assert np.linalg.norm(around - centre, axis=1).min() > radius
    for name, inside in _inside_the_mouth(head).items():
        assert inside == 1.0, name
    # the face's skin does not pass through itself (a removed smile used to fold the mouth corners)
    from vrhub.geometry.intersections import self_intersections

    face_tris = t[(t < 468).all(1)].astype(np.int64)
    assert len(self_intersections(v[:468], face_tris)) == 0
    q = head.quality
    assert {"yaw", "pitch", "roll", "warnings", "expression_removed", "glasses_score", "occluded"} <= set(q)
    if path.name.startswith("grid_"):  # 360x288 video stills: the detector's warning is reported too
        assert any("low resolution" in w for w in q["warnings"])


@needs_photos
def test_the_same_face_gives_the_same_texture_size_choices():
    photo, small = _build(FACES / "congress_C001080.jpg", size=256)
    assert small.albedo.shape == (256, 256, 3)
    with pytest.raises(ValueError, match="between 256 and 2048"):
        _build(FACES / "congress_C001080.jpg", size=4096)


@needs_photos
def test_face_texture_matches_the_photo_colours():
    photo, head = _build(FACES / "congress_C001068.jpg")
    # the skin tone is close to the photo's cheek colour (de-lighting changes brightness, not hue)
    face = detect_face(photo)
    cheek = face.landmarks[[50, 280], :2].astype(int)
    sample = np.stack([photo.pixels[y - 3 : y + 4, x - 3 : x + 4].reshape(-1, 3) for x, y in cheek]).reshape(
        -1, 3
    )
    ratio = np.array(head.skin_tone) / np.maximum(sample.mean(0), 1)
    assert np.ptp(ratio / ratio.mean()) < 0.25


@needs_photos
@pytest.mark.parametrize(
    "name", ["face_recognition_obama.jpg", "congress_L000397.jpg", "congress_G000553.jpg"]
)
def test_a_smiles_teeth_are_not_painted_on_the_neutral_lips(name: str):
    """Broad smiles showing teeth: the texels along the inner lip line (where the neutral lips meet)
    are lip-coloured, not teeth-coloured (measured before the repaint: 8 %, 10 % and 49 % of them
    were teeth-white)."""
    from vrhub.geometry.canonical_face import MOUTH_RING

    _, head = _build(FACES / name)
    tex = head.albedo.astype(np.float64)
    size = tex.shape[0]
    uv = head.uvs[np.asarray(head.landmark_vertices)[list(MOUTH_RING)]] * size
    px = np.concatenate([tex[int(v) - 2 : int(v) + 3, int(u) - 2 : int(u) + 3].reshape(-1, 3) for u, v in uv])
    lum = px.mean(1)
    teeth = (lum > 1.1 * np.mean(head.skin_tone)) & (np.ptp(px, axis=1) < 0.35 * lum)
    assert teeth.mean() <= 0.02, teeth.mean()


@needs_photos
@pytest.mark.parametrize(
    "rel",
    ["hair/congress_A000368.jpg", "hair/congress_B001270.jpg", "faces/skimage_astronaut_eileen_collins.png"],
)
def test_a_broad_smile_leaves_nearly_closed_neutral_lips(rel: str):
    """Broad smiles with the teeth showing: the neutral head's inner lips are at most 1.2x the
    canonical face's opening apart, scaled by the eye distance (measured 1.00 / 0.76 / 0.83; they were
    2.06 / 2.10 / 1.80, a grin with the teeth showing at rest, before mouthUpperUp was removed and a
    clear expression was removed in full rather than less the dead zone)."""
    from vrhub.geometry.canonical_face import load_canonical_face
    from vrhub.stages.landmark_head import LOWER_LIP, UPPER_LIP

    _, head = _build(SHARED / "data" / rel, size=256)
    canonical = load_canonical_face().vertices
    up, lo = list(UPPER_LIP), list(LOWER_LIP)
    v = head.vertices[:468].astype(np.float64)
    scale = np.linalg.norm(v[33] - v[263]) / np.linalg.norm(canonical[33] - canonical[263])
    opening = float(np.mean(v[up, 1] - v[lo, 1]) / scale)
    assert opening <= 1.2 * float(np.mean(canonical[up, 1] - canonical[lo, 1])), opening
    # the smile was found and reported as removed
    assert head.expression_removed[ARKIT_BLENDSHAPES.index("mouthSmileLeft")] > 0.5


@pytest.mark.skipif(not (SHARED / "data" / "hair_pool").is_dir(), reason="../shared/data is not present")
@pytest.mark.parametrize("name", ["M001185.jpg", "R000515.jpg", "U000039.jpg", "Y000062.jpg"])
def test_teeth_and_tongue_stay_in_the_mouth_whatever_the_lips_shape(name: str):
    """Pool portraits whose neutral inner-lip ring is wavy and nearly closed: the cavity's walls
    used to leave each lip point by its own direction from the ring's centre, so an upper-lip point
    below that centre sent its wall down through the lower lip's and the teeth and tongue poked out
    (21 of 172 shared and pool portraits, 36 once broad smiles were removed in full; these four
    kept 0-62 % of the upper teeth inside). Every vertex of the teeth and tongue is inside the pocket."""
    _, head = _build(SHARED / "data" / "hair_pool" / name, size=256)
    assert _inside_the_mouth(head) == {"teeth_upper": 1.0, "teeth_lower": 1.0, "tongue": 1.0}


@needs_photos
def test_open_mouth_is_neutralised_and_reported():
    photo = _photo(FACES / "congress_C001068.jpg")
    face = detect_face(photo)
    lm = face.landmarks.copy()
    # open the jaw in the landmarks: move everything below the mouth corners down by 12 % of the face
    mouth_y = lm[[61, 291], 1].mean()
    drop = 0.12 * (lm[152, 1] - lm[10, 1])
    below = lm[:, 1] > mouth_y + 2
    below[[13, 82, 81, 80, 191, 78, 312, 311, 310, 415, 308]] = False
    lm[below, 1] += drop
    import dataclasses

    opened = dataclasses.replace(face, landmarks=lm)
    neutral = reconstruct_head(photo, face, _no_segmentation(photo), texture_size=256)
    head = reconstruct_head(photo, opened, _no_segmentation(photo), texture_size=256)
    assert (
        head.expression_removed[ARKIT_BLENDSHAPES.index("jawOpen")]
        > neutral.expression_removed[ARKIT_BLENDSHAPES.index("jawOpen")] + 0.1
    )
    gap = lambda h: h.vertices[13, 1] - h.vertices[14, 1]  # noqa: E731
    drop_m = 0.12 * (neutral.vertices[10, 1] - neutral.vertices[152, 1])
    # part of the opening is taken out again (measured: about a quarter of a 12 % jaw drop; the
    # rig's jawOpen is a rotation and this synthetic opening a translation)
    assert gap(head) < gap(neutral) + 0.85 * drop_m


def test_no_face_photo_never_reaches_reconstruct():
    with pytest.raises(PipelineError) as info:
        detect_face(Photo(np.full((300, 300, 3), 90, np.uint8)))
    assert info.value.code == "no_face"


@needs_photos
def test_delighting_removes_most_of_a_left_right_light_gradient():
    """A left-to-right light gradient over the photo changes the cheeks' brightness ratio in the
    photo; in the de-lit albedo that ratio changes far less."""
    from vrhub.geometry.head_template import get_head_template
    from vrhub.geometry.texture import bake_head_texture
    from vrhub.stages.landmark_head import face_in_head_frame

    photo = _photo(FACES / "congress_C001080.jpg")
    face = detect_face(photo)
    ramp = np.linspace(0.55, 1.35, photo.width)[None, :, None]
    lit = np.clip(photo.pixels * ramp, 0, 255).astype(np.uint8)
    pts = face_in_head_frame(face)[:468]
    skin = np.ones(photo.pixels.shape[:2], np.float32)
    size = 256
    base = bake_head_texture(photo.pixels, face.landmarks, pts, face.rotation, skin, size=size).albedo
    relit = bake_head_texture(lit, face.landmarks, pts, face.rotation, skin, size=size).albedo
    uv = get_head_template().uvs

    def cheek_ratio(tex: np.ndarray) -> float:
        def patch(landmark: int) -> float:
            x, y = (uv[landmark] * size).astype(int)
            return float(tex[y - 3 : y + 4, x - 3 : x + 4].mean())

        return patch(280) / patch(50)  # the face's left cheek over its right cheek

    lm = face.landmarks
    photo_change = abs(np.log(ramp[0, int(lm[280, 0]), 0] / ramp[0, int(lm[50, 0]), 0]))
    albedo_change = abs(np.log(cheek_ratio(relit) / cheek_ratio(base)))
    assert photo_change > 0.1
    assert albedo_change < 0.5 * photo_change


@needs_photos
def test_shading_fit_ignores_a_beard_and_does_not_blow_out_the_skin():
    """A dark beard and glossy skin under studio flash (G000553): the shading fit leaves the
    beard out and the de-lighting is bounded, so few skin texels come out far brighter than the
    skin tone (8.1 % were over 1.4x before, glowing eyelids and temples)."""
    from vrhub.evaluation.robustness import face_uv_mask

    _, head = _build(FACES / "congress_G000553.jpg")
    albedo = head.albedo.astype(np.float64)
    lum = albedo[face_uv_mask(head, albedo.shape[0])] @ [0.299, 0.587, 0.114]
    tone = float(np.dot(head.skin_tone, [0.299, 0.587, 0.114]))
    assert (lum > 1.4 * tone).mean() < 0.06


def test_a_folded_mouth_corner_is_untangled_and_nothing_else_moves():
    from vrhub.geometry.canonical_face import load_canonical_face
    from vrhub.geometry.head_template import get_head_template
    from vrhub.geometry.intersections import self_intersections
    from vrhub.stages.landmark_head import untangle_face

    tris = get_head_template().face_triangles
    canonical = load_canonical_face().vertices
    assert np.array_equal(untangle_face(canonical), canonical)
    pts = canonical.copy()
    pts[[409, 270], 1] -= 0.9  # the upper lip's corner pushed down through the lower lip
    assert len(self_intersections(pts, tris)) > 0
    fixed = untangle_face(pts)
    assert len(self_intersections(fixed, tris)) == 0
    moved = np.linalg.norm(fixed - pts, axis=1) > 1e-9
    # only the fold's neighbourhood moves: within 2 cm of the pushed points
    near = np.linalg.norm(pts[:, None] - pts[[409, 270]][None], axis=2).min(1) < 2.0
    assert moved.any() and not (moved & ~near).any()


def test_crossed_lips_are_moved_apart_symmetrically():
    from vrhub.geometry.canonical_face import load_canonical_face
    from vrhub.stages.landmark_head import LOWER_LIP, MIN_LIP_GAP, UPPER_LIP, keep_lips_apart

    canonical = load_canonical_face().vertices
    pts = canonical.copy()
    pts[list(LOWER_LIP), 1] += 1.0  # the lower lip 1 cm up: through the upper lip
    fixed = keep_lips_apart(pts)
    up, lo = list(UPPER_LIP), list(LOWER_LIP)
    gap = fixed[up, 1] - fixed[lo, 1]
    assert np.allclose(gap, MIN_LIP_GAP * (canonical[up, 1] - canonical[lo, 1]))
    # both lips moved by the same amount, nothing else moved
    assert np.allclose(fixed[up, 1] - pts[up, 1], pts[lo, 1] - fixed[lo, 1])
    others = np.setdiff1d(np.arange(len(pts)), up + lo)
    assert np.array_equal(fixed[others], pts[others])
    assert np.array_equal(keep_lips_apart(canonical), canonical)


VIDEO = SHARED / "data" / "video" / "grid_swiz3n.mpg"


@pytest.mark.skipif(not VIDEO.is_file(), reason="../shared/data/video is not present")
def test_talking_frames_of_one_speaker_give_nearly_the_same_neutral_face():
    """The talkiest shared GRID clip: 6 later frames against the first, neutral face geometry
    within 1 % of the face width on average (issue 7's goal) and 1.5 % at worst."""
    from vrhub.evaluation.robustness import geometry_difference, video_frames
    from vrhub.stages.landmark_segment import landmark_segment

    frames = video_frames(VIDEO, (0, 12, 24, 36, 48, 60, 72))
    assert len(frames) == 7
    heads = []
    for k in sorted(frames):
        photo = Photo(frames[k], f"frame{k}")
        face = detect_face(photo)
        heads.append(reconstruct_head(photo, face, landmark_segment(photo, face), texture_size=256))
    diffs = [geometry_difference(heads[0], h) for h in heads[1:]]
    assert np.mean(diffs) <= 0.01, diffs
    assert max(diffs) <= 0.015, diffs
    # the talking mouth was found and taken out on at least some frames
    assert sum(h.expression_removed[ARKIT_BLENDSHAPES.index("jawOpen")] > 0 for h in heads) >= 3


def _asymmetry(points: np.ndarray) -> np.ndarray:
    """Each face point's offset from its mirror partner's mirror image (468, 3) cm or m."""
    from vrhub.geometry.canonical_face import load_canonical_face

    mirror = load_canonical_face().mirror
    p = np.asarray(points, np.float64)[:468]
    return p - p[mirror] * np.array([-1.0, 1.0, 1.0])


@needs_photos
def test_a_frontal_face_keeps_its_own_asymmetry():
    """A likeness includes the face's asymmetry: a near-frontal photo's head is not mirrored into
    symmetry (a half-way mirror blend, as before, made every face exactly symmetric and cost 0.14 %
    of median NME), while a turned head still leans on the mirror image."""
    from vrhub.stages.landmark_head import SYMMETRY_TURNED, face_in_head_frame, symmetrise

    path = next(p for p in PHOTOS if "F000010" in p.name)
    photo = _photo(path)
    face = detect_face(photo)
    assert abs(face.yaw_pitch_roll[0]) < 10
    head = reconstruct_head(photo, face, _no_segmentation(photo), texture_size=256)
    # the eyes and brows carry no expression the rig removes from this photo: compare them
    from mediapipe.python.solutions import face_mesh_connections as fmc

    upper = sorted(
        {i for c in (*fmc.FACEMESH_LEFT_EYEBROW, *fmc.FACEMESH_RIGHT_EYEBROW) for i in c}
        | {i for c in (*fmc.FACEMESH_LEFT_EYE, *fmc.FACEMESH_RIGHT_EYE) for i in c}
    )
    own = _asymmetry(face_in_head_frame(face))[upper]
    built = _asymmetry(head.vertices.astype(np.float64) * 100.0)[upper]
    assert np.sqrt((own**2).sum(1).mean()) > 0.1  # cm: the photo's face is measurably asymmetric
    # the built face keeps most of it, and the same way round
    kept = (built * own).sum() / (own * own).sum()
    assert kept > 0.6
    # a head turned 45 degrees is blended with its mirror image: each point's asymmetry scales
    # by (1 - 2 * blend)
    turned = symmetrise(face_in_head_frame(face), SYMMETRY_TURNED)
    assert np.abs(_asymmetry(turned)).mean() < 0.65 * np.abs(_asymmetry(face_in_head_frame(face))).mean()


@needs_photos
def test_hair_over_one_brow_is_filled_from_the_other_side():
    """Face texels under hair are hidden, like texels turned away: a lock over one brow (C001080's
    fringe was baked in as a dark smudge over her brow) is filled from the mirrored brow where the
    segmentation marks it as hair."""
    import cv2

    path = next(p for p in PHOTOS if "F000010" in p.name)
    photo = _photo(path)
    face = detect_face(photo)
    lm = face.landmarks[:, :2]
    brow = lm[[70, 63, 105, 66, 107, 55, 65, 52, 53, 46]]  # the subject's right brow and above it
    centre = brow.mean(0)
    lock = np.zeros(photo.pixels.shape[:2], np.uint8)
    hull = cv2.convexHull(((brow - centre) * 1.6 + centre).astype(np.int32))
    cv2.fillConvexPoly(lock, hull, 1)
    painted = photo.pixels.copy()
    painted[lock.astype(bool)] = (35, 28, 22)
    covered = Photo(painted, name=path.name)
    hair = lock.astype(np.float32)
    seg = Segmentation(hair=hair, skin=1.0 - hair, body=np.zeros_like(hair), background=np.zeros_like(hair))
    size = 256
    clean = reconstruct_head(photo, face, _no_segmentation(photo), texture_size=size)
    filled = reconstruct_head(covered, face, seg, texture_size=size)
    smudged = reconstruct_head(covered, face, _no_segmentation(covered), texture_size=size)

    def patch(head: HeadModel) -> np.ndarray:
        u, v = (head.uvs[[105, 66, 65]].astype(np.float64) * size).mean(0)
        return head.albedo[int(v) - 3 : int(v) + 4, int(u) - 3 : int(u) + 4].reshape(-1, 3).mean(0)

    assert np.abs(patch(smudged) - patch(clean)).mean() > 30  # the lock baked in
    assert np.abs(patch(filled) - patch(clean)).mean() < 0.4 * np.abs(patch(smudged) - patch(clean)).mean()
