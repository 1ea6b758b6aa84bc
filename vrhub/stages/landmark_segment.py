"""Segment a portrait into hair, face skin, body and background (slot ``segment``, name ``landmarks``).

Method (all soft masks, float32 in [0, 1], summing to 1 per pixel):

1. **Person**: mediapipe selfie segmentation (general model, cached per process) on a crop around
   the head, so small faces in large photos are seen at a useful resolution.
2. **Face skin**: the landmark face oval (``FACEMESH_FACE_OVAL``) intersected with a skin colour
   model (Gaussian in CIE Lab, fitted to cheek and nose pixels located by landmarks).
3. **Body**: person pixels below the jaw line (the lower face oval, extended sideways) that the
   colour models do not claim for hair.
4. **Hair**: person minus face skin minus body, refined by GrabCut whose seeds come from the masks
   above: sure hair = non-skin-coloured person pixels in the cap above the face oval; sure not-hair =
   background, the inner face, the neck column under the chin; probable labels elsewhere.
   GrabCut's random state is reset first, so a photo always gives the same mask. At the temples
   (beside the face, forehead top to eyes) person pixels that are clearly not skin are hair whatever
   GrabCut says, and so, below the eyes down to the jaw line, are such pixels that are textured and
   hang from the hair above them (``hanging_down``); pieces that reach no higher than the lower
   cheeks (suit shoulders) are not, nor is forehead inside the face oval as smooth as the cheeks.
5. **Long hair** below the jaw (``hanging_hair``): followed down from the hair GrabCut found beside
   the cheeks, where a colour model of that hair explains a pixel better than one of the clothes.

The work is done on a crop scaled so that the face is about 110 px wide (fast and independent of the
photo's resolution); the result is pasted back into full-size masks.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from vrhub import hookimpl
from vrhub.geometry.canonical_face import SKIN_SAMPLE_LANDMARKS
from vrhub.hair.features import log_intensity
from vrhub.pipeline.types import FaceObservation, Photo, Segmentation

#: face width in pixels at which the crop is analysed
WORK_FACE_WIDTH = 110.0
#: landmarks of the inner face (brows to chin) that is never hair
INNER_FACE_LANDMARKS = (
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 345, 352, 411, 427, 434, 430, 394, 379, 152,
    150, 169, 210, 214, 207, 123, 116,
)  # fmt: skip
#: brow landmarks (top edge of the brows)
BROW_LANDMARKS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)

_lock = threading.Lock()
_selfie_models: dict[int, object] = {}
_face_oval_order: np.ndarray | None = None


def _selfie_model(model_selection: int = 0):
    """The mediapipe SelfieSegmentation model, created once per process."""
    with _lock:
        model = _selfie_models.get(model_selection)
        if model is None:
            import mediapipe as mp

            model = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model_selection)
            _selfie_models[model_selection] = model
        return model


def face_oval_order() -> np.ndarray:
    """Landmark indices of the face oval as one closed loop, starting at the forehead top (10).

    Returns (36,) int64, going clockwise in the image (toward the viewer's right first).
    """
    global _face_oval_order
    if _face_oval_order is None:
        import mediapipe as mp

        edges = dict(mp.solutions.face_mesh_connections.FACEMESH_FACE_OVAL)
        loop = [10]
        while True:
            nxt = edges[loop[-1]]
            if nxt == loop[0]:
                break
            loop.append(nxt)
        _face_oval_order = np.asarray(loop, np.int64)
    return _face_oval_order


def person_probability(rgb: np.ndarray, model_selection: int = 0) -> np.ndarray:
    """Selfie-segmentation person probability.

    rgb : (h, w, 3) uint8. Returns (h, w) float32 in [0, 1].
    """
    model = _selfie_model(model_selection)
    with _lock:
        result = model.process(np.ascontiguousarray(rgb))
    mask = result.segmentation_mask
    if mask is None:
        return np.zeros(rgb.shape[:2], np.float32)
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


def _polygon_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Filled polygon. points : (k, 2) float pixels. Returns (h, w) bool."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


#: Lab chroma at which the skin model's covariance floor is 2 units of spread (the shared portraits'
#: cheeks: median 32, 8-40). Over the 23 shared portraits and their four relit variants the hair
#: mask of a variant overlaps the original's by IoU 0.87 / 0.89 / 0.89 / 0.96 (gradient, gamma 0.6,
#: gamma 1.6, colour cast; means) against 0.86 / 0.82 / 0.87 / 0.91 with a fixed floor; 32 and 25
#: gave 0.756 / 0.769 against the pool outlines where 28 gives 0.772 (fixed floor 0.778).
SKIN_CHROMA_REF = 28.0


def skin_likelihood(lab: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Skin-colour likelihood from a Gaussian fitted to sample pixels (robust, trimmed).

    Chroma (a, b) is modelled with a full covariance *given the lightness*: on one face, shading
    moves lightness and chroma together (a darker cheek has less chroma), so the expected chroma
    follows the samples' own regression on L (within one standard deviation of their mean L;
    beyond it the line is not extrapolated). Without it a light gradient across the face stretched
    the model along the chroma axis that separates grey hair from skin (C000537's grey crop was
    lost), and pale blonde hair, lighter than the skin with less chroma than the line predicts,
    passed for skin (A000366). Lightness itself only counts when a pixel is much darker than the
    skin (hair, shadows), because a bare scalp is often brighter than the cheeks.

    lab : (h, w, 3) float32 CIE Lab; samples : (k, 3) float32 Lab pixels of known skin.
    Returns (h, w) float32 in [0, 1].
    """
    if len(samples) < 10:
        return np.zeros(lab.shape[:2], np.float32)
    med = np.median(samples, axis=0)
    d0 = np.linalg.norm((samples - med) / (samples.std(axis=0) + 1e-3), axis=1)
    keep = samples[d0 <= np.quantile(d0, 0.8)]
    mean = keep.mean(axis=0)
    # floor (lighting varies over a face): 2 Lab units of spread at a typical skin chroma, scaled
    # with this skin's chroma, since a gamma or exposure change scales chroma and the samples'
    # spread together; an absolute floor made the model relatively broader when a gamma < 1 shrank
    # the chroma (light blonde hair taken for skin, no hair left) and sharper when a gamma > 1 grew
    # it (a bald scalp taken for hair)
    chroma_scale = max(float(np.hypot(mean[1], mean[2])) / SKIN_CHROMA_REF, 0.25)  # 0.25: grey photos
    l_sigma = max(float(keep[:, 0].std()), 6.0)
    dl = keep[:, 0] - mean[0]
    beta = (keep[:, 1:] - mean[1:]).T @ dl / max(float(dl @ dl), 1e-6)  # (2,) chroma per unit of L
    resid = keep[:, 1:] - mean[1:] - dl[:, None] * beta[None, :]
    cov = np.cov(resid.T) + np.eye(2) * 4.0 * chroma_scale**2
    inv = np.linalg.inv(cov)
    dl_px = np.clip(lab.reshape(-1, 3)[:, 0] - mean[0], -l_sigma, l_sigma)
    diff = lab.reshape(-1, 3)[:, 1:] - mean[1:] - dl_px[:, None] * beta[None, :]
    d2 = np.einsum("ij,jk,ik->i", diff, inv, diff)
    darker = np.maximum(mean[0] - 1.5 * l_sigma - lab.reshape(-1, 3)[:, 0], 0.0) / l_sigma
    d2 = d2 + darker**2
    return np.exp(-0.5 * d2 / 4.0).reshape(lab.shape[:2]).astype(np.float32)


#: forehead pixels inside the face oval whose texture energy is under this multiple of the cheeks'
#: are skin
FOREHEAD_SMOOTH = 2.0
#: the same just above the oval's top, where close-cropped hair also grows: a tighter bound
FOREHEAD_TOP_SMOOTH = 1.3


def texture_energy(rgb: np.ndarray) -> np.ndarray:
    """Local mean of |log grey - its 1 px blur| (log: a gamma or an exposure change scales it for
    skin and hair alike). rgb : (h, w, 3) uint8 at the work scale. Returns (h, w) float32."""
    lg = log_intensity(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    return cv2.GaussianBlur(np.abs(lg - cv2.GaussianBlur(lg, (0, 0), 1.0)), (0, 0), 1.5)


def smooth_like_skin(energy: np.ndarray, skin_samples: np.ndarray, factor: float) -> np.ndarray:
    """Regions as smooth as the face's own skin. energy : (h, w) :func:`texture_energy`;
    skin_samples : (h, w) bool, the cheek and nose discs. Returns (h, w) bool.

    Hair strands give 3-20x the forehead's energy on the outlined portraits. A pixel counts when
    most of its 2 px neighbourhood is under ``factor`` x the samples' median."""
    if not skin_samples.any():
        return np.zeros(energy.shape, bool)
    reference = float(np.median(energy[skin_samples]))
    smooth = (energy < factor * reference).astype(np.float32)
    return cv2.GaussianBlur(smooth, (0, 0), 2.0) > 0.5


#: a lit forehead continues the forehead's skin upward without an edge in lightness: pixels whose
#: lightness gradient is under this multiple of the forehead band's own are "no edge"
LIT_FOREHEAD_EDGE = 3.0


def lit_forehead(
    lab: np.ndarray,
    smooth: np.ndarray,
    seed: np.ndarray,
    zone: np.ndarray,
) -> np.ndarray:
    """The part of ``zone`` that continues the forehead skin ``seed`` upward: smooth pixels joined
    to it (4-connected) without crossing an edge in lightness. A lit high forehead or a bald crown
    fades gradually out of the forehead; a hairline, even a close grey crop as smooth as skin
    (C000537), is a step in lightness that stops the growth.

    lab : (h, w, 3) float32 CIELAB; smooth : (h, w) bool, :func:`smooth_like_skin`; seed : (h, w)
    bool, forehead pixels already known to be skin; zone : (h, w) bool, where it may grow.
    Returns (h, w) bool (``seed`` included)."""
    if not seed.any():
        return np.zeros(smooth.shape, bool)
    lightness = cv2.GaussianBlur(lab[:, :, 0], (0, 0), 1.0)
    gradient = np.hypot(
        cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3)
    )
    calm = gradient < LIT_FOREHEAD_EDGE * max(float(np.median(gradient[seed])), 1e-3)
    _, labels = cv2.connectedComponents(((smooth & calm & zone) | seed).astype(np.uint8), connectivity=4)
    joined = np.unique(labels[seed])
    return np.isin(labels, joined[joined > 0]) & (zone | seed)


def _crop_box(face: FaceObservation, width: int, height: int) -> tuple[int, int, int, int, float]:
    """Crop (x0, y0, x1, y1) around the head and the scale that makes the face WORK_FACE_WIDTH wide."""
    lm = face.landmarks[:, :2]
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    fw = max(x1 - x0, 8.0)
    fh = max(y1 - y0, 8.0)
    cx0 = int(max(0, np.floor(x0 - 1.3 * fw)))
    cx1 = int(min(width, np.ceil(x1 + 1.3 * fw)))
    cy0 = int(max(0, np.floor(y0 - 1.0 * fh)))
    cy1 = int(min(height, np.ceil(y1 + 2.2 * fh)))
    scale = WORK_FACE_WIDTH / fw
    return cx0, cy0, cx1, cy1, float(scale)


def _grabcut(bgr: np.ndarray, labels: np.ndarray, iterations: int) -> None:
    """GrabCut from the labels in ``labels`` (updated in place), with fresh colour models.

    OpenCV seeds the colour models' k-means from its global random state: it is reset first so
    the same photo always gives the same mask (a short-haired portrait's mask was 10.6k or 26.8k
    hair pixels depending on what ran before in the process)."""
    cv2.setRNGSeed(0)
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(bgr, labels, None, bgd_model, fgd_model, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        pass


#: at most this many pixels train each colour mixture (every k-th sample is taken)
GMM_MAX_SAMPLES = 800


def _gmm_log_likelihood(samples: np.ndarray, pixels: np.ndarray, components: int = 3) -> np.ndarray:
    """Log-likelihood of ``pixels`` under a Gaussian mixture fitted to ``samples`` (OpenCV EM, seeded
    so a photo always gives the same result).

    samples : (k, 3) and pixels : (n, 3) float Lab. Each component's covariance gets a floor of 4 (2
    Lab units of spread) so a nearly flat colour region does not give a needle-sharp model.
    Returns (n,) float64."""
    samples = samples[:: -(-len(samples) // GMM_MAX_SAMPLES)]  # EM's time grows with the samples
    components = max(1, min(components, len(samples) // 30))
    em = cv2.ml.EM_create()
    em.setClustersNumber(components)
    em.setCovarianceMatrixType(cv2.ml.EM_COV_MAT_GENERIC)
    em.setTermCriteria((cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 50, 1e-3))
    cv2.setRNGSeed(0)
    em.trainEM(samples.astype(np.float32))
    logs = []
    for mean, cov, weight in zip(em.getMeans(), em.getCovs(), em.getWeights()[0], strict=True):
        cov = cov + np.eye(3) * 4.0
        diff = pixels - mean
        d2 = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
        logs.append(np.log(max(weight, 1e-6)) - 0.5 * d2 - 0.5 * np.log(np.linalg.det(cov)))
    return np.logaddexp.reduce(np.stack(logs), axis=0)


def hanging_hair(
    lab: np.ndarray,
    hair: np.ndarray,
    person: np.ndarray,
    skin_like: np.ndarray,
    oval_mask: np.ndarray,
    below_jaw: np.ndarray,
    envelope: np.ndarray,
    chin: np.ndarray,
    eye_y: float,
    face_w: float,
    face_h: float,
) -> np.ndarray:
    """Long hair below the jaw, followed down from the hair beside the cheeks.

    GrabCut judges the region below the jaw with one colour model for everything that is not hair
    (backdrop, face, neck and clothes together), so long hair over a dark top was cut at the jaw
    (S000030, D000622, B000911's lower curls). Here a hair colour model is fitted to the hair GrabCut
    found beside the face below the eyes and a clothes model to the body below the chin, in the
    middle (under the neck) and out at the shoulders beyond the hair's reach. A person pixel below
    the jaw inside ``envelope`` (beside the neck, not under it, not skin-coloured) is hair where the
    hair model explains it better (log-likelihood ratio, smoothed over 2 px, above 0) and it connects
    to the hair beside the face. Both models come from the same photo, so a change of exposure or a
    colour cast moves them together. Without hair beside the cheeks (short hair) nothing is added:
    over the 596 pool portraits 5 of 511 short-haired ones gain more than 1 % of the face box, and 4
    of 6 long-haired ones do.

    All masks (h, w) bool except lab (h, w, 3) float32, person and skin_like (h, w) float32; chin is
    landmark 152 (x, y). Returns (h, w) bool: the pixels to add.
    """
    h, w = hair.shape
    none = np.zeros((h, w), bool)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    beside = hair & ~oval_mask & (ys > eye_y)
    side = cv2.erode((beside & ~below_jaw).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if side.sum() < 0.02 * face_w * face_h:
        return none
    dx = np.abs(xs - chin[0])
    chest = below_jaw & (ys > chin[1] + 0.3 * face_h) & ((dx < 0.35 * face_w) | (dx > 1.15 * face_w))
    clothes = chest & (person > 0.8) & ~hair & (skin_like < 0.25)
    candidates = below_jaw & envelope & (person > 0.5) & (dx >= 0.35 * face_w) & (skin_like < 0.25) & ~hair
    if clothes.sum() < 60 or not candidates.any():
        return none
    ratio = np.zeros((h, w), np.float32)
    ratio[candidates] = np.clip(
        _gmm_log_likelihood(lab[side], lab[candidates]) - _gmm_log_likelihood(lab[clothes], lab[candidates]),
        -20.0,
        20.0,
    )
    weight = cv2.GaussianBlur(candidates.astype(np.float32), (0, 0), 2.0)
    ratio = cv2.GaussianBlur(ratio, (0, 0), 2.0) / np.maximum(weight, 1e-3)
    more_hair = (candidates & (ratio > 0.0)).astype(np.uint8)
    more_hair = cv2.morphologyEx(more_hair, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    _, labels = cv2.connectedComponents((more_hair | beside).astype(np.uint8), connectivity=8)
    touching = np.unique(labels[beside])
    return more_hair & np.isin(labels, touching[touching > 0])


def hanging_down(hair: np.ndarray, candidates: np.ndarray, start_row: int) -> np.ndarray:
    """Candidate pixels reached from ``hair`` by going down row by row from ``start_row``, each step
    to the pixel below or diagonally below: hair hangs from the head, so a candidate patch that no
    hair above leads to (an ear under glasses, a shadowed neck beside a turned face) is left out.

    hair, candidates : (h, w) bool. Returns (h, w) bool, a subset of ``candidates``."""
    h = hair.shape[0]
    grown = hair.copy()
    for y in range(max(1, start_row), h):
        row = candidates[y]
        if not row.any():
            continue
        above = grown[y - 1].copy()
        above[1:] |= grown[y - 1, :-1]
        above[:-1] |= grown[y - 1, 1:]
        grown[y] |= row & above
    return candidates & grown


def segment_regions(
    rgb: np.ndarray, landmarks: np.ndarray, model_selection: int = 0, grabcut_iterations: int = 4
) -> dict[str, np.ndarray]:
    """Segment an image (already cropped/scaled so the face is ~110 px wide).

    rgb : (h, w, 3) uint8; landmarks : (478, 3) or (468, 3) float pixels in this image.
    Returns dict of (h, w) float32 masks "hair", "skin", "body", "background" summing to 1.
    """
    h, w = rgb.shape[:2]
    lm = landmarks[:, :2].astype(np.float64)
    person = person_probability(rgb, model_selection)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)

    oval = lm[face_oval_order()]
    oval_mask = _polygon_mask((h, w), oval)
    inner_mask = _polygon_mask(
        (h, w), cv2.convexHull(lm[list(INNER_FACE_LANDMARKS)].astype(np.float32))[:, 0]
    )
    face_w = float(np.ptp(oval[:, 0]))
    face_h = float(np.ptp(oval[:, 1]))
    radius = max(2, int(round(face_w * 0.04)))

    # skin colour model from cheeks/nose discs
    sample_mask = np.zeros((h, w), np.uint8)
    for i in SKIN_SAMPLE_LANDMARKS:
        cv2.circle(sample_mask, (int(round(lm[i, 0])), int(round(lm[i, 1]))), radius, 1, -1)
    skin_discs = sample_mask.astype(bool)
    skin_like = skin_likelihood(lab, lab[skin_discs])
    energy = texture_energy(rgb)

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    brow_y = float(np.mean(lm[list(BROW_LANDMARKS), 1]))
    top_y = float(oval[:, 1].min())
    chin = lm[152]
    # jaw line: lower half of the oval (below the eyes), as y(x); extended sideways with its end heights
    eye_y = float(np.mean(lm[[33, 263], 1]))
    lower = oval[oval[:, 1] > eye_y]
    order = np.argsort(lower[:, 0])
    jaw_x, jaw_y = lower[order, 0], lower[order, 1]
    jaw_at_x = np.interp(xs[0], jaw_x, jaw_y).astype(np.float32)  # (w,)
    below_jaw = ys > jaw_at_x[None, :]
    cx = float(oval[:, 0].mean())
    side_band = ~oval_mask & (np.abs(xs - cx) < 0.9 * face_w)  # beside the face, either side

    # GrabCut labels: hair is foreground
    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    is_person = person > 0.5
    not_skin = skin_like < 0.25
    above_brow = ys < brow_y - 0.02 * face_h
    outside_oval_above_jaw = is_person & ~oval_mask & ~below_jaw
    gc[outside_oval_above_jaw & not_skin] = cv2.GC_PR_FGD
    gc[oval_mask & above_brow & not_skin & is_person] = cv2.GC_PR_FGD
    # long hair hangs below the jaw only inside an envelope beside the neck (left probable
    # background there for GrabCut to decide); clothes fill the rest
    envelope = (np.abs(xs - chin[0]) < 1.05 * face_w) & (ys < chin[1] + 1.3 * face_h)
    cap = (person > 0.8) & (ys < top_y + 0.05 * face_h) & ~oval_mask & (skin_like < 0.05)
    cap |= (person > 0.8) & oval_mask & (ys < top_y + 0.12 * face_h) & (skin_like < 0.02)
    gc[cap] = cv2.GC_FGD
    neck_column = (np.abs(xs - chin[0]) < 0.22 * face_w) & (ys > chin[1] + 0.05 * face_h)
    gc[neck_column & below_jaw] = cv2.GC_BGD
    gc[below_jaw & ~envelope] = cv2.GC_BGD
    # chest and shoulders: clothes (seeds the not-hair colour model with the jacket)
    gc[below_jaw & (ys > chin[1] + 0.8 * face_h)] = cv2.GC_BGD
    gc[below_jaw & (np.abs(xs - chin[0]) < 0.35 * face_w)] = cv2.GC_BGD
    gc[inner_mask & ~above_brow] = cv2.GC_BGD
    gc[person < 0.15] = cv2.GC_BGD
    gc[skin_discs] = cv2.GC_BGD

    n_fg = int(np.count_nonzero((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)))
    if n_fg < 0.01 * face_w * face_h or int(np.count_nonzero(gc == cv2.GC_FGD)) < 20:
        # no hair seeds: a bald or shaved head (or covered); only clearly non-skin person pixels
        # around the scalp can be hair
        hair_hard = (gc == cv2.GC_PR_FGD) & ~below_jaw & (person > 0.5) & (skin_like < 0.05)
    else:
        _grabcut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), gc, grabcut_iterations)
        hair_hard = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)) & (person > 0.35)
        # the temples: beside the face from the forehead top down to the eyes, person pixels the
        # selfie model is sure of and the skin model does not claim are hair. GrabCut often gave
        # this thin strip to the backdrop or the face (grey or light hair against a blue-grey
        # backdrop, short dark hair beside dark skin), and the face oval stops where it starts
        sure_not_skin = side_band & not_skin & (person > 0.9)
        hair_hard |= sure_not_skin & (ys > top_y) & (ys < eye_y)
        # below the eyes, beside the cheeks down to the jaw line: the same test, for pixels that are
        # textured (hair strands, not a smooth ear or collar) and hang from hair above them
        strands = sure_not_skin & (ys >= eye_y) & ~below_jaw & ~smooth_like_skin(energy, skin_discs, 2.0)
        hair_hard |= hanging_down(hair_hard, strands, int(np.floor(eye_y)))
        hair_hard |= hanging_hair(
            lab, hair_hard, person, skin_like, oval_mask, below_jaw, envelope, chin, eye_y, face_w, face_h
        )

    # a forehead is smooth, hair is not: inside the face oval above the brows, a region as smooth as
    # the cheeks (high-pass energy of log intensity under FOREHEAD_SMOOTH x theirs) is skin whatever
    # its colour (a lit forehead whose chroma leaves the cheeks' line was taken for hair; S000810);
    # so is a region smoother than the cheeks themselves (FOREHEAD_TOP_SMOOTH) in a band above the
    # oval's top, over the middle of the forehead, where a high forehead or a bald crown continues.
    # Higher up, or with the looser bound, close-cropped grey hair was taken for skin (C000537)
    hair_hard &= ~(oval_mask & above_brow & smooth_like_skin(energy, skin_discs, FOREHEAD_SMOOTH))
    forehead_top = (
        ~oval_mask
        & (ys > top_y - 0.15 * face_h)
        & (ys < top_y + 0.1 * face_h)
        & (np.abs(xs - cx) < 0.3 * face_w)
    )
    # and above that band the forehead's skin goes on only as far as it fades without an edge (a
    # lit high forehead, S000810; a bald crown, B001275), not into hair that is as smooth
    top_smooth = smooth_like_skin(energy, skin_discs, FOREHEAD_TOP_SMOOTH)
    scalp = ~oval_mask & (ys > top_y - 0.6 * face_h) & (np.abs(xs - cx) < 0.45 * face_w)
    hair_hard &= ~lit_forehead(lab, top_smooth, forehead_top & top_smooth, scalp)  # the band included
    hair_u8 = hair_hard.astype(np.uint8)
    hair_u8 = cv2.morphologyEx(hair_u8, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    # keep the components that reach the head: hair hangs from it, and a piece that reaches no higher
    # than the lower cheeks is a jacket or cardigan GrabCut took for hair (26 of the 511 short-haired
    # pool portraits had 3-56 % of a face box of it below the chin, one shoulder of the suit, which
    # read as long hair, while the head zone ended at the chin)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hair_u8, connectivity=8)
    if n > 1:
        head_zone = (ys < chin[1] - 0.3 * face_h) & (np.abs(xs - chin[0]) < 1.0 * face_w)
        keep = np.zeros(n, bool)
        touching = np.unique(labels[head_zone & (labels > 0)])
        keep[touching] = True
        keep[0] = False
        keep &= stats[:, cv2.CC_STAT_AREA] >= max(4, 0.002 * face_w * face_h)
        hair_u8 = keep[labels].astype(np.uint8)
    hair = cv2.GaussianBlur(hair_u8.astype(np.float32), (0, 0), 1.0)
    hair = np.minimum(hair, person)

    rest = np.clip(person - hair, 0.0, 1.0)
    skin_frac = np.where(oval_mask, np.maximum(skin_like, inner_mask.astype(np.float32)), 0.0)
    skin_frac = cv2.GaussianBlur(skin_frac.astype(np.float32), (0, 0), 1.0)
    skin = rest * skin_frac
    body = rest - skin
    background = 1.0 - person
    return {
        "hair": hair.astype(np.float32),
        "skin": skin.astype(np.float32),
        "body": body.astype(np.float32),
        "background": background.astype(np.float32),
    }


def segment_photo(photo: Photo, face: FaceObservation, model_selection: int = 0) -> Segmentation:
    """Soft hair / face-skin / body / background masks for the whole photo (each (h, w) float32)."""
    h, w = photo.height, photo.width
    x0, y0, x1, y1, scale = _crop_box(face, w, h)
    crop = photo.pixels[y0:y1, x0:x1]
    cw = max(16, int(round((x1 - x0) * scale)))
    ch = max(16, int(round((y1 - y0) * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(crop, (cw, ch), interpolation=interp)
    lm = face.landmarks.astype(np.float64).copy()
    lm[:, 0] = (lm[:, 0] - x0) * (cw / (x1 - x0))
    lm[:, 1] = (lm[:, 1] - y0) * (ch / (y1 - y0))
    masks = segment_regions(small, lm, model_selection=model_selection)

    out: dict[str, np.ndarray] = {}
    for name, m in masks.items():
        full = np.zeros((h, w), np.float32)
        if name == "background":
            full[:] = 1.0
        full[y0:y1, x0:x1] = cv2.resize(m, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        out[name] = full
    # outside the crop: a person below the crop is body, everything else background
    if y1 < h:
        person_below = person_probability(photo.pixels[y1:, x0:x1]) if (h - y1) > 8 else None
        if person_below is not None:
            out["body"][y1:, x0:x1] = person_below
            out["background"][y1:, x0:x1] = 1.0 - person_below
    return Segmentation(hair=out["hair"], skin=out["skin"], body=out["body"], background=out["background"])


def landmark_segment(photo: Photo, face: FaceObservation) -> Segmentation:
    """Hair, face skin, body and background from selfie segmentation, the face oval and colour models."""
    return segment_photo(photo, face)


@hookimpl
def register_stages(register) -> None:
    register(
        "segment",
        "landmarks",
        landmark_segment,
        description="mediapipe selfie segmentation + landmark face oval + skin colour model + GrabCut hair",
    )
