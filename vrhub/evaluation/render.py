"""Software renderer for avatars: textured, z-buffered, orthographic (weak-perspective) views.

Renders the head (and its alpha-masked hair) of an avatar into an RGB image, either in the pose
of the photo it was built from (the camera is fitted to the photo's landmarks) or from a chosen
yaw for contact sheets. Pure numpy + OpenCV, no GPU, deterministic: every triangle's pixel
candidates are enumerated at once, the nearest candidate per pixel wins (``np.maximum.at`` on a
depth buffer), then UVs and normals are interpolated per pixel and the texture is sampled
bilinearly (``cv2.remap``). Rendering at ``supersample`` times the size and area-downsampling
gives anti-aliased edges.

Camera convention (as :func:`vrhub.stages.mediapipe_detect.head_pose`): the camera frame is
x right, y up, z toward the viewer; ``p = scale * R @ v + t``; pixel = (p.x, -p.y), depth p.z
(larger is nearer). A photo's landmarks (x, y down, z smaller nearer) are (x, -y, -z) there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from vrhub.pipeline.types import FaceObservation, RiggedAvatar

#: Background of renders (RGB): neutral grey, like a studio backdrop.
BACKGROUND = (128, 128, 128)
#: Light direction in the camera frame (from above the camera, slightly to the viewer's left).
LIGHT = np.array([-0.25, 0.35, 1.0]) / np.linalg.norm([-0.25, 0.35, 1.0])
AMBIENT = 0.62
DIFFUSE = 0.45


@dataclass(frozen=True)
class MeshLayer:
    """One textured mesh to draw.

    vertices : (n, 3) float64 metres (head frame); triangles : (m, 3) int64;
    uvs : (n, 2) float64 glTF convention (origin top-left); texture : (h, w, 3 or 4) uint8.
    alpha_cutoff : pixels whose texture alpha (0..1) is under it are not drawn (None: opaque).
    cull_back : skip triangles facing away (closed meshes); False for double-sided cards.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray
    texture: np.ndarray
    alpha_cutoff: float | None = None
    cull_back: bool = True
    name: str = "mesh"


@dataclass(frozen=True)
class Camera:
    """Orthographic camera: ``p = scale * rotation @ v + translation`` (camera frame, y up).

    rotation : (3, 3) float64; scale : pixels per metre; translation : (3,) float64 pixels.
    """

    rotation: np.ndarray
    scale: float
    translation: np.ndarray

    def project(self, vertices: np.ndarray) -> np.ndarray:
        """(n, 3) metres -> (n, 3) float64: pixel x, pixel y (down), depth (larger nearer)."""
        p = self.scale * np.asarray(vertices, np.float64) @ self.rotation.T + self.translation
        return np.stack([p[:, 0], -p[:, 1], p[:, 2]], 1)


@dataclass(frozen=True)
class Rendering:
    """image : (h, w, 3) uint8 RGB; coverage : (h, w) float32 0..1 (any layer drawn);
    layer_ids : (h, w) int8 index of the layer seen at each pixel (-1 background), at final size."""

    image: np.ndarray
    coverage: np.ndarray
    layer_ids: np.ndarray


def avatar_layers(avatar: RiggedAvatar, expression: np.ndarray | None = None) -> list[MeshLayer]:
    """Head (with ``expression`` (52,) ARKit weights applied through the rig's blendshapes, or
    neutral) and hair as render layers."""
    head = avatar.head
    v = np.asarray(head.vertices, np.float64)
    if expression is not None and len(avatar.blendshape_deltas):
        w = np.asarray(expression, np.float64)
        k = min(len(w), len(avatar.blendshape_deltas))
        v = v + np.tensordot(w[:k], avatar.blendshape_deltas[:k].astype(np.float64), axes=1)
    layers = [
        MeshLayer(
            v,
            np.asarray(head.triangles, np.int64),
            np.asarray(head.uvs, np.float64),
            head.albedo,
            name="head",
        )
    ]
    hair = avatar.hair
    if not hair.is_empty:
        layers.append(
            MeshLayer(
                np.asarray(hair.vertices, np.float64),
                np.asarray(hair.triangles, np.int64),
                np.asarray(hair.uvs, np.float64),
                hair.texture,
                alpha_cutoff=float(hair.alpha_cutoff) if hair.alpha_mode == "MASK" else 0.5,
                cull_back=False,
                name="hair",
            )
        )
    return layers


