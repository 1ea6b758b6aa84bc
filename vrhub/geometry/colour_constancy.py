"""Colour constancy for the albedo bake: the photo's tone curve and white balance from cues that do
not depend on the subject's skin.

A photo's rendering (exposure, tone curve, white balance) is modelled per channel as
``observed = gain_c * true ** gamma`` (values 0..1). Four cues measure it, each against its typical
value in well-exposed portraits (:data:`CUE_REFERENCES`):

- **sclera**: the brightest quarter of the eye-white pixels of both eyes (iris disc excluded);
- **teeth**: the bright, low-saturation pixels inside the inner lip contour (only when the mouth is
  open enough to show them);
- **background**: the pixels the segmentation marks as background (luminance); its near-neutral
  pixels (chroma);
- **image**: the whole photo's geometric-mean luminance and grey-world chromaticity (a weak prior).

Each cue gives an estimate of ``log gamma`` (from its log luminance against the reference's) and of
the per-channel log chromaticity offset. The estimates are combined by inverse variance (each cue's
spread among the reference portraits, times its confidence in this photo), and the result is shrunk
by how much the cues disagree. Only the part beyond a dead zone (:data:`GAMMA_DEAD_ZONE`,
:data:`CHROMA_DEAD_ZONE`, the spread of the combined estimate among well-exposed portraits) is
corrected: an ordinary photo of a dark-, medium- or light-skinned person is left alone, while a
strong tone curve or colour cast is mostly undone. This is a single-image estimate with priors; it
cannot tell a dark photo of a bright scene from a bright photo of a dark scene, so residual errors
remain (see the face README's robustness table).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vrhub.geometry.canonical_face import EYE_RING_L, EYE_RING_R, MOUTH_RING

#: Iris landmarks (mediapipe refine_landmarks): centre then 4 on the rim, subject's right / left eye.
IRIS_R = (468, 469, 470, 471, 472)
IRIS_L = (473, 474, 475, 476, 477)


@dataclass(frozen=True)
class CueReference:
    """Typical value of a cue in a well-exposed portrait and its spread among such portraits.

    luminance : mean of RGB (0..1); log_spread : std of log(log luminance) ratios, i.e. how far
    this cue alone misjudges log gamma; chroma : (3,) colour / mean; chroma_spread : std of log
    chromaticity.
    """

    luminance: float
    log_spread: float
    chroma: tuple[float, float, float]
    chroma_spread: float


#: Measured on the 14 shared portraits (Congress studio photos, a White House photo, video stills,
#: an outdoor photo) with :func:`measure_cues`; the spreads are inflated where the set is uniform
#: (the Congress backdrops make the background look steadier than backgrounds are in general).
CUE_REFERENCES: dict[str, CueReference] = {
    "sclera": CueReference(0.54, 0.40, (1.11, 0.98, 0.91), 0.12),
    "teeth": CueReference(0.72, 0.40, (1.08, 0.99, 0.93), 0.12),
    "background": CueReference(0.50, 0.25, (1.00, 1.00, 1.00), 0.30),
    "image": CueReference(0.375, 0.30, (1.07, 0.99, 0.94), 0.25),
}
#: Corrections of log gamma / log chromaticity inside these are taken as the photo's own look.
GAMMA_DEAD_ZONE = 0.04
CHROMA_DEAD_ZONE = 0.09
GAMMA_RANGE = (0.5, 2.0)
#: Pixels the scene cues (background, whole image) are measured on.
SCENE_PIXELS = 40_000
GAIN_RANGE = (0.7, 1.4)


@dataclass(frozen=True)
class Cue:
    """One measurement: luminance (0..1), chroma (3,) colour / mean, confidence 0..1 for the
    luminance and for the chroma."""

    name: str
    luminance: float
    chroma: np.ndarray
    confidence: float
    chroma_confidence: float


@dataclass(frozen=True)
class ToneCorrection:
    """``corrected = (value ** gamma) * gains`` (values 0..1) and how it was found."""

    gamma: float
    gains: np.ndarray
    cues: tuple[Cue, ...] = ()
    agreement: float = 1.0

    @property
    def identity(self) -> bool:
        return self.gamma == 1.0 and bool(np.allclose(self.gains, 1.0))

    def apply_to_photo(self, photo: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 -> the same corrected, through one 256-entry table per channel."""
        if self.identity:
            return photo
        lut = self.apply(np.repeat(np.arange(256, dtype=np.float32)[:, None], 3, axis=1))
        lut_u8 = np.clip(lut + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)
        return cv2.LUT(np.ascontiguousarray(photo), lut_u8)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """rgb (..., 3) in 0..255 -> float32 0..255."""
        if self.identity:
            return np.asarray(rgb, np.float32)
        v = np.clip(np.asarray(rgb, np.float32) / 255.0, 0.0, 1.0)
        return np.clip((v ** np.float32(self.gamma)) * self.gains.astype(np.float32), 0.0, 1.0) * 255.0


