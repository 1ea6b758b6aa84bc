"""Robustness of the reconstruction: does the same face give the same head and the same albedo
under other lighting and in other frames of a video?

Variants of a photo (:func:`relit_variants`): a directional shading gradient, gamma 0.6 and 1.6,
a warm colour cast. Frames of a talking-head video (:func:`video_frames`). Metrics between two
:class:`HeadModel` s of the same person:

- geometry: RMS distance of the neutral head's face vertices after a similarity alignment, as a
  fraction of the face width (distance of the cheek landmarks 234 and 454). Goal <= 1 %.
- albedo: mean CIEDE2000 colour difference over the face's UV island of the albedo texture.
  Goal <= 5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vrhub.evaluation.render import similarity_fit
from vrhub.pipeline.plugins import StageImpl
from vrhub.pipeline.run import call_stage
from vrhub.pipeline.types import FaceObservation, HeadModel, Photo

#: Cheek landmarks whose distance is the face width.
FACE_WIDTH_LANDMARKS = (234, 454)


def ciede2000(
    lab1: np.ndarray, lab2: np.ndarray, kl: float = 1.0, kc: float = 1.0, kh: float = 1.0
) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005), vectorised.

    lab1, lab2 : (..., 3) float64 CIELAB (L 0..100). Returns (...) float64.
    """
    lab1 = np.asarray(lab1, np.float64)
    lab2 = np.asarray(lab2, np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    c7 = c_bar**7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, h1p)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, h2p)
    cc = c1p * c2p
    dl = l2 - l1
    dc = c2p - c1p
    # Hue differences of exactly 180 degrees (Sharma's pairs 13-16) sit on the formula's branch
    # points; arctan2's last bit differs between CPUs (numpy's SIMD paths), so compare with a
    # tolerance and take the branch exact arithmetic takes.
    eps = 1e-9
    dh = h2p - h1p
    dh = np.where(dh > 180 + eps, dh - 360, np.where(dh < -180 - eps, dh + 360, dh))
    dh = np.where(cc == 0, 0.0, dh)
    dhh = 2 * np.sqrt(cc) * np.sin(np.radians(dh) / 2)
    lbar = (l1 + l2) / 2
    cbarp = (c1p + c2p) / 2
    hsum = h1p + h2p
    hbar = np.where(
        np.abs(h1p - h2p) <= 180 + eps, hsum / 2, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2)
    )
    hbar = np.where(cc == 0, hsum, hbar)
    t = (
        1
        - 0.17 * np.cos(np.radians(hbar - 30))
        + 0.24 * np.cos(np.radians(2 * hbar))
        + 0.32 * np.cos(np.radians(3 * hbar + 6))
        - 0.20 * np.cos(np.radians(4 * hbar - 63))
    )
    dtheta = 30 * np.exp(-(((hbar - 275) / 25) ** 2))
    cb7 = cbarp**7
    rc = 2 * np.sqrt(cb7 / (cb7 + 25.0**7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc = 1 + 0.045 * cbarp
    sh = 1 + 0.015 * cbarp * t
    rt = -np.sin(np.radians(2 * dtheta)) * rc
    tl, tc, th = dl / (kl * sl), dc / (kc * sc), dhh / (kh * sh)
    return np.sqrt(np.maximum(tl**2 + tc**2 + th**2 + rt * tc * th, 0.0))


#: sRGB (D65) to CIE XYZ and the D65 white point, as OpenCV's RGB2Lab uses them.
_SRGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_D65 = np.array([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) -> CIELAB (..., 3) float64 (D65; OpenCV's constants, in numpy).

    Each distinct colour is converted once and looked up. The conversion is plain numpy rather
    than ``cv2.cvtColor``: OpenCV's parallel, vectorised conversion can round the same colour
    differently from one call to the next (where a thread's block and its SIMD tail fall), so two
    identical textures measured a ΔE of 2e-15 instead of 0, now and then."""
    flat = np.asarray(rgb, np.uint8).reshape(-1, 3)
    key = (flat[:, 0].astype(np.int32) << 16) | (flat[:, 1].astype(np.int32) << 8) | flat[:, 2]
    colours, index = np.unique(key, return_inverse=True)
    c = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], 1) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    y = xyz[:, 1]
    lab = np.stack(
        [
            np.where(y > 0.008856, 116.0 * f[:, 1] - 16.0, 903.3 * y),
            500.0 * (f[:, 0] - f[:, 1]),
            200.0 * (f[:, 1] - f[:, 2]),
        ],
        1,
    )
    return lab[index.reshape(-1)].reshape(np.shape(rgb))


# --- photo variants ---------------------------------------------------------------------------


def shading_gradient(
    rgb: np.ndarray, low: float = 0.55, high: float = 1.15, angle_deg: float = 20.0
) -> np.ndarray:
    """A directional light falloff: brightness scaled linearly from ``low`` to ``high`` across the
    image along ``angle_deg`` (0 = left to right). rgb (h, w, 3) uint8 -> same."""
    h, w = rgb.shape[:2]
    a = np.radians(angle_deg)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = xx * np.cos(a) + yy * np.sin(a)
    ramp = low + (high - low) * (d - d.min()) / max(float(d.max() - d.min()), 1e-6)
    return np.clip(rgb.astype(np.float32) * ramp[:, :, None] + 0.5, 0, 255).astype(np.uint8)


def gamma(rgb: np.ndarray, g: float) -> np.ndarray:
    """Each channel v -> 255 (v / 255) ** g (g < 1 brightens, g > 1 darkens)."""
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g + 0.5, 0, 255).astype(np.uint8)
    return lut[rgb]


def colour_cast(rgb: np.ndarray, gains: tuple[float, float, float] = (1.15, 1.0, 0.82)) -> np.ndarray:
    """Per-channel gains (a warm, tungsten-like cast by default)."""
    return np.clip(rgb.astype(np.float32) * np.array(gains, np.float32) + 0.5, 0, 255).astype(np.uint8)


def relit_variants(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """The synthetic relighting set of issue 7, name -> (h, w, 3) uint8."""
    return {
        "shading gradient": shading_gradient(rgb),
        "gamma 0.6": gamma(rgb, 0.6),
        "gamma 1.6": gamma(rgb, 1.6),
        "colour cast": colour_cast(rgb),
    }


def video_frames(path: Path, indices: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Frames (RGB uint8) of a video at ``indices`` (decoded with OpenCV's FFmpeg backend);
    indices past the end are skipped."""
    cap = cv2.VideoCapture(str(path))
    out: dict[int, np.ndarray] = {}
    try:
        wanted = set(indices)
        k = 0
        while wanted and k <= max(indices):
            ok, frame = cap.read()
            if not ok:
                break
            if k in wanted:
                out[k] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                wanted.discard(k)
            k += 1
    finally:
        cap.release()
    return out


# --- building and comparing heads -------------------------------------------------------------


def build_head(photo: Photo, stages: Mapping[str, StageImpl]) -> tuple[FaceObservation, HeadModel]:
    """detect -> segment -> reconstruct with the chosen stages (hair and rig are not needed here)."""
    face = call_stage(stages["detect"], photo)
    seg = call_stage(stages["segment"], photo, face)
    return face, call_stage(stages["reconstruct"], photo, face, seg)


def geometry_difference(reference: HeadModel, other: HeadModel) -> float:
    """RMS distance of the face vertices of ``other`` (similarity-aligned onto ``reference``) as a
    fraction of the reference's face width."""
    idx = np.asarray(reference.regions.get("face", np.arange(468)), np.int64)
    a = np.asarray(reference.vertices, np.float64)[idx]
    b = np.asarray(other.vertices, np.float64)[idx]
    s, rot, t = similarity_fit(b, a)
    aligned = s * b @ rot.T + t
    rms = float(np.sqrt(((aligned - a) ** 2).sum(1).mean()))
    lv = np.asarray(reference.landmark_vertices, np.int64)
    v = np.asarray(reference.vertices, np.float64)
    width = float(np.linalg.norm(v[lv[FACE_WIDTH_LANDMARKS[0]]] - v[lv[FACE_WIDTH_LANDMARKS[1]]]))
    return rms / max(width, 1e-12)


def face_uv_mask(head: HeadModel, size: int) -> np.ndarray:
    """(size, size) bool: texels inside the UV triangles of the face region (all corners in it)."""
    face = np.zeros(len(head.vertices), bool)
    face[np.asarray(head.regions.get("face", np.arange(468)), np.int64)] = True
    tris = np.asarray(head.triangles, np.int64)
    tris = tris[face[tris].all(1)]
    uv = np.asarray(head.uvs, np.float64)[tris] * size  # (m, 3, 2) texel coordinates
    mask = np.zeros((size, size), np.uint8)
    pts = np.round(uv * 16).astype(np.int32)  # 4 bits of sub-pixel precision
    for tri in pts:
        cv2.fillConvexPoly(mask, tri, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def albedo_difference(reference: HeadModel, other: HeadModel) -> float:
    """Mean CIEDE2000 between the two albedo textures over the reference's face UV island."""
    a = reference.albedo
    b = other.albedo
    if b.shape != a.shape:
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    mask = face_uv_mask(reference, a.shape[0])
    return float(ciede2000(rgb_to_lab(a[mask]), rgb_to_lab(b[mask])).mean())


@dataclass(frozen=True)
class RobustnessRow:
    """One comparison: ``variant`` of ``source`` against the reference build of ``source``.
    geometry : fraction of face width (nan if no face); albedo_de : mean ΔE2000; note : why nan."""

    source: str
    variant: str
    geometry: float
    albedo_de: float
    note: str = ""


def compare(
    source: str, variant: str, reference: HeadModel, other: HeadModel | None, note: str = ""
) -> RobustnessRow:
    if other is None:
        return RobustnessRow(source, variant, float("nan"), float("nan"), note or "no face found")
    return RobustnessRow(
        source, variant, geometry_difference(reference, other), albedo_difference(reference, other), note
    )


def photo_robustness(
    name: str, rgb: np.ndarray, stages: Mapping[str, StageImpl], reference: HeadModel | None = None
) -> list[RobustnessRow]:
    """The noise floor (the same photo built again) and every relit variant, against the photo."""
    from vrhub.pipeline.run import PipelineError

    if reference is None:
        reference = build_head(Photo(rgb, name), stages)[1]
    rows = [
        compare(
            name, "same photo again (noise floor)", reference, build_head(Photo(rgb.copy(), name), stages)[1]
        )
    ]
    for variant, img in relit_variants(rgb).items():
        try:
            other = build_head(Photo(img, name), stages)[1]
        except PipelineError as exc:
            rows.append(compare(name, variant, reference, None, str(exc)))
            continue
        rows.append(compare(name, variant, reference, other))
    return rows


def video_robustness(
    path: Path, stages: Mapping[str, StageImpl], indices: tuple[int, ...] = (0, 20, 40, 60)
) -> list[RobustnessRow]:
    """Heads from later frames of a talking-head video against the head from its first frame."""
    from vrhub.pipeline.run import PipelineError

    frames = video_frames(path, indices)
    if not frames:
        return [RobustnessRow(path.name, "frames", float("nan"), float("nan"), "could not decode the video")]
    first, *rest = sorted(frames)
    reference = build_head(Photo(frames[first], path.name), stages)[1]
    rows = []
    for k in rest:
        try:
            other = build_head(Photo(frames[k], path.name), stages)[1]
        except PipelineError as exc:
            rows.append(compare(path.name, f"frame {k} vs {first}", reference, None, str(exc)))
            continue
        rows.append(compare(path.name, f"frame {k} vs {first}", reference, other))
    return rows


def same_speaker_robustness(
    first: Path, second: Path, stages: Mapping[str, StageImpl], indices: tuple[int, ...] = (0, 40)
) -> list[RobustnessRow]:
    """Heads from frames of ``second`` against the head from the first frame of ``first``: two
    recordings of the same person (another session, other words, other framing)."""
    from vrhub.pipeline.run import PipelineError

    a = video_frames(first, indices[:1])
    b = video_frames(second, indices)
    if not a or not b:
        return [
            RobustnessRow(
                f"{first.name} / {second.name}", "other video", float("nan"), float("nan"), "could not decode"
            )
        ]
    reference = build_head(Photo(next(iter(a.values())), first.name), stages)[1]
    rows = []
    for k in sorted(b):
        label = f"other video, same speaker: {second.name} frame {k}"
        try:
            other = build_head(Photo(b[k], second.name), stages)[1]
        except PipelineError as exc:
            rows.append(compare(first.name, label, reference, None, str(exc)))
            continue
        rows.append(compare(first.name, label, reference, other))
    return rows


def stranger_baseline(names: list[str], heads: list[HeadModel]) -> list[RobustnessRow]:
    """The scale of the metrics between different people: for every head, the smallest geometry
    difference and the smallest albedo ΔE2000 to any other head (each may be a different person)."""
    if len(heads) < 2:
        return []
    mask = face_uv_mask(heads[0], heads[0].albedo.shape[0])
    size = heads[0].albedo.shape[:2]
    labs = []
    for h in heads:
        tex = (
            h.albedo
            if h.albedo.shape[:2] == size
            else cv2.resize(h.albedo, size[::-1], interpolation=cv2.INTER_AREA)
        )
        labs.append(rgb_to_lab(tex[mask]))
    rows = []
    for i, head in enumerate(heads):
        others = [j for j in range(len(heads)) if j != i]
        geo = {j: geometry_difference(head, heads[j]) for j in others}
        de = {j: float(ciede2000(labs[i], labs[j]).mean()) for j in others}
        jg, jd = min(geo, key=geo.get), min(de, key=de.get)
        rows.append(
            RobustnessRow(
                names[i],
                "different person (nearest other photo; baseline)",
                geo[jg],
                de[jd],
                f"nearest: {names[jg]} (geometry), {names[jd]} (albedo)",
            )
        )
    return rows
