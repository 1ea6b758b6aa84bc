"""The canonical face mesh is read from node_modules/@mediapipe/face_mesh and has the documented shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vrhub.geometry.canonical_face import (
    EYE_RING_L,
    EYE_RING_R,
    MOUTH_RING,
    CanonicalFaceMissing,
    load_canonical_face,
)


def test_canonical_face_has_468_vertices_898_triangles_and_33_procrustes_weights():
    face = load_canonical_face()
    assert face.vertices.shape == (468, 3)
    assert face.uvs.shape == (468, 2)
    assert face.triangles.shape == (898, 3)
    assert face.triangles.min() == 0 and face.triangles.max() == 467
    assert int((face.procrustes_weights > 0).sum()) == 33


def test_canonical_face_is_edge_consistent_and_faces_the_viewer():
    face = load_canonical_face()
    t = face.triangles
    directed = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    # a consistently wound manifold never uses the same directed edge twice
    assert len({tuple(e) for e in directed.tolist()}) == len(directed)
    v = face.vertices
    n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    assert int((n[:, 2] > 0).sum()) == 888
    # the other 10 face downward (under the upper lip and the nostrils), not into the head
    assert np.all(n[n[:, 2] <= 0, 1] < 0)


def test_canonical_face_uvs_put_the_forehead_at_the_top_of_the_texture():
    face = load_canonical_face()
    assert face.uvs[10, 1] < 0.2 < 0.9 < face.uvs[152, 1]  # forehead top, chin bottom (glTF v down)
    assert np.all((face.uvs >= 0) & (face.uvs <= 1))
    # the avatar's left (+X) is on the right of the texture
    assert face.uvs[263, 0] > 0.5 > face.uvs[33, 0]


def test_canonical_face_units_are_centimetres_with_y_up_and_z_toward_the_viewer():
    face = load_canonical_face()
    v = face.vertices
    assert v[10, 1] > v[1, 1] > v[152, 1]  # forehead above nose tip above chin
    assert v[1, 2] > v[234, 2]  # nose tip nearer the viewer than the side of the face
    width = v[454, 0] - v[234, 0]
    assert 12.0 < width < 18.0  # a face is ~15 cm wide
    assert v[263, 0] > 0 > v[33, 0]  # +X is the avatar's own left


def test_canonical_face_mirror_pairs_are_symmetric():
    face = load_canonical_face()
    m = face.mirror
    assert np.array_equal(m[m], np.arange(468))
    assert np.allclose(face.vertices[m] * [-1, 1, 1], face.vertices, atol=1e-3)


def test_canonical_face_covers_mouth_and_eyes_and_has_one_outer_rim():
    face = load_canonical_face()
    loops = face.boundary_loops
    assert len(loops) == 1 and len(loops[0]) == 36
    for ring, count in ((MOUTH_RING, 18), (EYE_RING_L, 14), (EYE_RING_R, 14)):
        assert int(np.isin(face.triangles, ring).all(1).sum()) == count


def test_missing_node_modules_is_a_clear_error(tmp_path: Path):
    with pytest.raises(CanonicalFaceMissing, match="npm install"):
        load_canonical_face(tmp_path / "node_modules")
