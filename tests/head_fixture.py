"""A contract-following HeadModel for rig/export tests, built from mediapipe's canonical face.

vertices[0:468] are the canonical landmarks (metres), plus simple eyeballs, teeth, tongue, a
mouth cavity and a neck tube, each in its region; one albedo texture. It is a test input for the
rig and the exporter (which must work for any head that follows the contract), not the product's
head template (vrhub/stages/landmark_head.py builds that).
"""

from __future__ import annotations

import numpy as np

from vrhub.geometry.canonical_face import load_canonical_face
from vrhub.pipeline.types import HairModel, HeadModel


def _sphere(centre: np.ndarray, radius: np.ndarray, rings: int = 8, segments: int = 14):
    th = np.linspace(0, np.pi, rings + 1)
    ph = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(th, ph, indexing="ij")
    # pole along +Z so the front of an eyeball is a pole
    pts = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    v = centre + pts * radius
    tris = []
    for i in range(rings):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            c, d = a + segments, b + segments
            tris += [(a, b, d), (a, d, c)]
    tris = np.array(tris)
    ok = (
        (v[tris[:, 0]] != v[tris[:, 1]]).any(1)
        & (v[tris[:, 1]] != v[tris[:, 2]]).any(1)
        & (v[tris[:, 0]] != v[tris[:, 2]]).any(1)
    )
    tris = tris[ok]
    # outward winding
    n = np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]])
    out = ((v[tris].mean(1) - centre) * n).sum(1) < 0
    tris[out] = tris[out][:, ::-1]
    return v, tris, t.reshape(-1)


def make_head(landmarks_m: np.ndarray | None = None, texture: int = 256) -> HeadModel:
    """A head whose first 468 vertices are ``landmarks_m`` ((468, 3) metres; default canonical)."""
    face = load_canonical_face()
    lm = face.vertices * 0.01 if landmarks_m is None else np.asarray(landmarks_m, np.float64)
    # origin between the ears at eye height
    lm = lm - np.array(
        [0.5 * (lm[234, 0] + lm[454, 0]), lm[[33, 263], 1].mean(), 0.5 * (lm[234, 2] + lm[454, 2])]
    )
    cm = np.linalg.norm(lm[263] - lm[33]) / 8.89
    verts = [lm]
    from vrhub.geometry.canonical_face import EYE_RING_L, EYE_RING_R, MOUTH_RING

    ft = np.asarray(face.triangles)
    holes = np.zeros(len(ft), bool)
    for ring in (MOUTH_RING, EYE_RING_L, EYE_RING_R):
        holes |= np.isin(ft, ring).all(1)
    tris = [ft[~holes]]  # open the eyes and the mouth
    uvs = [np.asarray(face.uvs)]
    regions = {"face": np.arange(468)}
    count = 468

    def add(name, v, t, uv=(0.97, 0.97)):
        nonlocal count
        verts.append(v)
        tris.append(t + count)
        uvs.append(np.tile(np.array(uv), (len(v), 1)) if np.ndim(uv) == 1 else uv)
        regions[name] = np.arange(count, count + len(v))
        count += len(v)

    for side, ring in (("L", [263, 362, 386, 374]), ("R", [33, 133, 159, 145])):
        c = lm[ring].mean(0) - np.array([0, 0, 1.1 * cm])
        v, t, theta = _sphere(c, np.full(3, 1.15 * cm))
        # iris: dark UV near the front pole
        uv = np.where((theta < 0.45)[:, None], np.array([0.99, 0.01]), np.array([0.985, 0.5]))
        add(f"eyeball_{side}", v, t, uv)
    mouth = lm[[13, 14]].mean(0)
    half = 0.45 * np.linalg.norm(lm[291] - lm[61])
    for name, dy in (("teeth_upper", 0.25), ("teeth_lower", -0.45)):
        c = mouth + np.array([0, dy * cm, -1.6 * cm])
        v, t, _ = _sphere(c, np.array([half, 0.35 * cm, 1.1 * cm]), 4, 10)
        add(name, v, t, (0.985, 0.97))
    v, t, _ = _sphere(
        mouth + np.array([0, -0.6 * cm, -2.4 * cm]), np.array([0.8 * half, 0.35 * cm, 1.8 * cm]), 4, 10
    )
    add("tongue", v, t, (0.9, 0.97))
    v, t, _ = _sphere(
        mouth + np.array([0, -0.2 * cm, -2.8 * cm]), np.array([1.1 * half, 1.2 * cm, 2.2 * cm]), 5, 12
    )
    add("mouth_cavity", v, t[:, ::-1], (0.95, 0.97))
    # neck tube under the chin
    ring = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ys = lm[152, 1] + np.array([-9.0, -5.0, -1.5]) * cm
    nv = np.concatenate(
        [
            np.stack([5.2 * cm * np.cos(ring), np.full(16, y), -1.0 * cm + 5.0 * cm * np.sin(ring)], 1)
            for y in ys
        ]
    )
    nt = []
    for r in range(2):
        for j in range(16):
            a, b = r * 16 + j, r * 16 + (j + 1) % 16
            nt += [(a, b + 16, b), (a, a + 16, b + 16)]
    add("neck", nv, np.array(nt), (0.5, 0.98))
    for name in ("scalp", "ear_L", "ear_R"):
        regions[name] = np.zeros(0, np.int64)

    rng = np.random.default_rng(0)
    albedo = np.empty((texture, texture, 3), np.uint8)
    albedo[:] = (205, 160, 135)
    albedo += rng.integers(0, 8, albedo.shape, dtype=np.uint8)
    # lips darker, irises blue, teeth white: paint the texels under those UVs
    lip_uv = (np.asarray(face.uvs)[[0, 17, 61, 291]] * texture).astype(int)
    x0, y0 = lip_uv[:, 0].min(), lip_uv[:, 1].min()
    x1, y1 = lip_uv[:, 0].max(), lip_uv[:, 1].max()
    albedo[y0:y1, x0:x1] = (170, 80, 80)
    albedo[-8:, -16:] = (240, 240, 235)
    albedo[:8, -8:] = (40, 70, 140)
    return HeadModel(
        vertices=np.concatenate(verts).astype(np.float32),
        triangles=np.concatenate(tris).astype(np.uint32),
        uvs=np.concatenate(uvs).astype(np.float32),
        albedo=albedo,
        landmark_vertices=np.arange(468),
        regions={k: np.asarray(v, np.int64) for k, v in regions.items()},
        quality={"source": "canonical test head"},
    )


