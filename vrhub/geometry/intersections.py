"""Triangle-mesh self-intersection test (pure numpy): which triangles of a mesh pass through each
other.

Broad phase: every triangle's bounding box is entered into a uniform grid of cells; triangles that
share a cell and whose boxes overlap are candidates. Triangles that share a vertex are never
counted (neighbours meet along their common edge or corner by construction). Narrow phase: two
triangles intersect when an edge of one crosses the interior of the other (Möller-Trumbore
segment test, both ways round), which finds every crossing of triangles in general position;
surfaces that only touch within ``eps`` are not counted.
"""

from __future__ import annotations

import numpy as np


def _cell_entries(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(triangle index, cell key) for every grid cell each triangle's box covers; lo/hi (k, 3) int."""
    span = hi - lo + 1
    count = span.prod(1)
    tri = np.repeat(np.arange(len(lo)), count)
    local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    sx, sy = span[tri, 0], span[tri, 1]
    cell = lo[tri] + np.stack([local % sx, (local // sx) % sy, local // (sx * sy)], 1)
    cell -= cell.min(0)
    dims = cell.max(0) + 1
    return tri, (cell[:, 0] * dims[1] + cell[:, 1]) * dims[2] + cell[:, 2]


def candidate_pairs(vertices: np.ndarray, triangles: np.ndarray, cell: float | None = None) -> np.ndarray:
    """(p, 2) int64 pairs i < j of triangles whose bounding boxes overlap and that share no vertex.

    cell : grid cell size (default twice the median edge length)."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    corners = v[t]
    bmin, bmax = corners.min(1), corners.max(1)
    if cell is None:
        edges = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2)
        cell = 2.0 * float(np.median(edges))
    tri, key = _cell_entries(np.floor(bmin / cell).astype(np.int64), np.floor(bmax / cell).astype(np.int64))
    order = np.lexsort((tri, key))
    tri, key = tri[order], key[order]
    pairs = []
    # pair each entry with the following entries of the same cell (cells hold few triangles)
    step = 1
    while step < len(key):
        same = key[step:] == key[:-step]
        if not same.any():
            break
        pairs.append(np.stack([tri[:-step][same], tri[step:][same]], 1))
        step += 1
    if not pairs:
        return np.zeros((0, 2), np.int64)
    p = np.sort(np.concatenate(pairs), 1)
    code = np.unique(p[p[:, 0] != p[:, 1]] @ np.array([len(t), 1], np.int64))
    p = np.stack([code // len(t), code % len(t)], 1)
    overlap = np.all((bmin[p[:, 0]] <= bmax[p[:, 1]]) & (bmin[p[:, 1]] <= bmax[p[:, 0]]), axis=1)
    p = p[overlap]
    ta, tb = t[p[:, 0]], t[p[:, 1]]
    shared = (ta[:, :, None] == tb[:, None, :]).any((1, 2))
    return p[~shared]


def _edges_cross(a: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """(p,) bool: does any edge of triangles ``a`` (p, 3, 3) pass through the interior of ``b``?"""
    hit = np.zeros(len(a), bool)
    e1, e2 = b[:, 1] - b[:, 0], b[:, 2] - b[:, 0]
    for k in range(3):
        o = a[:, k]
        d = a[:, (k + 1) % 3] - o
        h = np.cross(d, e2)
        det = (e1 * h).sum(1)
        ok = np.abs(det) > 1e-300
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - b[:, 0]
        u = (s * h).sum(1) * inv
        q = np.cross(s, e1)
        w = (d * q).sum(1) * inv
        t = (e2 * q).sum(1) * inv
        hit |= ok & (u > eps) & (w > eps) & (u + w < 1 - eps) & (t > eps) & (t < 1 - eps)
    return hit


def self_intersections(vertices: np.ndarray, triangles: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(q, 2) int64 pairs of triangles (indices into ``triangles``) that cross each other.

    vertices : (n, 3); triangles : (m, 3). ``eps`` is in barycentric / edge-parameter units."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    p = candidate_pairs(v, t)
    if not len(p):
        return p
    a, b = v[t[p[:, 0]]], v[t[p[:, 1]]]
    return p[_edges_cross(a, b, eps) | _edges_cross(b, a, eps)]
