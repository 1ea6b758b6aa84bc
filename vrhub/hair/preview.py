"""A small software renderer for looking at heads with hair (contact sheets, tests, debugging).

Painter's algorithm with flat Lambert shading: triangles sorted far to near and filled with OpenCV.
Hair triangles are drawn where their texture's mean alpha over the triangle's UVs passes the cutoff,
so the alpha-textured cards read as strands rather than solid sheets. Not a production renderer.
"""

from __future__ import annotations

import cv2
import numpy as np

from vrhub.pipeline.types import HairModel, HeadModel


def _rot_y(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def render(
    head: HeadModel | None,
    hair: HairModel | None,
    size: int = 256,
    yaw: float = 0.0,
    skin_rgb: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Render (size, size, 3) uint8 RGB of the head (flat skin tone) and hair, seen from +Z rotated by yaw."""
    parts = []
    if head is not None:
        tone = np.asarray(skin_rgb or head.skin_tone, np.float64)
        parts.append(
            (
                np.asarray(head.vertices, np.float64),
                np.asarray(head.triangles, np.int64),
                np.tile(tone, (len(head.triangles), 1)),
                np.ones(len(head.triangles), bool),
            )
        )
    if hair is not None and not hair.is_empty:
        tex = hair.texture.astype(np.float64)
        tri = np.asarray(hair.triangles, np.int64)
        uv = hair.uvs[tri].mean(axis=1)
        th, tw = tex.shape[:2]
        px = np.clip((uv[:, 0] * (tw - 1)).astype(int), 0, tw - 1)
        py = np.clip((uv[:, 1] * (th - 1)).astype(int), 0, th - 1)
        blur = cv2.blur(hair.texture, (9, 9)).astype(np.float64)
        rgb = blur[py, px, :3]
        visible = blur[py, px, 3] / 255.0 > 0.15
        parts.append((np.asarray(hair.vertices, np.float64), tri, rgb, visible))
    img = np.full((size, size, 3), 235, np.uint8)
    if not parts:
        return img
    allv = np.concatenate([p[0] for p in parts])
    R = _rot_y(yaw)
    centre = (allv.max(axis=0) + allv.min(axis=0)) / 2
    extent = float(np.ptp(allv[:, :2], axis=0).max()) * 1.08
    polys, depth, cols = [], [], []
    light = np.array([0.3, 0.5, 0.8])
    light /= np.linalg.norm(light)
    for v, t, rgb, vis in parts:
        vv = (v - centre) @ R.T
        p = vv[t]
        n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        shade = 0.35 + 0.65 * np.abs(n @ light)
        polys.append(p[vis])
        depth.append(p[vis, :, 2].mean(axis=1))
        cols.append((rgb * shade[:, None])[vis])
    P = np.concatenate(polys)
    D = np.concatenate(depth)
    C = np.clip(np.concatenate(cols), 0, 255)
    order = np.argsort(D)
    xy = np.empty(P.shape[:2] + (2,))
    xy[..., 0] = (P[..., 0] / extent + 0.5) * size
    xy[..., 1] = (0.5 - P[..., 1] / extent) * size
    pts = np.round(xy * 4).astype(np.int32)
    for i in order:
        cv2.fillConvexPoly(img, pts[i], C[i].tolist(), lineType=cv2.LINE_AA, shift=2)
    return img
