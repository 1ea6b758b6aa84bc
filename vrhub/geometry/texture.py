"""The head's albedo atlas from one photo: face warp, de-lighting, symmetric fill, skin, eyes, mouth.

Steps (:func:`bake_head_texture`):

1. **Warp.** The face island (the canonical face's UVs inside the head template's skin disc) is
   filled by a piecewise-affine warp over the face triangulation: every texel knows, once per
   texture size (cached), its face triangle and barycentric coordinates; its photo position is
   the same barycentric mix of that triangle's landmark pixels, and one ``cv2.remap`` samples
   the photo.
2. **Symmetric fill.** Each landmark's visibility is the cosine between its normal and the camera
   direction (after the head pose). Texels on the hidden side are taken from the mirrored
   triangle (the same barycentrics over the mirrored landmarks), blended by visibility.
   Before sampling, a strong tone curve or colour cast of the photo is undone through a
   per-channel table (:mod:`vrhub.geometry.colour_constancy`: eye whites, teeth, background and
   the whole photo, never the skin; only as far as the face and the scene cues agree).
3. **De-lighting.** Second-order spherical-harmonic shading (9 coefficients) is fitted by least
   squares to the luminance of visible skin texels (cheeks, forehead, nose, chin; eyes, brows and
   lips excluded) over their camera-frame normals, and each sample is divided by the shading of
   the place it came from (so mirrored samples are de-lit with the mirrored normals).
4. **Skin.** The skin tone is the median de-lit colour of well-lit visible skin; the scalp, ears
   and neck get it, and the face fades into it toward its outer rim and wherever the
   segmentation says the photo shows no skin (hair over the forehead, a hat brim), so there is
   no seam at the rim.
5. **Eyes, teeth, mouth.** The eyeball island is drawn procedurally (sclera, limbal ring, iris in
   the photo's iris colour with radial fibres, pupil); teeth, tongue and mouth cavity islands are
   shaded procedural colours, the teeth with thin gaps between incisors and canines.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy import sparse

from vrhub.geometry.canonical_face import EYE_RING_L, EYE_RING_R, MOUTH_RING, load_canonical_face
from vrhub.geometry.colour_constancy import IDENTITY, tone_correction
from vrhub.geometry.head_template import ISLANDS, HeadTemplate, get_head_template, tooth_gap_us

MIN_TEXTURE, MAX_TEXTURE = 256, 2048
#: Iris landmarks (mediapipe refine_landmarks): centre then 4 on the rim, subject's right / left eye.
IRIS_R = (468, 469, 470, 471, 472)
IRIS_L = (473, 474, 475, 476, 477)
#: Brow landmarks (excluded from the skin used for lighting).
BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 336, 296, 334, 293, 300, 285, 295, 282, 283, 276)
SCLERA = np.array([232.0, 226.0, 220.0])
TEETH = np.array([228.0, 222.0, 205.0])
TONGUE = np.array([178.0, 86.0, 92.0])
MOUTH = np.array([96.0, 36.0, 42.0])


@dataclass(frozen=True)
class BakedTexture:
    """albedo : (t, t, 3) uint8 RGB; skin_tone, eye_colour : RGB; skin_visible : fraction of the
    face island that came from visible photo skin (not fill); occluded : fraction of the face's
    skin the segmentation marked as not skin (hair, hat, hands ...)."""

    albedo: np.ndarray
    skin_tone: tuple[int, int, int]
    eye_colour: tuple[int, int, int]
    skin_visible: float
    occluded: float
    shading_coefficients: np.ndarray
    #: (gamma, gains) applied to the photo's colours before de-lighting (see
    #: :func:`vrhub.geometry.colour_constancy.tone_correction`)
    correction: tuple[float, tuple[float, float, float]] = (1.0, (1.0, 1.0, 1.0))


@dataclass(frozen=True, eq=False)
class _FaceRaster:
    """Texels covered by face triangles: flat texel index (k,), triangle ids (k,), barycentrics (k, 3)."""

    texels: np.ndarray
    tri_ids: np.ndarray
    bary: np.ndarray
    triangles: np.ndarray  # (f, 3) the face's skin triangles
    rim_fade: np.ndarray  # (468,) 0 on the outer rim -> 1 inside
    skin_weight: np.ndarray  # (468,) 1 on plain skin, 0 on eyes, brows, lips
    disc: np.ndarray  # (t, t) bool: texels of the skin disc
    interp: sparse.csr_matrix  # (k, 468) float32: barycentric weights of each texel's landmarks


def _vertex_distance_to(face_vertices: np.ndarray, ids: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(face_vertices[:, None, :] - face_vertices[None, ids, :], axis=2)
    return d.min(1)


@lru_cache(maxsize=4)
def _face_raster(size: int) -> _FaceRaster:
    template = get_head_template()
    face = load_canonical_face()
    tris = template.face_triangles
    uv = template.uvs[:468] * size - 0.5
    ids = np.full((size, size), -1, np.int32)
    pts = np.round(uv[tris] * 16).astype(np.int32)
    for i in range(len(tris)):  # 852 fills of a few hundred texels each, once per size
        cv2.fillConvexPoly(ids, pts[i], i, shift=4)
    # grow by 2 texels so bilinear lookups at triangle edges never read the background
    # (nearest covered texel via the distance transform's labels)
    _, labels = cv2.distanceTransformWithLabels(
        (ids < 0).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    dist = cv2.distanceTransform((ids < 0).astype(np.uint8), cv2.DIST_L2, 5)
    flat_ids = ids.reshape(-1)
    src = np.flatnonzero(flat_ids >= 0)
    label_to_id = np.full(labels.max() + 1, -1, np.int32)
    label_to_id[labels.reshape(-1)[src]] = flat_ids[src]
    grown = label_to_id[labels]
    ids = np.where(ids >= 0, ids, np.where(dist <= 2.5, grown, -1))
    texels = np.flatnonzero(ids >= 0)
    tri_ids = ids.reshape(-1)[texels]
    ys, xs = np.divmod(texels, size)
    p = np.stack([xs, ys], 1).astype(np.float64)
    a, b, c = uv[tris[tri_ids, 0]], uv[tris[tri_ids, 1]], uv[tris[tri_ids, 2]]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    b1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    b2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    bary = np.clip(np.stack([1 - b1 - b2, b1, b2], 1), -0.5, 1.5)
    rim = face.boundary_loops[0]
    fv = face.vertices
    rim_fade = np.clip(_vertex_distance_to(fv, rim) / 2.0, 0, 1) ** 1.5
    features = np.concatenate([np.asarray(EYE_RING_L), np.asarray(EYE_RING_R), np.asarray(MOUTH_RING), BROWS])
    feature_d = _vertex_distance_to(fv, features)
    lips_d = _vertex_distance_to(fv, np.asarray(MOUTH_RING))
    skin_weight = np.clip((feature_d - 0.6) / 0.6, 0, 1) * np.clip((lips_d - 1.3) / 0.5, 0, 1)
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot((xx + 0.5) / size - 0.5, (yy + 0.5) / size - 0.5)
    rows = np.repeat(np.arange(len(texels)), 3)
    interp = sparse.csr_matrix(
        (bary.reshape(-1).astype(np.float32), (rows, tris[tri_ids].reshape(-1))), shape=(len(texels), 468)
    )
    return _FaceRaster(texels, tri_ids, bary, tris, rim_fade, skin_weight, r <= 0.5, interp)


def _paint_over_mouth_opening(
    tex: np.ndarray,
    texels: np.ndarray,
    photo_shape: tuple[int, int],
    landmarks: np.ndarray,
    own_xy: np.ndarray,
    mirrored_xy: np.ndarray,
    skin_tone: np.ndarray,
) -> None:
    """Lip texels that sampled the photo's open mouth (teeth, tongue, the dark gap) get lip colour.

    The face island's lips meet along the inner lip contour, and texels there (and the 2-texel
    margin grown round every triangle) sample just inside it. On a photo with an open or smiling
    mouth those samples are teeth, which would show as a white line on the avatar's closed,
    neutral lips. Texels whose photo position is inside the inner-lip polygon are repainted from
    the surrounding lip texels (inpainting, in place); so are teeth-coloured texels (brighter than
    the skin, unsaturated) within a margin of ~2 % of the face width round it, because the
    inner-lip landmarks of a broad smile sit a little inside the visible teeth.
    """
    h, w = photo_shape
    ring = np.asarray(landmarks, np.float64)[list(MOUTH_RING), :2]
    grow = max(int(round(0.02 * float(np.ptp(landmarks[:468, 0])))), 1)
    # only the photo round the mouth matters: a crop with a margin of the growth plus 2 pixels,
    # and only the texels that sample inside it
    x0, y0 = np.maximum(np.floor(ring.min(0)).astype(int) - grow - 2, 0)
    x1, y1 = np.minimum(np.ceil(ring.max(0)).astype(int) + grow + 3, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    origin = np.array([x0, y0], np.float32)

    def in_box(xy: np.ndarray) -> np.ndarray:
        return (xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)

    cand = np.flatnonzero(in_box(own_xy) | in_box(mirrored_xy))
    if not len(cand):
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((ring - [x0, y0]) * 4).astype(np.int32)], 255, shift=2)
    if not mask.any():
        return
    near = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    own, mirrored = own_xy[cand] - origin, mirrored_xy[cand] - origin
    inside = np.maximum(_sample(mask, own), _sample(mask, mirrored)).reshape(-1) > 96
    close = np.maximum(_sample(near, own), _sample(near, mirrored)).reshape(-1) > 96
    size = tex.shape[0]
    rgb = tex.reshape(-1, 3)[texels[cand]].astype(np.float32)
    lum = rgb.mean(1)
    teeth_like = (lum > float(np.mean(skin_tone))) & (np.ptp(rgb, axis=1) < 0.3 * lum)
    repaint = inside | (close & teeth_like)
    if not repaint.any():
        return
    paint = np.zeros((size, size), np.uint8)
    paint.reshape(-1)[texels[cand[repaint]]] = 255
    paint = cv2.dilate(paint, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(paint)
    pad = 6
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, size)
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, size)
    tex[y0:y1, x0:x1] = cv2.inpaint(
        np.ascontiguousarray(tex[y0:y1, x0:x1]), paint[y0:y1, x0:x1], 3, cv2.INPAINT_TELEA
    )


def _sample(image: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` (h, w[, c]) at pixel positions ``pts`` (k, 2): one cv2.remap."""
    k = len(pts)
    cols = 1024
    rows = -(-k // cols)
    grid = np.zeros((rows * cols, 2), np.float32)
    grid[:k] = pts
    out = cv2.remap(
        image, grid.reshape(rows, cols, 2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out.reshape(rows * cols, -1)[:k]


#: shading divided out, relative to the face's median shading. Bounds the de-lighting: the fit's
#: normals come from landmarks and skin is not Lambertian at grazing angles, so a wider range
#: (0.45-2.2 before) blew under-brow and temple texels out to white on flash-lit photos.
SHADE_RANGE = (0.6, 1.6)
#: skin texels darker than this fraction of the median are left out of the shading fit (a beard or
#: stubble inside the skin mask otherwise reads as "lit from above" and over-brightens the rest)
SH_FIT_MIN_LUMINANCE = 0.75


def _sh9(n: np.ndarray) -> np.ndarray:
    """Real spherical harmonics up to order 2 (unnormalised constants): (k, 3) -> (k, 9)."""
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    one = np.ones_like(x)
    return np.stack([one, x, y, z, x * y, x * z, y * z, x * x - y * y, 3 * z * z - 1], 1)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals: vertices (n, 3), triangles (m, 3) -> (n, 3)."""
    v = vertices
    fn = np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])
    out = np.zeros_like(v)
    for k in range(3):
        np.add.at(out, triangles[:, k], fn)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _iris_colour(photo: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, bool]:
    """Median iris colour (RGB float) from both irises, skipping pupil and highlights."""
    h, w = photo.shape[:2]
    samples = []
    for ids in (IRIS_L, IRIS_R):
        c = landmarks[ids[0], :2]
        radius = float(np.linalg.norm(landmarks[list(ids[1:]), :2] - c, axis=1).mean())
        r = int(np.ceil(radius)) + 1
        x0, x1 = int(max(c[0] - r, 0)), int(min(c[0] + r + 1, w))
        y0, y1 = int(max(c[1] - r, 0)), int(min(c[1] + r + 1, h))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.hypot(xx - c[0], yy - c[1]) / max(radius, 1e-6)
        ring = (d > 0.4) & (d < 0.85)
        px = photo[y0:y1, x0:x1][ring].astype(np.float64)
        if len(px):
            lum = px.mean(1)
            keep = lum <= np.quantile(lum, 0.85)
            samples.append(px[keep])
    if not samples or sum(len(s) for s in samples) < 3:
        return np.array([90.0, 70.0, 50.0]), False
    return np.median(np.concatenate(samples), axis=0), True


def _island_box(name: str, size: int) -> tuple[int, int, int, int]:
    """Texel box (x0, y0, x1, y1) that covers atlas island ``name`` in a ``size`` texture."""
    u0, v0, u1, v1 = ISLANDS[name]
    return (
        int(np.floor(u0 * size)),
        int(np.floor(v0 * size)),
        int(np.ceil(u1 * size)),
        int(np.ceil(v1 * size)),
    )


def _draw_eye(tex: np.ndarray, iris: np.ndarray) -> None:
    """Paint the eyeball island: polar map, front pole at the island centre (see head_template)."""
    size = tex.shape[0]
    u0, v0, u1, v1 = ISLANDS["eye"]
    x0, y0, x1, y1 = _island_box("eye", size)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    cu, cv_ = (u0 + u1) / 2 * size, (v0 + v1) / 2 * size
    half = (u1 - u0) * (1 - 2 * 0.02) / 2 * size
    rad = np.hypot(xx + 0.5 - cu, yy + 0.5 - cv_) / half  # = theta / pi
    theta = rad * np.pi
    ang = np.arctan2(yy + 0.5 - cv_, xx + 0.5 - cu)
    iris_t, pupil_t = np.arcsin(0.55 / 1.2), np.arcsin(0.22 / 1.2)
    fibres = 0.85 + 0.15 * np.sin(ang * 37.0) * np.sin(ang * 11.0 + 1.3)
    t = np.clip((theta - pupil_t) / (iris_t - pupil_t), 0, 1)
    iris_col = iris[None, None, :] * (fibres * (1.15 - 0.45 * t**3))[..., None]
    limbal = np.clip(1 - np.abs(theta - iris_t) / 0.05, 0, 1)[..., None]
    sclera = SCLERA * (1 - 0.12 * np.clip((theta - 1.2) / 1.5, 0, 1))[..., None]
    col = np.where((theta < iris_t)[..., None], iris_col, sclera)
    col = col * (1 - 0.6 * limbal)
    col = np.where((theta < pupil_t)[..., None], np.array([12.0, 10.0, 10.0]), col)
    tex[y0:y1, x0:x1] = np.clip(col, 0, 255).astype(np.uint8)


def _fill_island(tex: np.ndarray, name: str, colour: np.ndarray, gradient: float) -> None:
    x0, y0, x1, y1 = _island_box(name, tex.shape[0])
    yy = np.linspace(0, 1, y1 - y0)[:, None, None]
    xx = np.linspace(-1, 1, x1 - x0)[None, :, None]
    shade = 1.0 - gradient * (0.5 * yy + 0.5 * xx**2)
    tex[y0:y1, x0:x1] = np.clip(colour * shade, 0, 255).astype(np.uint8)


def _draw_tooth_gaps(tex: np.ndarray) -> None:
    """Thin shaded gaps between neighbouring teeth over the teeth island (without them a row of
    teeth reads as one white plank when the mouth opens)."""
    size = tex.shape[0]
    x0, y0, x1, y1 = _island_box("teeth", size)
    half = max(size / 1400.0, 0.5)  # ~0.7 px at 1024: the gap's half-width
    d = np.abs((np.arange(x0, x1)[:, None] + 0.5) - tooth_gap_us()[None, :] * size).min(1)
    dark = 1.0 - 0.45 * np.clip(1.5 - d / half, 0.0, 1.0) / 1.5
    band = tex[y0:y1, x0:x1].astype(np.float32) * dark[None, :, None].astype(np.float32)
    tex[y0:y1, x0:x1] = np.clip(band + 0.5, 0, 255).astype(np.uint8)


def bake_head_texture(
    photo: np.ndarray,
    landmarks: np.ndarray,
    face_vertices: np.ndarray,
    rotation: np.ndarray,
    skin_mask: np.ndarray | None = None,
    size: int = 1024,
    template: HeadTemplate | None = None,
    white_balance: bool = True,
    background_mask: np.ndarray | None = None,
    hair_mask: np.ndarray | None = None,
) -> BakedTexture:
    """Bake the albedo atlas.

    photo : (h, w, 3) uint8 RGB.
    landmarks : (478, 3) float64 pixels (FaceObservation.landmarks).
    face_vertices : (468, 3) float64 — the fitted face in the head frame (any unit), used for normals.
    rotation : (3, 3) camera-from-head rotation (FaceObservation.rotation; camera y up, z to viewer).
    skin_mask : (h, w) float in [0, 1] or None — where the photo shows face skin.
    size : texture side, 256..2048.
    white_balance : undo a strong tone curve or colour cast, judged from eye whites, teeth,
        background and the whole photo, never from the skin
        (:func:`vrhub.geometry.colour_constancy.tone_correction`).
    background_mask : (h, w) float in [0, 1] or None — the segmentation's background (a cue for
        the tone curve).
    hair_mask : (h, w) float in [0, 1] or None — the segmentation's hair. Face texels under hair
        (a fringe over one brow, a lock over a cheek) count as hidden, like texels turned away
        from the camera: they are filled from the mirrored side where that is seen, else with
        the skin tone.
    """
    if not MIN_TEXTURE <= size <= MAX_TEXTURE:
        raise ValueError(f"texture size must be between {MIN_TEXTURE} and {MAX_TEXTURE}, got {size}")
    template = template or get_head_template()
    face = load_canonical_face()
    lm = np.asarray(landmarks, np.float64)
    # The face island is ~0.6 * size texels wide. When the photo's face is narrower than half of
    # that, a half-size warp holds all of its detail: warp there and upsample (4x fewer texels).
    face_width_px = float(np.ptp(lm[:468, 0]))
    work = size if face_width_px > 0.3 * size or size // 2 < MIN_TEXTURE else size // 2
    raster = _face_raster(work)
    # per-landmark attributes; the raster's sparse (texels x 468) barycentric matrix carries them to
    # texels, and the same matrix over the mirrored landmarks gives the symmetric fill's samples
    normals = vertex_normals(np.asarray(face_vertices, np.float64), raster.triangles)
    cam_n = normals @ np.asarray(rotation).T
    vis_v = np.clip((cam_n[:, 2] - 0.1) / 0.35, 0.0, 1.0)
    xy = lm[:468, :2]
    attrs = np.concatenate(
        [xy, vis_v[:, None], cam_n, raster.skin_weight[:, None], raster.rim_fade[:, None]], 1
    ).astype(np.float32)
    at_own = raster.interp @ attrs
    at_mir = raster.interp @ attrs[face.mirror]
    correction = tone_correction(photo, lm, background_mask) if white_balance else IDENTITY
    photo_c = correction.apply_to_photo(photo)
    own = _sample(photo_c, at_own[:, :2]).astype(np.float32)
    mirrored = _sample(photo_c, at_mir[:, :2]).astype(np.float32)
    vis_own, vis_mir = at_own[:, 2], at_mir[:, 2]
    # what the fill may use: seen by the camera and not under hair
    use_own, use_mir = vis_own, vis_mir
    if hair_mask is not None:
        hair = np.asarray(hair_mask, np.float32)
        use_own = vis_own * (1.0 - _sample(hair, at_own[:, :2]).reshape(-1))
        use_mir = vis_mir * (1.0 - _sample(hair, at_mir[:, :2]).reshape(-1))
    skin_w, fade = at_own[:, 6], at_own[:, 7]
    if skin_mask is not None:
        skin_f = np.asarray(skin_mask, np.float32)
        mask_here = _sample(skin_f, at_own[:, :2]).reshape(-1)
        mask_mir = _sample(skin_f, at_mir[:, :2]).reshape(-1)
    else:
        mask_here = mask_mir = np.ones(len(own), np.float32)

    # spherical-harmonic shading fitted on visible skin (a subsample of texels is plenty)
    fit = (skin_w > 0.9) & (vis_own > 0.6) & (mask_here > 0.5)
    coeffs = np.zeros(9)
    shade_v = np.ones(468)
    sub = np.flatnonzero(fit)[::3]
    if len(sub) > 50:
        n_fit = at_own[sub, 3:6].astype(np.float64)
        n_fit /= np.maximum(np.linalg.norm(n_fit, axis=1, keepdims=True), 1e-9)
        basis = _sh9(n_fit)
        target = own[sub].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        # robust: two rounds, dropping the worst 15 % (dark pores, specular highlights)
        keep = target >= SH_FIT_MIN_LUMINANCE * np.median(target)
        if keep.sum() < 50:
            keep[:] = True
        for _ in range(2):
            coeffs, *_ = np.linalg.lstsq(basis[keep], target[keep], rcond=None)
            err = np.abs(basis @ coeffs - target)
            keep = err <= np.quantile(err, 0.85)
        ref = float(np.median(basis @ coeffs))
        shade_v = np.clip(_sh9(cam_n) @ coeffs / max(ref, 1e-6), *SHADE_RANGE)
    shade_own = (raster.interp @ shade_v.astype(np.float32))[:, None]
    shade_mir = (raster.interp @ shade_v[face.mirror].astype(np.float32))[:, None]
    # symmetric fill by visibility
    wo = (use_own + 1e-3)[:, None]
    wm = ((1 - use_own) * use_mir + 1e-4)[:, None]
    colour = (own / shade_own * wo + mirrored / shade_mir * wm) / (wo + wm)
    seen = np.clip(use_own + (1 - use_own) * use_mir, 0, 1)

    # skin tone and the fade into it
    good = fit & (vis_own > 0.8)
    if good.sum() < 20:
        good = skin_w > 0.5
    tone = np.median(colour[good][::5], axis=0) if good.any() else np.array([200.0, 160.0, 130.0])
    # skin where the colour came from (the mirrored side's, where the fill took that); features are
    # never "not skin" for this purpose
    mask_used = ((mask_here[:, None] * wo + mask_mir[:, None] * wm) / (wo + wm))[:, 0]
    occl_w = np.maximum(mask_used, 1 - skin_w)
    alpha = np.clip(fade * seen * occl_w, 0, 1)
    face_rgb = colour * alpha[:, None] + tone.astype(np.float32) * (1 - alpha)[:, None]

    tex = np.empty((work, work, 3), np.uint8)
    tex[:] = np.clip(tone, 0, 255).astype(np.uint8)
    flat = tex.reshape(-1, 3)
    flat[raster.texels] = np.clip(face_rgb, 0, 255).astype(np.uint8)
    _paint_over_mouth_opening(tex, raster.texels, photo.shape[:2], lm, at_own[:, :2], at_mir[:, :2], tone)
    if work != size:
        tex = cv2.resize(tex, (size, size), interpolation=cv2.INTER_LINEAR)
    iris, _ = _iris_colour(photo_c, lm)
    _draw_eye(tex, iris)
    _fill_island(tex, "teeth", TEETH, 0.15)
    _draw_tooth_gaps(tex)
    _fill_island(tex, "tongue", TONGUE, 0.25)
    _fill_island(tex, "mouth", MOUTH, 0.45)
    skin_area = skin_w > 0.5
    occluded = float(
        ((mask_here < 0.5) & skin_area & (vis_own > 0.6)).sum() / max((skin_area & (vis_own > 0.6)).sum(), 1)
    )
    return BakedTexture(
        albedo=tex,
        skin_tone=tuple(int(c) for c in np.clip(tone, 0, 255)),
        eye_colour=tuple(int(c) for c in np.clip(iris, 0, 255)),
        skin_visible=float((vis_own > 0.5).mean()),
        occluded=occluded,
        shading_coefficients=coeffs,
        correction=(float(correction.gamma), tuple(float(g) for g in correction.gains)),
    )
