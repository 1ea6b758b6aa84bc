"""Image features of the hair in a portrait, for the learned attribute model and the rule-based parts.

Everything is measured on a crop normalised so the face oval is ``NORM_FACE_WIDTH`` pixels wide, so
features do not depend on the photo's resolution; lengths are in units of the face width (fw) or face
height (fh), positions relative to landmarks (forehead top = landmark 10, brows, eyes, chin = 152).

Groups (``FEATURE_NAMES`` lists all, in order; bump ``FEATURES_VERSION`` when they change):

- geometry: hair area, top/bottom/side extents, a per-band width profile from above the head to below
  the shoulders, hair beside/below the jaw, cap (scalp) and temple coverage, skin showing on the cap;
- fringe: hair coverage of the forehead (landmark 10 to the brows) and just above the brows;
- colour: Lab mean/std/percentiles of the hair (or of the cap when there is little hair), chroma,
  contrast to the skin;
- texture (on log intensity, so gamma and light gradients barely move it): structure-tensor
  orientation coherence at two scales, orientation histogram (vertical, diagonal, horizontal
  shares), Laplacian energy relative to contrast, Gabor energy ratios;
- silhouette: irregularity of the hair outline against its smoothed version (spikiness cue) and the
  share of strands pointing up in the cap;
- parting cues: left/right asymmetry of hair mass and of strand orientation above the brows, the
  x position of the cap's brightest/skin-coloured notch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vrhub.pipeline.types import FaceObservation, Photo, Segmentation

FEATURES_VERSION = 2
NORM_FACE_WIDTH = 110.0
#: rows of the width profile, in face heights relative to the forehead top (landmark 10)
PROFILE_BANDS = np.array([-0.45, -0.3, -0.15, 0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05, 1.2, 1.35, 1.5])


@dataclass(frozen=True)
class HairMeasurements:
    """Features plus the quantities the rule-based attributes read directly.

    vector : (d,) float32 in FEATURE_NAMES order.
    colour_rgb : median RGB of the confident hair pixels (or of the cap).
    """

    vector: np.ndarray
    colour_rgb: tuple[int, int, int]
    hair_fraction_cap: float
    fringe_coverage: float
    silhouette_irregularity: float
    upward_strands: float
    coherence: float
    hat_score: float
    cap_skin: float
    #: height of the forehead hairline above landmark 10, in units of the 10 -> 152 distance
    #: (negative: hair comes down over the forehead); None when no hair is above the forehead
    hairline: float | None = None


def _names() -> list[str]:
    names = [
        "area",
        "top_above_forehead",
        "bottom_below_chin",
        "width_max",
        "left_extent",
        "right_extent",
    ]
    names += [f"profile_{b:+.2f}" for b in PROFILE_BANDS]
    names += [
        "beside_jaw",
        "below_jaw_sides",
        "cap_cover",
        "cap_skin",
        "crown_cover",
        "temple_cover_l",
        "temple_cover_r",
        "temple_min",
        "ear_cover",
        "fringe_cover",
        "above_brow_cover",
        "fringe_centre",
        "person_top_above_forehead",
    ]
    names += ["L_mean", "a_mean", "b_mean", "L_std", "a_std", "b_std", "L_p10", "L_p50", "L_p90"]
    names += ["chroma", "L_minus_skin", "chroma_minus_skin", "hair_pixels_log"]
    names += [
        "coherence_s1",
        "coherence_s2",
        "coherence_cap",
        "orient_vertical",
        "orient_diagonal",
        "orient_horizontal",
        "orient_entropy",
        "lap_energy",
        "grad_energy",
        "gabor_fine_coarse",
        "gabor_anisotropy",
        "dark_blob_density",
    ]
    names += [
        "silhouette_irregularity",
        "upward_strands",
        "asym_mass",
        "asym_orient",
        "notch_x",
        "notch_strength",
        "top_x",
    ]
    return names


FEATURE_NAMES: tuple[str, ...] = tuple(_names())
#: the hair's absolute colour statistics: a gamma, an exposure or a colour cast moves them all, so
#: attributes that are not about colour are learned without them (``colour_free_columns``)
ABSOLUTE_COLOUR_FEATURES: tuple[str, ...] = (
    "L_mean", "a_mean", "b_mean", "L_std", "a_std", "b_std", "L_p10", "L_p50", "L_p90", "chroma",
)  # fmt: skip


def colour_free_columns() -> list[int]:
    """Indices of FEATURE_NAMES without ABSOLUTE_COLOUR_FEATURES."""
    return [i for i, n in enumerate(FEATURE_NAMES) if n not in ABSOLUTE_COLOUR_FEATURES]


def _box_mean(mask: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> float:
    """Mean of ``mask`` in the pixel box (clipped to the image; 0 when the box is empty)."""
    h, w = mask.shape
    ix0, ix1 = int(np.clip(round(x0), 0, w)), int(np.clip(round(x1), 0, w))
    iy0, iy1 = int(np.clip(round(y0), 0, h)), int(np.clip(round(y1), 0, h))
    if ix1 <= ix0 or iy1 <= iy0:
        return 0.0
    return float(mask[iy0:iy1, ix0:ix1].mean())


def normalised_crop(
    photo: Photo, face: FaceObservation, seg: Segmentation
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], float]:
    """Crop around the head and scale so the face is NORM_FACE_WIDTH wide.

    Returns rgb (h, w, 3) uint8, landmarks (478, 2) float64 in the crop, masks (h, w) float32 by name,
    and the scale factor (crop px per photo px).
    """
    lm = face.landmarks[:, :2].astype(np.float64)
    from vrhub.stages.landmark_segment import face_oval_order

    oval = lm[face_oval_order()]
    fw = max(float(np.ptp(oval[:, 0])), 8.0)
    fh = max(float(np.ptp(oval[:, 1])), 8.0)
    x0 = int(max(0, np.floor(oval[:, 0].min() - 1.2 * fw)))
    x1 = int(min(photo.width, np.ceil(oval[:, 0].max() + 1.2 * fw)))
    y0 = int(max(0, np.floor(oval[:, 1].min() - 0.8 * fh)))
    y1 = int(min(photo.height, np.ceil(oval[:, 1].max() + 1.2 * fh)))
    scale = NORM_FACE_WIDTH / fw
    cw, ch = max(8, int(round((x1 - x0) * scale))), max(8, int(round((y1 - y0) * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    rgb = cv2.resize(photo.pixels[y0:y1, x0:x1], (cw, ch), interpolation=interp)
    masks = {
        name: cv2.resize(getattr(seg, name)[y0:y1, x0:x1], (cw, ch), interpolation=cv2.INTER_LINEAR)
        for name in ("hair", "skin", "body", "background")
    }
    lm2 = np.empty_like(lm)
    lm2[:, 0] = (lm[:, 0] - x0) * (cw / (x1 - x0))
    lm2[:, 1] = (lm[:, 1] - y0) * (ch / (y1 - y0))
    return rgb, lm2, masks, scale


def _structure_tensor(grey: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coherence, strand orientation (radians, 0 = vertical strands) and energy per pixel."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), sigma)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), sigma)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), sigma)
    tr = jxx + jyy
    diff = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    coherence = np.where(tr > 1e-6, diff / (tr + 1e-6), 0.0)
    # gradient orientation; strands run perpendicular to the dominant gradient
    grad_angle = 0.5 * np.arctan2(2 * jxy, jxx - jyy)  # angle of the gradient from +x
    strand = grad_angle + np.pi / 2  # strand direction from +x
    strand_from_vertical = np.mod(strand - np.pi / 2 + np.pi / 2, np.pi) - np.pi / 2
    return coherence.astype(np.float32), strand_from_vertical.astype(np.float32), tr.astype(np.float32)


def log_intensity(grey: np.ndarray) -> np.ndarray:
    """log(grey + 4) of 0-255 grey values. The offset keeps JPEG noise in black hair from
    dominating; above ~20 grey levels the result is within a few per cent of a pure log."""
    return np.log(grey.astype(np.float32) + 4.0)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    s = float(weights.sum())
    return float((values * weights).sum() / s) if s > 1e-6 else 0.0


#: Skin likelihood from which a hair-mask pixel counts as scalp or forehead in the hair colour.
#: (0.3 left out the lighter half of auburn and light-brown hair, whose tones the face's skin model
#: half-claims: C001066's auburn read (59, 30, 20). With 0.7 a nearest-colour namer over the
#: measured colours matches 61.8 % of the pool's colour labels (balanced), against 59.9 %.)
SKIN_LIKE_HAIR = 0.7


def hair_colour(rgb_hair: np.ndarray, lab_hair: np.ndarray, lab_skin: np.ndarray) -> tuple[int, int, int]:
    """Median RGB of the hair pixels that are not skin-coloured.

    The hair mask of close-cropped or receding hair also holds scalp and forehead (scalp shows
    between the hairs; segmentation spills over a bare forehead), which pulls the median towards
    the skin (a dark grey crop read as beige). Pixels the skin-colour model of the face clearly
    claims (likelihood >= :data:`SKIN_LIKE_HAIR`) are left out when enough hair remains (a quarter of
    the mask); otherwise, when the mask as a whole is near the skin's colour, the darker half is
    taken (blonde hair close to the skin's tone).

    rgb_hair : (n, 3) uint8; lab_hair : (n, 3) Lab of the same pixels; lab_skin : (k, 3) Lab of skin.
    """
    from vrhub.stages.landmark_segment import skin_likelihood

    if len(lab_hair) > 20 and len(lab_skin) >= 10:
        skin_like = skin_likelihood(lab_hair[None].astype(np.float32), lab_skin.astype(np.float32))[0]
        hairy = skin_like < SKIN_LIKE_HAIR
        if hairy.sum() >= max(20, 0.25 * len(lab_hair)):
            return tuple(int(v) for v in np.median(rgb_hair[hairy], axis=0))  # type: ignore[return-value]
        if np.linalg.norm(np.median(lab_hair, axis=0) - np.median(lab_skin, axis=0)) < 15.0:
            dark = lab_hair[:, 0] <= np.median(lab_hair[:, 0])
            return tuple(int(v) for v in np.median(rgb_hair[dark], axis=0))  # type: ignore[return-value]
    return tuple(int(v) for v in np.median(rgb_hair, axis=0))  # type: ignore[return-value]


def measure_hair(photo: Photo, face: FaceObservation, seg: Segmentation) -> HairMeasurements:
    """All hair features of one portrait (see the module docstring)."""
    from vrhub.stages.landmark_segment import face_oval_order

    rgb, lm, masks, _ = normalised_crop(photo, face, seg)
    h, w = rgb.shape[:2]
    hair = masks["hair"]
    skin = masks["skin"]
    person = 1.0 - masks["background"]
    hard = hair > 0.5
    oval = lm[face_oval_order()]
    fw = float(np.ptp(oval[:, 0]))
    fh = float(np.ptp(oval[:, 1]))
    cx = float(oval[:, 0].mean())
    top = float(lm[10, 1])
    chin_y = float(lm[152, 1])
    brow_y = float(lm[[70, 63, 105, 66, 107, 336, 296, 334, 293, 300], 1].mean())
    eye_y = float(lm[[33, 263], 1].mean())
    left_x, right_x = float(oval[:, 0].min()), float(oval[:, 0].max())

    ys, xs = np.nonzero(hard)
    f: dict[str, float] = {}
    f["area"] = float(hard.sum()) / (fw * fh)
    if len(ys):
        f["top_above_forehead"] = (top - ys.min()) / fh
        f["bottom_below_chin"] = (ys.max() - chin_y) / fh
        f["width_max"] = (xs.max() - xs.min()) / fw
        f["left_extent"] = (left_x - xs.min()) / fw
        f["right_extent"] = (xs.max() - right_x) / fw
    else:
        f["top_above_forehead"] = f["bottom_below_chin"] = f["width_max"] = 0.0
        f["left_extent"] = f["right_extent"] = 0.0
    for b in PROFILE_BANDS:
        y0 = top + b * fh
        f[f"profile_{b:+.2f}"] = (
            _box_mean(hard.astype(np.float32), cx - 1.2 * fw, cx + 1.2 * fw, y0, y0 + 0.15 * fh) * 2.4
        )
    hf = hard.astype(np.float32)
    f["beside_jaw"] = 0.5 * (
        _box_mean(hf, left_x - 0.35 * fw, left_x, eye_y, chin_y)
        + _box_mean(hf, right_x, right_x + 0.35 * fw, eye_y, chin_y)
    )
    f["below_jaw_sides"] = 0.5 * (
        _box_mean(hf, cx - 0.9 * fw, cx - 0.35 * fw, chin_y, chin_y + 0.5 * fh)
        + _box_mean(hf, cx + 0.35 * fw, cx + 0.9 * fw, chin_y, chin_y + 0.5 * fh)
    )
    cap = (cx - 0.4 * fw, cx + 0.4 * fw, top - 0.3 * fh, top + 0.05 * fh)
    f["cap_cover"] = _box_mean(hf, *cap)
    skin_like_cap = (person > 0.5) & ~hard
    f["cap_skin"] = _box_mean(skin_like_cap.astype(np.float32), *cap)
    f["crown_cover"] = _box_mean(hf, cx - 0.25 * fw, cx + 0.25 * fw, top - 0.3 * fh, top - 0.1 * fh)
    f["temple_cover_l"] = _box_mean(hf, left_x, left_x + 0.25 * fw, top, brow_y)
    f["temple_cover_r"] = _box_mean(hf, right_x - 0.25 * fw, right_x, top, brow_y)
    f["temple_min"] = min(f["temple_cover_l"], f["temple_cover_r"])
    f["ear_cover"] = 0.5 * (
        _box_mean(hf, left_x - 0.15 * fw, left_x + 0.05 * fw, brow_y, eye_y + 0.2 * fh)
        + _box_mean(hf, right_x - 0.05 * fw, right_x + 0.15 * fw, brow_y, eye_y + 0.2 * fh)
    )
    forehead = (cx - 0.3 * fw, cx + 0.3 * fw, top + 0.02 * fh, brow_y - 0.02 * fh)
    f["fringe_cover"] = _box_mean(hf, *forehead)
    f["above_brow_cover"] = _box_mean(
        hf, cx - 0.3 * fw, cx + 0.3 * fw, brow_y - 0.12 * fh, brow_y - 0.02 * fh
    )
    f["fringe_centre"] = _box_mean(hf, cx - 0.12 * fw, cx + 0.12 * fw, top + 0.05 * fh, brow_y - 0.02 * fh)
    pys = np.nonzero((person > 0.5).any(axis=1))[0]
    f["person_top_above_forehead"] = (top - pys.min()) / fh if len(pys) else 0.0

    # colour
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    core = cv2.erode(hard.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if core.sum() < 30:
        capmask = np.zeros((h, w), bool)
        capmask[int(max(0, cap[2])) : int(max(0, cap[3])), int(max(0, cap[0])) : int(min(w, cap[1]))] = True
        core = capmask & (person > 0.5)
        if core.sum() < 10:
            core = capmask
    pix = lab[core] if core.any() else lab.reshape(-1, 3)
    skin_pix = lab[skin > 0.5] if (skin > 0.5).sum() > 10 else lab.reshape(-1, 3)
    f["L_mean"], f["a_mean"], f["b_mean"] = (float(v) for v in pix.mean(axis=0))
    f["L_std"], f["a_std"], f["b_std"] = (float(v) for v in pix.std(axis=0))
    f["L_p10"], f["L_p50"], f["L_p90"] = (float(v) for v in np.percentile(pix[:, 0], [10, 50, 90]))
    f["chroma"] = float(np.hypot(pix[:, 1], pix[:, 2]).mean())
    f["L_minus_skin"] = f["L_mean"] - float(skin_pix[:, 0].mean())
    f["chroma_minus_skin"] = f["chroma"] - float(np.hypot(skin_pix[:, 1], skin_pix[:, 2]).mean())
    f["hair_pixels_log"] = float(np.log1p(hard.sum()))
    rgb_core = rgb[core] if core.any() else rgb.reshape(-1, 3)
    colour_rgb = hair_colour(rgb_core, pix, skin_pix)

    # texture, read on log intensity: a gamma change is then a gain and a smooth light gradient or a
    # colour cast an added ramp or offset, which coherence, orientation and the contrast-normalised
    # energies below do not see (on plain grey values they flipped wavy/straight under relighting)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lg = log_intensity(grey)
    coh1, orient1, energy1 = _structure_tensor(lg, 1.5)
    coh2, _, _ = _structure_tensor(lg, 4.0)
    wgt = core.astype(np.float32)
    f["coherence_s1"] = _weighted_mean(coh1, wgt)
    f["coherence_s2"] = _weighted_mean(coh2, wgt)
    capw = np.zeros((h, w), np.float32)
    capw[int(max(0, cap[2])) : int(max(0, cap[3])), int(max(0, cap[0])) : int(min(w, cap[1]))] = 1.0
    f["coherence_cap"] = _weighted_mean(coh1, capw * wgt)
    ab = np.abs(orient1)
    strong = wgt * coh1
    f["orient_vertical"] = _weighted_mean((ab < np.pi / 8).astype(np.float32), strong)
    f["orient_horizontal"] = _weighted_mean((ab > 3 * np.pi / 8).astype(np.float32), strong)
    f["orient_diagonal"] = 1.0 - f["orient_vertical"] - f["orient_horizontal"]
    hist = np.array(
        [f["orient_vertical"], f["orient_diagonal"] / 2, f["orient_diagonal"] / 2, f["orient_horizontal"]]
    )
    hist = np.clip(hist, 1e-6, None)
    hist /= hist.sum()
    f["orient_entropy"] = float(-(hist * np.log(hist)).sum())
    contrast = float(lg[core].std()) + 1e-3 if core.any() else 1.0
    lap = cv2.Laplacian(lg, cv2.CV_32F, ksize=3)
    f["lap_energy"] = _weighted_mean(np.abs(lap), wgt) / contrast
    f["grad_energy"] = _weighted_mean(np.sqrt(energy1), wgt) / contrast
    fine = _gabor_energy(lg, 3.0)
    coarse = _gabor_energy(lg, 7.0)
    fine_total = np.maximum(fine.sum(axis=0), 1e-6)
    f["gabor_fine_coarse"] = _weighted_mean(fine_total, wgt) / (
        _weighted_mean(coarse.sum(axis=0), wgt) + 1e-6
    )
    f["gabor_anisotropy"] = _weighted_mean(fine.max(axis=0) / fine_total, wgt)
    blobs = (lg < cv2.GaussianBlur(lg, (0, 0), 3.0) - 0.25 * contrast) & core
    f["dark_blob_density"] = float(blobs.sum()) / (float(core.sum()) + 1.0)

    # silhouette (upper outline) irregularity, strands pointing up in the cap
    f["silhouette_irregularity"] = _outline_irregularity(hard, cx, eye_y, fw)
    f["upward_strands"] = _weighted_mean((ab < np.pi / 10).astype(np.float32), capw * strong)

    # parting cues
    above = (cx - 0.8 * fw, cx + 0.8 * fw, top - 0.35 * fh, brow_y)
    lmass = _box_mean(hf, above[0], cx, above[2], above[3])
    rmass = _box_mean(hf, cx, above[1], above[2], above[3])
    f["asym_mass"] = (lmass - rmass) / (lmass + rmass + 1e-3)
    band = np.zeros((h, w), np.float32)
    band[int(max(0, top - 0.3 * fh)) : int(max(0, top + 0.1 * fh)), :] = 1.0
    lw = band * wgt * coh1 * (xs_grid(h, w) < cx)
    rw = band * wgt * coh1 * (xs_grid(h, w) >= cx)
    f["asym_orient"] = _weighted_mean(orient1, lw) - _weighted_mean(orient1, rw)
    notch_x, notch_strength = _parting_notch(hard, grey, cx, top, fw, fh)
    f["notch_x"] = notch_x
    f["notch_strength"] = notch_strength
    if len(ys):
        top_rows = ys <= ys.min() + 0.05 * fh
        f["top_x"] = (float(xs[top_rows].mean()) - cx) / fw
    else:
        f["top_x"] = 0.0

    hat_score = _hat_score(lab, hard, person, cx, top, fw, fh, f, grey=grey)
    vector = np.array([f[n] for n in FEATURE_NAMES], np.float32)
    vector = np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)
    return HairMeasurements(
        vector=vector,
        colour_rgb=colour_rgb,  # type: ignore[arg-type]
        hair_fraction_cap=f["cap_cover"],
        fringe_coverage=f["fringe_cover"],
        silhouette_irregularity=f["silhouette_irregularity"],
        upward_strands=f["upward_strands"],
        coherence=f["coherence_s1"],
        hat_score=hat_score,
        cap_skin=f["cap_skin"],
        hairline=forehead_hairline(hf, cx, fw, top, chin_y, brow_y),
    )


def forehead_hairline(
    hair: np.ndarray, cx: float, fw: float, top: float, chin_y: float, brow_y: float
) -> float | None:
    """Where the hair starts above the middle of the forehead: scanning up from above the brows,
    the first row in which most of a band of 0.4 face widths round the face's centre line is hair.
    Returns its height above landmark 10 (``top``) in units of the forehead-to-chin distance, or None
    when no such row lies within 0.6 of that distance above the forehead (a bald top)."""
    unit = max(chin_y - top, 1.0)
    h, w = hair.shape
    x0, x1 = int(max(round(cx - 0.2 * fw), 0)), int(min(round(cx + 0.2 * fw), w))
    y_start = int(min(round(brow_y - 0.08 * unit), h - 1))  # clear of the eyebrows
    y_stop = int(max(round(top - 0.6 * unit), 0))
    if x1 - x0 < 2 or y_start <= y_stop:
        return None
    band = hair[y_stop : y_start + 1, x0:x1].mean(axis=1)[::-1]  # from the brows upward
    rows = np.flatnonzero(band > 0.5)
    if not len(rows):
        return None
    y = y_start - int(rows[0])
    return float((top - y) / unit)


def xs_grid(h: int, w: int) -> np.ndarray:
    """(h, w) float32 x coordinate of every pixel."""
    return np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))


def _gabor_energy(grey: np.ndarray, wavelength: float) -> np.ndarray:
    """Gabor magnitude at 4 orientations. Returns (4, h, w) float32."""
    out = []
    for theta in (0, np.pi / 4, np.pi / 2, 3 * np.pi / 4):
        ksize = int(2 * round(wavelength) + 1)
        kr = cv2.getGaborKernel((ksize, ksize), wavelength * 0.5, theta, wavelength, 0.5, 0)
        ki = cv2.getGaborKernel((ksize, ksize), wavelength * 0.5, theta, wavelength, 0.5, np.pi / 2)
        kr -= kr.mean()
        re = cv2.filter2D(grey, cv2.CV_32F, kr)
        im = cv2.filter2D(grey, cv2.CV_32F, ki)
        out.append(np.sqrt(re * re + im * im))
    return np.stack(out)


def _outline_irregularity(hard: np.ndarray, cx: float, cy: float, fw: float) -> float:
    """Roughness of the upper hair outline: mean |r - smooth(r)| / fw over angles above the eyes.

    r(theta) is the farthest hair pixel from (cx, cy) along each of 90 rays in the upper half-plane.
    """
    if hard.sum() < 20:
        return 0.0
    ys, xs = np.nonzero(hard)
    dx, dy = xs - cx, cy - ys
    up = dy > 0
    if up.sum() < 20:
        return 0.0
    theta = np.arctan2(dy[up], dx[up])
    r = np.hypot(dx[up], dy[up])
    bins = np.clip((theta / np.pi * 90).astype(int), 0, 89)
    rmax = np.zeros(90)
    np.maximum.at(rmax, bins, r)
    valid = rmax > 0
    if valid.sum() < 20:
        return 0.0
    rv = np.interp(np.arange(90), np.nonzero(valid)[0], rmax[valid])
    smooth = np.convolve(np.pad(rv, 4, mode="edge"), np.ones(9) / 9, mode="valid")
    return float(np.abs(rv - smooth).mean() / fw)


def _parting_notch(
    hard: np.ndarray, grey: np.ndarray, cx: float, top: float, fw: float, fh: float
) -> tuple[float, float]:
    """Where the hair's top band shows a bright line or a dip in the outline (a parting).

    Returns (x offset / fw in [-0.5, 0.5], strength >= 0).
    """
    h, w = hard.shape
    y0, y1 = int(max(0, top - 0.25 * fh)), int(max(1, top + 0.05 * fh))
    x0, x1 = int(max(0, cx - 0.45 * fw)), int(min(w, cx + 0.45 * fw))
    if y1 <= y0 + 2 or x1 <= x0 + 4:
        return 0.0, 0.0
    band = grey[y0:y1, x0:x1]
    hb = hard[y0:y1, x0:x1]
    col_hair = hb.mean(axis=0)
    counts = hb.sum(axis=0)
    sums = np.where(hb, band, 0.0).sum(axis=0)
    col_mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    fill = float(col_mean[counts > 0].mean()) if (counts > 0).any() else 0.0
    col_mean = np.nan_to_num(col_mean, nan=fill)
    smooth = np.convolve(np.pad(col_mean, 6, mode="edge"), np.ones(13) / 13, mode="valid")
    bright = col_mean - smooth
    holes = np.convolve(np.pad(col_hair, 6, mode="edge"), np.ones(13) / 13, mode="valid") - col_hair
    score = bright / (band.std() + 1.0) + 2.0 * holes
    i = int(np.argmax(score))
    return float((x0 + i - cx) / fw), float(max(score[i], 0.0))


def _hat_score(
    lab: np.ndarray,
    hard: np.ndarray,
    person: np.ndarray,
    cx: float,
    top: float,
    fw: float,
    fh: float,
    f: dict,
    grey: np.ndarray | None = None,
) -> float:
    """Evidence for headwear (no labels exist to learn it). Returns a score in [0, 1], the largest of:

    - colour: the covering above the forehead is much wider than a head and/or has a colour no hair
      has (saturated, or near-white and untextured);
    - brim (``_brim_score``): the covering splits into two sharply separated brightness layers, and one
      layer is a smooth, untextured band spanning far wider than the skull (a hat brim: measured 1.8 face
      widths on the shared hat photo; hair above the forehead, smooth and of one tone, at most 1.15).
    """
    y0, y1 = int(max(0, top - 0.35 * fh)), int(max(1, top - 0.05 * fh))
    rows = hard[y0:y1]
    if rows.size == 0 or rows.sum() < 10:
        return 0.0
    widths = rows.sum(axis=1) / fw
    wide = float(np.clip((np.percentile(widths, 80) - 1.35) / 0.4, 0.0, 1.0))
    pix = lab[y0:y1][rows]
    chroma = np.hypot(pix[:, 1], pix[:, 2])
    saturated = float(np.clip((np.median(chroma) - 35.0) / 15.0, 0.0, 1.0))
    whiteish = float(np.clip((np.median(pix[:, 0]) - 80.0) / 10.0, 0.0, 1.0)) * float(
        np.clip((0.35 - f["coherence_s1"]) / 0.15, 0.0, 1.0)
    )
    colour = float(np.clip(max(saturated, whiteish) * (0.6 + 0.4 * wide), 0.0, 1.0))
    brim = _brim_score(lab[..., 0], grey, hard, top, fw, fh) if grey is not None else 0.0
    return max(colour, brim)


def _brim_score(L: np.ndarray, grey: np.ndarray, hard: np.ndarray, top: float, fw: float, fh: float) -> float:
    """Hat-brim evidence in [0, 1] from the hair-mask region above the forehead (rows above ``top`` +
    0.05 fh).

    L, grey : (h, w) float32 Lab lightness (0..100) and grey (0..255) of the normalised crop.
    Two cues must agree (their ramps multiply): (1) separation of the two Otsu brightness layers of
    the region (mean difference / pooled within-layer std; hair: 2.0-4.1 over the 22 bare-headed shared
    portraits and 60 pool portraits; the hat photo 5.8, 4.7 under a strong brightness gradient), ramp
    3.8..4.4; (2) the smooth (5x5 local grey std < 6) pixels of one layer span more than the skull
    (2nd-98th percentile of x, in face widths; hair <= 1.15, the hat's brim 1.8), ramp 1.3..1.6.
    Neither cue alone is specific (bright smooth bald scalps, two-tone highlights); together they fired
    on none of the 22 bare-headed shared portraits nor 150 pool portraits, and on the hat photo and all
    four of its relit variants. Known limit: a hat without a brim in a colour layer of its own (a
    beanie of the hair's tone) is not detected.
    """
    y1 = int(np.clip(top + 0.05 * fh, 1, hard.shape[0]))
    region = hard.copy()
    region[y1:] = False
    if region.sum() < 50:
        return 0.0
    values = L[region]
    t8, _ = cv2.threshold(
        np.clip(values * 2.55, 0, 255).astype(np.uint8).reshape(-1, 1),
        0,
        255,
        cv2.THRESH_BINARY + cv2.THRESH_OTSU,
    )
    t = float(t8) / 2.55
    lo, hi = values[values < t], values[values >= t]
    if len(lo) < 20 or len(hi) < 20:
        return 0.0
    within = np.sqrt((lo.var() * len(lo) + hi.var() * len(hi)) / len(values)) + 1.0
    sep = float((hi.mean() - lo.mean()) / within)
    mean = cv2.blur(grey, (5, 5))
    local_std = np.sqrt(np.maximum(cv2.blur(grey * grey, (5, 5)) - mean * mean, 0.0))
    smooth = region & (local_std < 6.0)
    span = 0.0
    for layer in (L < t, L >= t):
        xs = np.nonzero(smooth & layer)[1]
        if len(xs) > 30:
            span = max(span, float(np.percentile(xs, 98) - np.percentile(xs, 2)) / fw)
    return float(np.clip((sep - 3.8) / 0.6, 0.0, 1.0) * np.clip((span - 1.3) / 0.3, 0.0, 1.0))