def glb_layers(data: bytes) -> list[MeshLayer]:
    """Head and hair layers from GLB bytes (rest pose, no expression), via the contact-sheet reader."""
    from vrhub.export.contact_sheet import read_glb_head

    head = read_glb_head(data, "head")
    layers = [MeshLayer(head.vertices, head.triangles, head.uvs, head.texture, name="head")]
    try:
        hair = read_glb_head(data, "hair")
    except StopIteration:
        return layers
    if hair.vertices.shape != head.vertices.shape or not np.array_equal(hair.vertices, head.vertices):
        texture = _glb_rgba_texture(data, "hair")
        layers.append(
            MeshLayer(
                hair.vertices,
                hair.triangles,
                hair.uvs,
                texture,
                alpha_cutoff=0.5,
                cull_back=False,
                name="hair",
            )
        )
    return layers


def _glb_rgba_texture(data: bytes, mesh_name: str) -> np.ndarray:
    """The base-colour texture of mesh ``mesh_name`` as (h, w, 4) uint8 (alpha kept)."""
    import pygltflib

    glb = pygltflib.GLTF2.load_from_bytes(data)
    mesh = next(m for m in glb.meshes if m.name == mesh_name)
    mat = glb.materials[mesh.primitives[0].material]
    tex = glb.textures[mat.pbrMetallicRoughness.baseColorTexture.index]
    view = glb.bufferViews[glb.images[tex.source].bufferView]
    blob = glb.binary_blob()
    raw = blob[view.byteOffset or 0 : (view.byteOffset or 0) + view.byteLength]
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGBA"))


def similarity_fit(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted least-squares similarity (Umeyama): ``s * R @ src_i + t ~= dst_i``.

    src, dst : (k, d) float64 with d = 2 or 3; weights : (k,) or None. Returns s, R (d, d), t (d,).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    ms, md = w @ src, w @ dst
    a = (src - ms) * np.sqrt(w)[:, None]
    b = (dst - md) * np.sqrt(w)[:, None]
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.ones(src.shape[1])
    d[-1] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = (u * d) @ vt
    scale = float((sv * d).sum() / max((a**2).sum(), 1e-300))
    return scale, rot, md - scale * rot @ ms


def photo_camera(face: FaceObservation, head_vertices: np.ndarray) -> Camera:
    """The camera that puts the avatar's face where the photo's face is.

    A weighted similarity fit (mediapipe's Procrustes landmark weights) of the head's 468 face
    vertices (metres) to the photo's landmarks in the camera frame (x, -y, -z): rotation, scale
    and translation of a weak-perspective camera. head_vertices : (n >= 468, 3).
    """
    from vrhub.geometry.canonical_face import load_canonical_face

    dst = np.asarray(face.landmarks, np.float64)[:468] * np.array([1.0, -1.0, -1.0])
    weights = np.asarray(load_canonical_face().procrustes_weights, np.float64) + 1e-3
    s, rot, t = similarity_fit(np.asarray(head_vertices, np.float64)[:468], dst, weights)
    return Camera(rot, s, t)


def view_camera(
    layers: list[MeshLayer],
    size: tuple[int, int],
    yaw_deg: float,
    pitch_deg: float = 0.0,
    margin: float = 0.06,
) -> Camera:
    """A camera showing the avatar turned by ``yaw_deg`` and ``pitch_deg``, framed to fill
    ``size`` = (width, height) with the whole head and hair.

    Signs as :attr:`FaceObservation.yaw_pitch_roll`: yaw > 0 turns the head to its own left (nose
    toward image right, so 90 shows the right cheek in profile); pitch > 0 looks up.
    """
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rot = rx @ ry
    pts = np.concatenate([lay.vertices for lay in layers]) @ rot.T
    lo, hi = pts.min(0), pts.max(0)
    w, h = size
    scale = min(w / (hi[0] - lo[0]), h / (hi[1] - lo[1])) * (1 - 2 * margin)
    centre = (lo + hi) / 2
    t = np.array([w / 2 - scale * centre[0], -h / 2 - scale * centre[1], -scale * centre[2]])
    return Camera(rot, float(scale), t)


def _vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(n, 3) unit area-weighted vertex normals."""
    p = vertices[triangles]
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, triangles[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _sample(
    texture: np.ndarray, u: np.ndarray, v: np.ndarray, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """Texture values at glTF coordinates u, v (k,) -> (k, channels) float32 (edges clamped)."""
    th, tw = texture.shape[:2]
    k = len(u)
    rows = -(-k // 1024) or 1  # remap maps must stay under 32767 on each side
    mx = np.zeros(rows * 1024, np.float32)
    my = np.zeros(rows * 1024, np.float32)
    mx[:k] = u * tw - 0.5
    my[:k] = v * th - 0.5
    out = cv2.remap(
        texture,
        mx.reshape(rows, 1024),
        my.reshape(rows, 1024),
        interpolation,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out.reshape(rows * 1024, -1)[:k].astype(np.float32)


def _planes(x: np.ndarray, y: np.ndarray, area: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-triangle affine functions of the pixel centre that interpolate corner ``values``.

    x, y : (m, 3) screen corners; area : (m,) signed doubled area; values : (m, 3, q).
    Returns (q, 3, m) float64: value_q(cx, cy) = c[q, 0] * cx + c[q, 1] * cy + c[q, 2].
    """
    inv = 1.0 / area
    b0 = np.stack(
        [(y[:, 1] - y[:, 2]) * inv, (x[:, 2] - x[:, 1]) * inv, (x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]) * inv]
    )
    b1 = np.stack(
        [(y[:, 2] - y[:, 0]) * inv, (x[:, 0] - x[:, 2]) * inv, (x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2]) * inv]
    )
    f0, f1, f2 = values[:, 0].T, values[:, 1].T, values[:, 2].T  # (q, m)
    out = b0[None] * (f0 - f2)[:, None] + b1[None] * (f1 - f2)[:, None]
    out[:, 2] += f2
    return np.ascontiguousarray(out)


