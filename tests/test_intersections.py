"""The mesh self-intersection test finds crossing triangles and nothing else."""

from __future__ import annotations

import numpy as np

from vrhub.geometry.intersections import candidate_pairs, self_intersections


def _box(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    v = np.array(
        [[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)],
        np.float64,
    )
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    t = np.array([[a, b, c] for a, b, c, d in quads] + [[a, c, d] for a, b, c, d in quads], np.int64)
    return v, t


def test_two_crossing_triangles_are_found():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0.2, 0.2, -0.5], [0.3, 0.2, 0.5], [0.2, 0.4, 0.5]], float)
    assert self_intersections(v, np.array([[0, 1, 2], [3, 4, 5]])).tolist() == [[0, 1]]


def test_a_closed_box_and_separate_boxes_do_not_intersect():
    v1, t1 = _box((0, 0, 0), (1, 1, 1))
    v2, t2 = _box((2, 0, 0), (3, 1, 1))
    v = np.concatenate([v1, v2])
    t = np.concatenate([t1, t2 + len(v1)])
    assert len(self_intersections(v, t)) == 0
    # neighbours share edges or corners: never candidates
    pairs = candidate_pairs(v1, t1)
    assert not (t1[pairs[:, 0], :, None] == t1[pairs[:, 1], None, :]).any((1, 2)).any()


def test_overlapping_boxes_intersect_and_touching_ones_do_not():
    v1, t1 = _box((0, 0, 0), (1, 1, 1))
    v2, t2 = _box((0.5, 0.25, 0.25), (1.5, 0.75, 0.75))
    v = np.concatenate([v1, v2])
    t = np.concatenate([t1, t2 + len(v1)])
    pairs = self_intersections(v, t)
    assert len(pairs) > 0
    # every crossing is between the two boxes, never within one
    assert (pairs[:, 0] < len(t1)).all() and (pairs[:, 1] >= len(t1)).all()
    # a box resting on another's face touches it without crossing
    v3, t3 = _box((0.25, 0.25, 1.0), (0.75, 0.75, 2.0))
    v = np.concatenate([v1, v3])
    t = np.concatenate([t1, t3 + len(v1)])
    assert len(self_intersections(v, t)) == 0


def test_a_large_triangle_across_many_grid_cells_is_still_found():
    # a fine grid of small triangles pierced by one big triangle spanning the whole grid
    n = 20
    xs = np.linspace(0, 1, n + 1)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    v = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], 1)
    idx = np.arange(gx.size).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    t = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    big = np.array([[0.05, 0.512, -0.3], [0.95, 0.512, -0.3], [0.5, 0.513, 0.6]])
    v = np.concatenate([v, big])
    t = np.concatenate([t, [[len(v) - 3, len(v) - 2, len(v) - 1]]])
    pairs = self_intersections(v, t)
    assert len(pairs) > 0
    assert (pairs == len(t) - 1).any(1).all()