IDENTITY = ToneCorrection(1.0, np.ones(3))


def _polygon_pixels(
    photo: np.ndarray, poly: np.ndarray, erode: int = 0
) -> tuple[np.ndarray, tuple[int, int]]:
    """Pixels (k, 3) float64 0..1 inside polygon ``poly`` (m, 2) and the crop's origin."""
    h, w = photo.shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 2:
        return np.zeros((0, 3)), (x0, y0)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 4).astype(np.int32)], 1, shift=2)
    if erode:
        mask = cv2.erode(mask, np.ones((erode, erode), np.uint8))
    return photo[y0:y1, x0:x1][mask > 0].astype(np.float64) / 255.0, (x0, y0)


def sclera_pixels(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(k, 3) float64 RGB 0..1 of the brightest eye-white pixels of both eyes (iris disc excluded)."""
    lm = np.asarray(landmarks, np.float64)
    h, w = photo.shape[:2]
    out = []
    for ring, iris in ((EYE_RING_L, IRIS_L), (EYE_RING_R, IRIS_R)):
        poly = lm[list(ring), :2]
        x0, y0 = np.floor(poly.min(0)).astype(int)
        x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 3 or y1 - y0 < 2:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 4).astype(np.int32)], 1, shift=2)
        mask = cv2.erode(mask, np.ones((2, 2), np.uint8))
        c = lm[iris[0], :2]
        radius = np.linalg.norm(lm[list(iris[1:]), :2] - c, axis=1).mean()
        yy, xx = np.mgrid[y0:y1, x0:x1]
        keep = (mask > 0) & (np.hypot(xx - c[0], yy - c[1]) > radius * 1.15)
        px = photo[y0:y1, x0:x1][keep].astype(np.float64) / 255.0
        if len(px) >= 4:
            lum = px.mean(1)
            out.append(px[lum >= np.quantile(lum, 0.75)])
    return np.concatenate(out) if out else np.zeros((0, 3))


def _cue(name: str, px: np.ndarray, confidence: float, chroma_confidence: float | None = None) -> Cue:
    med = np.clip(np.median(px, axis=0), 1e-3, 1.0)
    return Cue(
        name,
        float(np.clip(med.mean(), 0.01, 0.99)),
        med / med.mean(),
        float(np.clip(confidence, 0, 1)),
        float(np.clip(confidence if chroma_confidence is None else chroma_confidence, 0, 1)),
    )


def measure_cues(photo: np.ndarray, landmarks: np.ndarray, background: np.ndarray | None = None) -> list[Cue]:
    """The cues this photo offers.

    photo : (h, w, 3) uint8 RGB; landmarks : (478, 3) float64 pixels; background : (h, w) float
    0..1 or None (the segmentation's background mask).
    """
    lm = np.asarray(landmarks, np.float64)
    cues: list[Cue] = []
    sc = sclera_pixels(photo, lm)
    if len(sc) >= 12:
        lum = float(np.median(sc.mean(1)))
        # a hat's shadow or closed eyes: dark "eye whites" are not eye whites
        cues.append(_cue("sclera", sc, min(len(sc) / 40.0, 1.0) * np.clip((lum - 0.2) / 0.15, 0, 1)))
    mouth, _ = _polygon_pixels(photo, lm[list(MOUTH_RING), :2], erode=2)
    if len(mouth) >= 30:
        lum = mouth.mean(1)
        sat = mouth.max(1) - mouth.min(1)
        teeth = (lum >= np.quantile(lum, 0.6)) & (lum > 1.4 * np.median(lum)) & (sat < 0.5 * lum)
        if teeth.sum() >= 15:
            cues.append(_cue("teeth", mouth[teeth], min(teeth.sum() / 80.0, 1.0)))
    # the scene cues are statistics: a regular subsample of about 40k pixels is plenty
    step = max(int(np.ceil(np.sqrt(photo.shape[0] * photo.shape[1] / SCENE_PIXELS))), 1)
    rgb = photo[::step, ::step].astype(np.float32) / 255.0
    lum_img = rgb.mean(2)
    if background is not None:
        bg = np.asarray(background)[::step, ::step] > 0.9
        frac = float(bg.mean())
        if bg.sum() >= 100:
            px = rgb[bg].astype(np.float64)
            l_ = px.mean(1)
            sat = px.max(1) - px.min(1)
            neutral = sat < 0.12 + 0.1 * l_
            conf = min(frac / 0.2, 1.0)
            chroma_conf = conf * min(neutral.mean() / 0.5, 1.0)
            use = px[neutral] if neutral.sum() >= 50 else px
            c = _cue("background", use, conf, chroma_conf)
            cues.append(
                Cue(
                    c.name,
                    float(np.clip(np.median(l_), 0.01, 0.99)),
                    c.chroma,
                    c.confidence,
                    c.chroma_confidence,
                )
            )
    mean_rgb = rgb.reshape(-1, 3).mean(0).astype(np.float64)
    gm = float(np.exp(np.log(lum_img + 0.02).mean()) - 0.02)
    cues.append(Cue("image", float(np.clip(gm, 0.01, 0.99)), mean_rgb / max(mean_rgb.mean(), 1e-6), 1.0, 1.0))
    return cues


def _dead_zone(x: np.ndarray | float, zone: float) -> np.ndarray:
    return np.sign(x) * np.maximum(np.abs(x) - zone, 0.0)


#: Cue groups: what the face shows (lit like the skin) and what the scene shows. A correction is
#: applied only as far as both groups call for it (see :func:`_agreeing`).
FACE_CUES = ("sclera", "teeth")
SCENE_CUES = ("background", "image")


def _group_estimate(values: dict[str, np.ndarray], weights: dict[str, float], names: tuple[str, ...]):
    """Inverse-variance mean of the group's estimates (..., float or (3,)) or None when it has none."""
    got = [n for n in names if n in values and weights[n] > 0]
    if not got:
        return None
    w = np.array([weights[n] for n in got])
    v = np.array([values[n] for n in got], np.float64)
    return np.tensordot(w / w.sum(), v, axes=1)


def _agreeing(face: np.ndarray | None, scene: np.ndarray | None, zone: float) -> tuple[np.ndarray, float]:
    """The correction both groups agree on: elementwise the smaller-magnitude estimate where their
    signs agree, 0 where they do not; beyond a dead zone ``zone``. Returns (estimate, agreement 0..1 = |agreed| / |larger|).

    With either group missing nothing is corrected: the scene alone cannot tell a blue backdrop
    from a blue cast (measured on GRID video frames whose eyes were too small for the sclera cue,
    correcting on the scene alone changed the albedo by ΔE2000 ~6 between frames)."""
    if face is None or scene is None:
        return np.zeros(()), 0.0
    face, scene = np.asarray(face), np.asarray(scene)
    same = np.sign(face) == np.sign(scene)
    agreed = np.where(same, np.sign(face) * np.minimum(np.abs(face), np.abs(scene)), 0.0)
    larger = float(np.maximum(np.abs(face), np.abs(scene)).max())
    return _dead_zone(agreed, zone), float(np.abs(agreed).max() / larger) if larger > 1e-9 else 1.0


def estimate_tone_correction(cues: list[Cue]) -> ToneCorrection:
    """Combine the cues (see the module docstring) into a :class:`ToneCorrection`."""
    known = {c.name: c for c in cues if c.name in CUE_REFERENCES and c.confidence > 0}
    if not known:
        return IDENTITY
    # log gamma: observed log-luminance = gamma * reference log-luminance
    est = {n: np.log(np.log(c.luminance) / np.log(CUE_REFERENCES[n].luminance)) for n, c in known.items()}
    w = {n: c.confidence / CUE_REFERENCES[n].log_spread ** 2 for n, c in known.items()}
    log_g, agreement = _agreeing(
        _group_estimate(est, w, FACE_CUES), _group_estimate(est, w, SCENE_CUES), GAMMA_DEAD_ZONE
    )
    gamma = float(np.clip(np.exp(-float(log_g)), *GAMMA_RANGE))
    # chroma after the tone curve: per-channel log offset from each cue's reference chroma
    offsets: dict[str, np.ndarray] = {}
    wc: dict[str, float] = {}
    for n, c in known.items():
        if c.chroma_confidence <= 0:
            continue
        r = CUE_REFERENCES[n]
        after = np.clip(c.chroma * c.luminance, 1e-3, 1.0) ** gamma
        off = np.log(after / after.mean()) - np.log(np.array(r.chroma) / np.mean(r.chroma))
        offsets[n] = off - off.mean()
        wc[n] = c.chroma_confidence / r.chroma_spread**2
    corr, _ = _agreeing(
        _group_estimate(offsets, wc, FACE_CUES), _group_estimate(offsets, wc, SCENE_CUES), CHROMA_DEAD_ZONE
    )
    gains = np.clip(np.exp(-np.broadcast_to(corr, (3,))), *GAIN_RANGE)
    gains = gains / np.exp(np.log(gains).mean())
    return ToneCorrection(gamma, gains, tuple(cues), agreement)


def tone_correction(
    photo: np.ndarray, landmarks: np.ndarray, background: np.ndarray | None = None
) -> ToneCorrection:
    """:func:`measure_cues` then :func:`estimate_tone_correction`."""
    return estimate_tone_correction(measure_cues(photo, landmarks, background))