def _at(plane: np.ndarray, tri: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Evaluate one (3, m) plane at fragments: 1-D gathers only (much faster than row gathers)."""
    return plane[0][tri] * cx + plane[1][tri] * cy + plane[2][tri]


def _fragments(layer: MeshLayer, camera: Camera, width: int, height: int, ss: int) -> dict[str, np.ndarray]:
    """Every pixel centre covered by every triangle of ``layer`` (supersampled grid).

    Scanline spans: one (triangle, row) pair per covered row, then the exact x-range of each row,
    so thin hair cards cost what they cover, not their bounding box. Returns pid (k,) int64 pixel
    ids, depth (k,), tri (k,), cx, cy (k,) pixel centres, after the alpha test; planes (5, 3, m):
    depth, u, v and the two corner weights as affine functions of the pixel centre.
    """
    proj = camera.project(layer.vertices) * np.array([ss, ss, 1.0])
    tris = layer.triangles
    x = np.ascontiguousarray(proj[tris, 0])  # (m, 3)
    y = np.ascontiguousarray(proj[tris, 1])
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    # pixel y points down, so a counter-clockwise (front-facing) triangle has negative area here
    keep = np.abs(area) > 1e-9
    if layer.cull_back:
        keep &= area < 0
    safe = np.where(keep, area, 1.0)
    values = np.concatenate([proj[tris, 2][:, :, None], layer.uvs[tris]], axis=2)  # (m, 3, 3)
    planes = _planes(x, y, safe, values)
    y0 = np.clip(np.ceil(y.min(1) - 0.5), 0, height * ss).astype(np.int64)
    y1 = np.clip(np.floor(y.max(1) - 0.5), -1, height * ss - 1).astype(np.int64)
    bh = y1 - y0 + 1
    keep &= bh > 0
    idx = np.flatnonzero(keep)
    rows = bh[idx]
    rtri = np.repeat(idx, rows)
    ry = y0[rtri] + np.arange(int(rows.sum()), dtype=np.int64) - np.repeat(np.cumsum(rows) - rows, rows)
    cyr = ry + 0.5
    xl = np.full(len(rtri), np.inf)
    xr = np.full(len(rtri), -np.inf)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        xa, ya, xb, yb = x[:, a][rtri], y[:, a][rtri], x[:, b][rtri], y[:, b][rtri]
        lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
        hit = (cyr >= lo) & (cyr <= hi) & (hi > lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = xa + (cyr - ya) * (xb - xa) / (yb - ya)
        xl = np.where(hit, np.minimum(xl, xi), xl)
        xr = np.where(hit, np.maximum(xr, xi), xr)
    ok = np.isfinite(xl) & np.isfinite(xr)
    px0 = np.clip(np.ceil(np.where(ok, xl, 0) - 0.5), 0, width * ss).astype(np.int64)
    px1 = np.clip(np.floor(np.where(ok, xr, -1) - 0.5), -1, width * ss - 1).astype(np.int64)
    counts = np.maximum(px1 - px0 + 1, 0)
    total = int(counts.sum())
    tri = np.repeat(rtri, counts)
    px = (
        np.repeat(px0, counts)
        + np.arange(total, dtype=np.int64)
        - np.repeat(np.cumsum(counts) - counts, counts)
    )
    py = np.repeat(ry, counts)
    cx, cy = px + 0.5, py + 0.5
    depth = _at(planes[0], tri, cx, cy)
    if layer.alpha_cutoff is not None and layer.texture.ndim == 3 and layer.texture.shape[2] == 4:
        alpha = _sample(
            np.ascontiguousarray(layer.texture[:, :, 3]),
            _at(planes[1], tri, cx, cy),
            _at(planes[2], tri, cx, cy),
            cv2.INTER_NEAREST,
        )[:, 0]
        sel = alpha >= layer.alpha_cutoff * 255.0
        tri, px, py, cx, cy, depth = tri[sel], px[sel], py[sel], cx[sel], cy[sel], depth[sel]
    bary = _planes(x, y, safe, np.repeat(np.eye(3)[None, :, :2], len(tris), 0))
    return {
        "pid": py * (width * ss) + px,
        "depth": depth,
        "tri": tri,
        "cx": cx,
        "cy": cy,
        "planes": np.concatenate([planes, bary]),
    }


def render(
    layers: list[MeshLayer],
    camera: Camera,
    size: tuple[int, int],
    background: np.ndarray | tuple[int, int, int] = BACKGROUND,
    supersample: int = 2,
    shading: bool = True,
) -> Rendering:
    """Draw ``layers`` through ``camera`` into an image of ``size`` = (width, height).

    background : an (h, w, 3) uint8 image or an RGB colour. Lambert shading with a light from
    the camera's side (:data:`LIGHT`) unless ``shading`` is False (pure albedo).
    """
    w, h = size
    ss = max(int(supersample), 1)
    W, H = w * ss, h * ss
    frags = [_fragments(lay, camera, w, h, ss) for lay in layers]
    pid = np.concatenate([f["pid"] for f in frags])
    depth = np.concatenate([f["depth"] for f in frags])
    zbuf = np.full(W * H, -np.inf)
    np.maximum.at(zbuf, pid, depth)
    win = depth >= zbuf[pid]
    colour = np.zeros((W * H, 3), np.float32)
    layer_at = np.full(W * H, -1, np.int8)
    offset = 0
    for i, (lay, f) in enumerate(zip(layers, frags, strict=True)):
        n = len(f["pid"])
        sel = win[offset : offset + n]
        offset += n
        if not sel.any():
            continue
        tri, cx, cy, planes = f["tri"][sel], f["cx"][sel], f["cy"][sel], f["planes"]
        rgb = _sample(
            np.ascontiguousarray(lay.texture[:, :, :3]),
            _at(planes[1], tri, cx, cy),
            _at(planes[2], tri, cx, cy),
        )
        if shading:
            normals = _vertex_normals(lay.vertices, lay.triangles) @ camera.rotation.T
            b0, b1 = _at(planes[3], tri, cx, cy), _at(planes[4], tri, cx, cy)
            t3 = lay.triangles
            nrm = np.zeros((len(tri), 3))
            for c in range(3):
                n0, n1, n2 = normals[t3[:, 0], c], normals[t3[:, 1], c], normals[t3[:, 2], c]
                nrm[:, c] = b0 * n0[tri] + b1 * n1[tri] + (1 - b0 - b1) * n2[tri]
            nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
            lambert = nrm @ LIGHT
            if not lay.cull_back:
                lambert = np.abs(lambert)  # double-sided cards
            rgb *= (AMBIENT + DIFFUSE * np.clip(lambert, 0.0, 1.0))[:, None].astype(np.float32)
        colour[f["pid"][sel]] = rgb
        layer_at[f["pid"][sel]] = i
    drawn = (layer_at >= 0).reshape(H, W)
    if isinstance(background, np.ndarray) and background.ndim == 3:
        bg = cv2.resize(background, (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    else:
        bg = np.empty((H, W, 3), np.float32)
        bg[:] = np.asarray(background, np.float32)
    img = np.where(drawn[:, :, None], colour.reshape(H, W, 3), bg)
    cover = drawn.astype(np.float32)
    if ss > 1:
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        cover = cv2.resize(cover, (w, h), interpolation=cv2.INTER_AREA)
        ids = layer_at.reshape(H, W)[ss // 2 :: ss, ss // 2 :: ss]
    else:
        ids = layer_at.reshape(H, W)
    return Rendering(np.clip(img + 0.5, 0, 255).astype(np.uint8), cover, ids)


def render_in_photo_pose(
    avatar: RiggedAvatar,
    face: FaceObservation,
    expression: np.ndarray | None = None,
    background: np.ndarray | tuple[int, int, int] = BACKGROUND,
    supersample: int = 1,
) -> Rendering:
    """The avatar (with ``expression`` applied, or neutral) drawn where the photo's face is, at the
    photo's size. The camera is fitted to the neutral head's face vertices."""
    layers = avatar_layers(avatar, expression)
    camera = photo_camera(face, layers[0].vertices)
    return render(layers, camera, face.image_size, background, supersample)


def render_view(
    avatar: RiggedAvatar, size: tuple[int, int], yaw_deg: float, pitch_deg: float = 0.0, supersample: int = 2
) -> Rendering:
    """The neutral avatar from ``yaw_deg`` (0 front, 35 three-quarter, 90 profile), framed to fit."""
    layers = avatar_layers(avatar)
    return render(layers, view_camera(layers, size, yaw_deg, pitch_deg), size, BACKGROUND, supersample)