def make_hair(head: HeadModel) -> HairModel:
    """A cap of alpha-textured quads over the top of the head (for exporter tests)."""
    lm = head.vertices[:468].astype(np.float64)
    top = lm[10]
    c = np.array([0.0, top[1] - 0.06, top[2] - 0.07])
    v, t, _ = _sphere(c, np.array([0.085, 0.075, 0.10]), 6, 16)
    keep = v[:, 1] > c[1] - 0.005
    idx = np.full(len(v), -1)
    idx[keep] = np.arange(keep.sum())
    t = t[keep[t].all(1)]
    v = v[keep]
    uv = np.stack(
        [(np.arctan2(v[:, 0] - c[0], v[:, 2] - c[2]) / (2 * np.pi)) % 1.0, (c[1] + 0.08 - v[:, 1]) / 0.1], 1
    )
    tex = np.zeros((64, 64, 4), np.uint8)
    tex[..., :3] = (70, 50, 35)
    tex[..., 3] = np.where((np.arange(64)[None, :] % 4) < 3, 255, 0)
    return HairModel(
        v.astype(np.float32), idx[t].astype(np.uint32), uv.astype(np.float32), tex, style="test_cap"
    )


SHARED = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared"
FACES = SHARED / "data" / "faces"


def landmarks_from_photo(path) -> np.ndarray:
    """(468, 3) metres in the head frame from a real photo: mediapipe landmarks, pose removed."""
    from vrhub.photo_io import decode_photo
    from vrhub.stages.mediapipe_detect import detect_face, head_pose

    photo = decode_photo(__import__("pathlib").Path(path).read_bytes())
    face = detect_face(photo)
    rot, scale, t = head_pose(face.landmarks)
    cam = face.landmarks[:468] * np.array([1.0, -1.0, -1.0])
    return ((cam - t) @ rot) / scale * 0.01


@__import__("functools").lru_cache(maxsize=32)
def pipeline_head(photo_name: str) -> tuple[HeadModel, HairModel]:
    """The real pipeline's head (detect -> segment -> reconstruct with the builtin stages) and hair
    (the procedural hair stages when they work, else the test hair cap) for a photo in faces/."""
    from vrhub.photo_io import decode_photo
    from vrhub.stages.landmark_head import reconstruct_head
    from vrhub.stages.landmark_segment import register_stages as _seg
    from vrhub.stages.mediapipe_detect import detect_face

    found = {}
    _seg(lambda slot, name, fn, **kw: found.setdefault(slot, fn))
    photo = decode_photo((FACES / photo_name).read_bytes(), name=photo_name)
    face = detect_face(photo)
    seg = found["segment"](photo, face)
    head = reconstruct_head(photo, face, seg)
    try:
        from vrhub.stages.onnx_hair_attributes import onnx_hair_attributes
        from vrhub.stages.procedural_hair import procedural_hair

        return head, procedural_hair(onnx_hair_attributes(photo, face, seg), head)
    except Exception:  # noqa: BLE001 - the hair stages are another area's; these tests need any hair
        return head, make_hair(head)


def face_photos() -> list[str]:
    """Names of the shared test photos (empty when ../shared is absent)."""
    if not FACES.exists():
        return []
    return sorted(p.name for p in FACES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
