"""Mesh topology helpers shared by the rig, the exporter and the reconstruct stage: a cache key for
a triangle list and the (cached) vertex adjacency of a mesh. Every avatar built on the head template
shares one topology, so what depends only on it is built once per process."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

#: (vertex count, triangle digest) -> (adjacency CSR (n, n), degree (n,) float64). Every avatar of
#: the head template shares one topology, so this is built once per process.
_ADJACENCY_CACHE: dict[tuple[int, bytes], tuple[Any, np.ndarray]] = {}
_CACHE_SIZE = 8


def topology_key(triangles: np.ndarray, n: int) -> tuple[int, bytes]:
    """A cache key for a mesh topology: vertex count and a digest of the (m, 3) triangle indices
    (as int64, so uint32 and int64 copies of one topology share the key)."""
    t = np.ascontiguousarray(np.asarray(triangles, np.int64))
    return n, hashlib.blake2b(t.tobytes(), digest_size=16).digest() + str(t.shape).encode()


def _build_adjacency(triangles: np.ndarray, n: int) -> Any:
    from scipy.sparse import coo_matrix

    t = np.asarray(triangles, np.int64)
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    adj.data[:] = 1.0
    return adj


def mesh_adjacency(triangles: np.ndarray, n: int) -> tuple[Any, np.ndarray]:
    """(adjacency, degree) of a mesh: (n, n) scipy CSR with 1 on every edge, (n,) float64 edge
    count (at least 1); cached per topology for the life of the process."""
    key = topology_key(triangles, n)
    hit = _ADJACENCY_CACHE.pop(key, None)  # re-inserted below: least recently used goes first
    if hit is None:
        adj = _build_adjacency(triangles, n)
        deg = np.maximum(np.asarray(adj.sum(1)).ravel(), 1)
        if len(_ADJACENCY_CACHE) >= _CACHE_SIZE:
            _ADJACENCY_CACHE.pop(next(iter(_ADJACENCY_CACHE)))
        hit = (adj, deg)
    _ADJACENCY_CACHE[key] = hit
    return hit
