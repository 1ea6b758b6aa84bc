"""The fast rig and export paths (per-process topology caches, batched morph-target normals, a
direct JSON writer) produce what the original reference paths produce, on a real pipeline head."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from head_fixture import face_photos, make_hair, make_head, pipeline_head

from vrhub.export.gltf_writer import GlbBuilder, vertex_triangles
from vrhub.geometry.blendshapes import blendshapes_and_jaw
from vrhub.geometry.topology import mesh_adjacency
from vrhub.pipeline.types import ExportOptions
from vrhub.stages import gltf_export as export_module
from vrhub.stages import procedural_rig as rig_module
from vrhub.stages.gltf_export import gltf_export
from vrhub.stages.procedural_rig import procedural_rig


@pytest.fixture(scope="module")
def head_and_hair():
    photos = face_photos()
    if photos:
        return pipeline_head(photos[0])
    head = make_head(texture=256)
    return head, make_hair(head)


def _glb_parts(data: bytes) -> tuple[dict, bytes]:
    n, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    doc = json.loads(data[20 : 20 + n])
    m, kind = struct.unpack_from("<I4s", data, 20 + n)
    assert kind == b"BIN\x00"
    return doc, data[28 + n : 28 + n + m]


def test_fast_rig_matches_the_reference_rig(head_and_hair):
    head, hair = head_and_hair
    fast = procedural_rig(head, hair)
    ref = procedural_rig(head, hair, reference=True)
    assert fast.blendshape_names == ref.blendshape_names
    assert np.abs(fast.blendshape_deltas - ref.blendshape_deltas).max() <= 1e-6  # metres
    assert np.abs(fast.skin_weights - ref.skin_weights).max() <= 1e-6
    assert np.array_equal(fast.skin_joints, ref.skin_joints)
    assert (
        np.abs(np.array([j.position for j in fast.joints]) - [j.position for j in ref.joints]).max() <= 1e-9
    )
    assert fast.attributes == ref.attributes


@pytest.mark.parametrize(
    "options",
    [ExportOptions(), ExportOptions(lod="low", visemes=False), ExportOptions(formats=("vrm",))],
    ids=["glb-high", "glb-low-no-visemes", "vrm"],
)
def test_fast_export_writes_the_reference_file(head_and_hair, options):
    """Same JSON document, same buffer layout; buffer contents equal up to float64 rounding in the
    normal deltas (max abs difference 1e-6)."""
    avatar = procedural_rig(*head_and_hair)
    key = options.formats[0]
    fast = gltf_export(avatar, options).files[key]
    ref = gltf_export(avatar, options, reference=True).files[key]
    assert len(fast) == len(ref)
    doc_fast, bin_fast = _glb_parts(fast)
    doc_ref, bin_ref = _glb_parts(ref)
    assert doc_fast == doc_ref
    differing = 0
    for view in doc_ref["bufferViews"]:
        start, end = view.get("byteOffset", 0), view.get("byteOffset", 0) + view["byteLength"]
        a, b = bin_fast[start:end], bin_ref[start:end]
        if a != b:
            differing += 1
            diff = np.abs(np.frombuffer(a, np.float32) - np.frombuffer(b, np.float32))
            assert diff.max() <= 1e-6
    assert differing <= 0.1 * len(doc_ref["bufferViews"])


def test_an_all_zero_morph_target_is_one_zero_row_in_both_paths(head_and_hair):
    head, _ = head_and_hair
    v, t = head.vertices, head.triangles
    targets = np.zeros((2, len(v), 3), np.float32)
    targets[1, 5] = (0.0, 0.001, 0.0)
    docs = []
    for reference in (False, True):
        b = GlbBuilder(reference=reference)
        prim = b.primitive(v, t, head.uvs, 0, targets=list(targets) if reference else targets)
        zero = b.gltf.accessors[prim.targets[0].POSITION]
        assert zero.sparse.count == 1 and zero.min == [0.0] * 3 and zero.max == [0.0] * 3
        assert b.gltf.accessors[prim.targets[0].NORMAL].sparse.count == 1
        moved = b.gltf.accessors[prim.targets[1].POSITION]
        assert moved.sparse.count == 1 and moved.max == pytest.approx([0.0, 0.001, 0.0])
        docs.append(json.loads(b.json_bytes()))
    assert docs[0] == docs[1]


def test_topology_caches_are_built_once_and_keyed_by_topology(head_and_hair):
    head, _ = head_and_hair
    n = len(head.vertices)
    adjacency, degree = mesh_adjacency(head.triangles, n)
    again, _ = mesh_adjacency(np.asarray(head.triangles, np.int64).copy(), n)
    assert again is adjacency  # same topology, any dtype: the cached matrix
    assert degree.min() >= 1 and adjacency.shape == (n, n)
    flipped = np.asarray(head.triangles)[:, ::-1]
    assert mesh_adjacency(flipped, n)[0] is not adjacency  # another topology, another entry
    table = vertex_triangles(head.triangles, n)
    assert vertex_triangles(head.triangles, n) is table
    m = len(head.triangles)
    # every triangle appears once under each of its corners, ascending, padded with m
    corners = np.sort(np.asarray(head.triangles, np.int64), axis=1)
    for tri in (0, m // 2, m - 1):
        for vert in corners[tri]:
            row = table[vert]
            assert tri in row and np.all(np.diff(row[row < m]) > 0)
    assert (table < m).sum() == 3 * m


def test_warm_up_fills_the_caches_the_template_head_uses():
    from vrhub.export import gltf_writer
    from vrhub.geometry import topology
    from vrhub.geometry.head_template import get_head_template

    rig_module.warm_up()
    export_module.warm_up()
    template = get_head_template()
    key = topology.topology_key(template.triangles, len(template.vertices))
    assert key in topology._ADJACENCY_CACHE
    assert key in gltf_writer._VERTEX_TRIANGLES


def test_fast_rig_agrees_on_a_head_without_triangles_or_optional_regions():
    head = make_head(texture=64)
    v = head.vertices[:468]
    fast = blendshapes_and_jaw(v, {}, visemes=False)
    ref = blendshapes_and_jaw(v, {}, visemes=False, reference=True)
    assert np.abs(fast[1] - ref[1]).max() <= 1e-6
