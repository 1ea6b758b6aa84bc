"""Levels of detail for export: a texture size and a simpler mesh by vertex clustering.

``high`` keeps every vertex. ``medium`` and ``low`` merge the non-landmark vertices (skull, neck,
ears, mouth interior, eyeballs...) that share a grid cell in space *and* in UV space *and* a
region, onto one existing representative vertex, so every attribute (UV, skin weights, morph
deltas) is simply indexed, never averaged; the 468 face landmarks always stay, so every
blendshape keeps its shape on the face. Degenerate and duplicate triangles are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vrhub.pipeline.types import ExportOptions, RiggedAvatar

#: lod -> (cell size in metres for clustering or None, largest texture side)
LODS: dict[str, tuple[float | None, int]] = {
    "high": (None, 4096),
    "medium": (0.012, 512),
    "low": (0.022, 256),
}


@dataclass(frozen=True)
class LevelOfDetail:
    """vertex_map : (k,) int64 head vertex kept as each output vertex; triangles : (m, 3) int64 into
    the kept vertices; texture_size : side of the exported textures."""

    vertex_map: np.ndarray
    triangles: np.ndarray
    texture_size: int


def cluster_vertices(
    vertices: np.ndarray,
    triangles: np.ndarray,
    uvs: np.ndarray,
    labels: np.ndarray,
    keep: np.ndarray,
    cell: float,
    uv_cell: float = 0.04,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering onto representatives.

    vertices : (n, 3) float; triangles : (m, 3) int; uvs : (n, 2) float; labels : (n,) int region id;
    keep : (n,) bool vertices that must stay themselves; cell : grid size (metres).
    Returns (vertex_map (k,) int64, triangles (m', 3) int64 into vertex_map).
    """
    v = np.asarray(vertices, np.float64)
    n = len(v)
    key = np.concatenate(
        [
            np.floor(v / cell).astype(np.int64),
            np.floor(np.asarray(uvs, np.float64) / uv_cell).astype(np.int64),
            np.asarray(labels, np.int64)[:, None],
        ],
        1,
    )
    key[keep] = np.stack(
        [
            np.full(int(keep.sum()), -(2**40)),
            np.flatnonzero(keep),
            *([np.zeros(int(keep.sum()), np.int64)] * 4),
        ],
        1,
    )
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    rep = first[inverse.reshape(-1)]  # (n,) representative vertex of each vertex
    t = rep[np.asarray(triangles, np.int64)]
    ok = (t[:, 0] != t[:, 1]) & (t[:, 1] != t[:, 2]) & (t[:, 0] != t[:, 2])
    t = t[ok]
    t = t[np.unique(np.sort(t, axis=1), axis=0, return_index=True)[1]]
    used = np.unique(np.concatenate([t.reshape(-1), np.flatnonzero(keep)]))
    remap = np.full(n, -1, np.int64)
    remap[used] = np.arange(len(used))
    return used, remap[t]


def level_of_detail(avatar: RiggedAvatar, options: ExportOptions) -> LevelOfDetail:
    """The vertices, triangles and texture size to export for ``options.lod``."""
    if options.lod not in LODS:
        raise ValueError(f"unknown level of detail {options.lod!r}; use one of {', '.join(LODS)}")
    cell, tex_cap = LODS[options.lod]
    head = avatar.head
    n = len(head.vertices)
    texture_size = int(max(16, min(int(options.texture_size), tex_cap)))
    if cell is None:
        return LevelOfDetail(np.arange(n), np.asarray(head.triangles, np.int64), texture_size)
    labels = np.zeros(n, np.int64)
    for i, idx in enumerate(head.regions.values(), start=1):
        labels[np.asarray(idx, np.int64)] = i
    keep = np.zeros(n, bool)
    keep[np.asarray(head.landmark_vertices, np.int64)] = True
    vmap, tris = cluster_vertices(head.vertices, head.triangles, head.uvs, labels, keep, cell)
    return LevelOfDetail(vmap, tris, texture_size)
