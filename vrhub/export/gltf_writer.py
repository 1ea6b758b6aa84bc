"""glTF 2.0 binary (GLB) writing of a rigged avatar with pygltflib.

The head is one skinned mesh with sparse morph targets (``mesh.extras.targetNames``: the 52 ARKit
names then the visemes), its albedo embedded as JPEG; the hair is a second skinned mesh bound
rigidly to the ``head`` joint, RGBA PNG, alphaMode MASK/BLEND, double-sided. Skinned mesh nodes
and the skeleton root are scene roots (the validator warns otherwise). :class:`GlbBuilder` is also
what the VRM writer extends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import operator
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pygltflib as g
from PIL import Image as PILImage

import vrhub
from vrhub.export.lod import LevelOfDetail, level_of_detail
from vrhub.geometry.skinning import JOINT_INDEX, inverse_bind_matrices, local_translations
from vrhub.geometry.topology import topology_key
from vrhub.pipeline.types import ExportOptions, RiggedAvatar

_COMPONENT = {
    np.dtype(np.float32): g.FLOAT,
    np.dtype(np.uint32): g.UNSIGNED_INT,
    np.dtype(np.uint16): g.UNSIGNED_SHORT,
    np.dtype(np.uint8): g.UNSIGNED_BYTE,
}
_TYPE = {1: g.SCALAR, 2: g.VEC2, 3: g.VEC3, 4: g.VEC4, 16: g.MAT4}


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray, incidence: Any = None) -> np.ndarray:
    """(n, 3) float32 unit area-weighted vertex normals; +Z for vertices in no triangle.

    incidence : optional (n, m) sparse vertex-triangle matrix from :func:`triangle_incidence`
    (reuse it when computing normals of many poses of one mesh).
    """
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    if incidence is None:
        incidence = triangle_incidence(t, len(v))
    n = np.asarray(incidence @ fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    bad = length[:, 0] < 1e-20
    n[bad] = (0.0, 0.0, 1.0)
    length[bad] = 1.0
    return (n / length).astype(np.float32)


def triangle_incidence(triangles: np.ndarray, n: int) -> Any:
    """(n, m) scipy CSR matrix with a 1 where vertex i is a corner of triangle j."""
    from scipy.sparse import csr_matrix

    t = np.asarray(triangles, np.int64)
    rows = t.reshape(-1)
    cols = np.repeat(np.arange(len(t)), 3)
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(t)))


#: topology key -> (n, d) int64 triangles around each vertex, ascending, padded with m (a zero
#: face row); every avatar of the head template shares one, so it is built once per process.
_VERTEX_TRIANGLES: dict[tuple[int, bytes], np.ndarray] = {}


def vertex_triangles(triangles: np.ndarray, n: int) -> np.ndarray:
    """(n, d) int64: the triangles each vertex is a corner of, in ascending order, padded with
    ``m`` = len(triangles) (index a zero row appended to per-face arrays); cached per topology."""
    key = topology_key(triangles, n)
    table = _VERTEX_TRIANGLES.pop(key, None)  # re-inserted below: least recently used goes first
    if table is None:
        t = np.asarray(triangles, np.int64)
        m = len(t)
        corner_vertex = t.reshape(-1)
        corner_tri = np.repeat(np.arange(m), 3)
        order = np.lexsort((corner_tri, corner_vertex))
        vtx, tri = corner_vertex[order], corner_tri[order]
        count = np.bincount(vtx, minlength=n)
        start = np.concatenate([[0], np.cumsum(count)[:-1]])
        slot = np.arange(len(vtx)) - start[vtx]
        table = np.full((n, max(int(count.max(initial=0)), 1)), m, np.int64)
        table[vtx, slot] = tri
        if len(_VERTEX_TRIANGLES) >= 8:
            _VERTEX_TRIANGLES.pop(next(iter(_VERTEX_TRIANGLES)))
    _VERTEX_TRIANGLES[key] = table
    return table


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (k, 3) arrays: ``np.cross``'s formula (same bits), several
    times faster for many short rows."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b))
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    np.subtract(a1 * b2, a2 * b1, out=out[:, 0])
    np.subtract(a2 * b0, a0 * b2, out=out[:, 1])
    np.subtract(a0 * b1, a1 * b0, out=out[:, 2])
    return out


def _face_normals(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(m, 3) float64 un-normalised face normals (twice the area) of float64 ``v`` and int ``t``."""
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    return _cross(b - a, c - a)


def _unit_rows(nsum: np.ndarray) -> np.ndarray:
    """Rows of (k, 3) ``nsum`` normalised; rows shorter than 1e-20 become +Z."""
    length = np.linalg.norm(nsum, axis=1, keepdims=True)
    bad = length[:, 0] < 1e-20
    nsum[bad] = (0.0, 0.0, 1.0)
    length[bad] = 1.0
    return nsum / length


def vertex_normals_cached(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """:func:`vertex_normals` through the per-topology :func:`vertex_triangles` table (no sparse
    matrix per call). (n, 3) float32."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    table = vertex_triangles(t, len(v))
    face = np.concatenate([_face_normals(v, t), np.zeros((1, 3))])
    return _unit_rows(face[table].sum(1)).astype(np.float32)


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python types; what JSON cannot hold dropped."""
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, json_safe(v)) for k, v in value.items()) if v is not _DROP}
    if isinstance(value, (list, tuple)):
        return [v for v in (json_safe(v) for v in value) if v is not _DROP]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return _DROP


_DROP = object()


#: (digest of pixels, size, format) -> encoded bytes, for textures that repeat between avatars
#: (procedural hair textures of one style and colour); bounded.
_ENCODED: dict[tuple[bytes, int, str], bytes] = {}


def encode_image_cached(pixels: np.ndarray, size: int, fmt: str) -> bytes:
    """:func:`encode_image`, memoised on the pixels' digest (a few textures per process)."""
    a = np.ascontiguousarray(pixels)
    key = (hashlib.blake2b(a.tobytes(), digest_size=16).digest() + str(a.shape).encode(), int(size), fmt)
    hit = _ENCODED.get(key)
    if hit is None:
        hit = encode_image(a, size, fmt)
        if len(_ENCODED) >= 16:
            _ENCODED.pop(next(iter(_ENCODED)))
        _ENCODED[key] = hit
    return hit


def encode_image(pixels: np.ndarray, size: int, fmt: str) -> bytes:
    """Resize ``pixels`` ((h, w, 3|4) uint8) to at most ``size`` square and encode as JPEG or PNG."""
    img = PILImage.fromarray(np.ascontiguousarray(pixels))
    side = max(1, min(int(size), max(img.size)))
    if img.size != (side, side):
        img = img.resize((side, side), PILImage.LANCZOS)
    out = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
    else:
        img.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _bounds(values: Any) -> list[float]:
    """Accessor min / max as JSON floats, signed zero written as 0.0: which zero a reduction returns
    depends on the order it meets them, and the fast and reference paths meet them differently."""
    return [float(x) + 0.0 for x in values]


class GlbBuilder:
    """Accumulates buffer views, accessors, images and JSON objects; :meth:`to_glb` packs them.

    reference : use the original, slower code paths (dense per-target normal recomputation through
    a sparse incidence matrix, dense sparse-accessor building, pygltflib's JSON round trip); kept
    for the equivalence test and bench/rig_export.py's baseline. Both paths write the same glTF.
    """

    def __init__(self, reference: bool = False) -> None:
        self.gltf = g.GLTF2(asset=g.Asset(generator=f"vrhub {vrhub.__version__} (pygltflib)", version="2.0"))
        self.reference = reference
        self._chunks: list[bytes] = []
        self._length = 0
        self._zero_view: tuple[int, int] | None = None  # (view index, byte length)

    @property
    def blob(self) -> bytes:
        """The binary buffer so far (one join of the chunks)."""
        return b"".join(self._chunks)

    # -- raw data ----------------------------------------------------------------------------
    def buffer_view(self, data: bytes, target: int | None = None) -> int:
        pad = -self._length % 4
        if pad:
            self._chunks.append(b"\0" * pad)
            self._length += pad
        view = g.BufferView(buffer=0, byteOffset=self._length, byteLength=len(data), target=target)
        self._chunks.append(bytes(data))
        self._length += len(data)
        self.gltf.bufferViews.append(view)
        return len(self.gltf.bufferViews) - 1

    def accessor(
        self,
        array: np.ndarray,
        target: int | None = g.ARRAY_BUFFER,
        minmax: bool = False,
        normalized: bool = False,
    ) -> int:
        a = np.ascontiguousarray(array)
        width = 1 if a.ndim == 1 else int(np.prod(a.shape[1:]))
        view = self.buffer_view(a.tobytes(), target)
        acc = g.Accessor(
            bufferView=view,
            byteOffset=None,
            componentType=_COMPONENT[a.dtype],
            normalized=True if normalized else None,
            count=int(a.shape[0]),
            type=_TYPE[width],
        )
        if minmax:
            flat = a.reshape(len(a), -1)
            acc.min = _bounds(flat.min(0))
            acc.max = _bounds(flat.max(0))
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def sparse_vec3(self, dense: np.ndarray, tolerance: float = 1e-7) -> int:
        """A sparse VEC3 float accessor (zeros outside the listed rows; see :meth:`zeros_view`).

        dense : (n, 3) float. Rows with every component below ``tolerance`` are left out (zeroed);
        at least one row is always listed, as the spec requires count >= 1.
        """
        if not self.reference:
            d = np.asarray(dense, np.float32)
            return self.sparse_rows_vec3(len(d), np.arange(len(d)), d, tolerance)
        d = np.asarray(dense, np.float32).copy()
        mask = np.abs(d).max(1) >= tolerance
        d[~mask] = 0.0
        keep = np.flatnonzero(mask)
        if len(keep) == 0:
            keep = np.array([0])
        lo = [float(x) for x in d.min(0)]
        hi = [float(x) for x in d.max(0)]
        return self._sparse_vec3_accessor(len(d), keep, d[keep], lo, hi)

    def sparse_rows_vec3(
        self, count: int, rows: np.ndarray, values: np.ndarray, tolerance: float = 1e-7, peak: Any = None
    ) -> int:
        """:meth:`sparse_vec3` of a (count, 3) array that is zero outside ``rows``.

        rows : (k,) ascending unique int; values : (k, 3) float32 at those rows; peak : optional
        precomputed (k,) ``abs(values).max(1)``. Same accessor as the dense call, without
        materialising or scanning the zero rows.
        """
        vals = np.asarray(values, np.float32)
        if peak is None:  # abs max per row, column by column (numpy's small-axis reductions are slow)
            a = np.abs(vals)
            peak = np.maximum(np.maximum(a[:, 0], a[:, 1]), a[:, 2])
        mask = peak >= tolerance
        keep = np.compress(mask, np.asarray(rows, np.int64))
        vals = np.compress(mask, vals, axis=0)
        if len(keep) == 0:
            keep = np.array([0])
            vals = np.zeros((1, 3), np.float32)
        lo = [float(vals[:, c].min()) for c in range(3)]
        hi = [float(vals[:, c].max()) for c in range(3)]
        if len(keep) < count:  # the rows left out are zeros
            lo, hi = [min(x, 0.0) for x in lo], [max(x, 0.0) for x in hi]
        return self._sparse_vec3_accessor(int(count), keep, vals, lo, hi)

    def zeros_view(self, byte_length: int) -> int:
        """One zero-filled buffer view shared by every sparse accessor as its base.

        glTF allows a sparse accessor without a bufferView (zeros), but Godot 3's importer then
        reads buffer view 0 instead, fails and drops every morph target; a shared explicit zero
        base costs one copy (60 KB for a 5,000-vertex head) and reads the same everywhere."""
        if self._zero_view is None or self._zero_view[1] < byte_length:
            view = self.buffer_view(bytes(byte_length), g.ARRAY_BUFFER)
            self.gltf.bufferViews[view].byteStride = 12  # shared by several VEC3 float accessors
            self._zero_view = (view, byte_length)
        return self._zero_view[0]

    def _sparse_vec3_accessor(
        self, count: int, keep: np.ndarray, values: np.ndarray, lo: list[float], hi: list[float]
    ) -> int:
        """Append a sparse float VEC3 accessor: ``values`` (k, 3) at rows ``keep`` (k,), zeros elsewhere."""
        idx_dtype = np.uint16 if count <= 65535 else np.uint32
        base = self.zeros_view(count * 12)
        idx_view = self.buffer_view(keep.astype(idx_dtype).tobytes())
        val_view = self.buffer_view(np.ascontiguousarray(values, np.float32).tobytes())
        acc = g.Accessor(
            bufferView=base,
            byteOffset=None,
            componentType=g.FLOAT,
            normalized=None,
            count=count,
            type=g.VEC3,
            min=_bounds(lo),
            max=_bounds(hi),
            sparse=g.Sparse(
                count=len(keep),
                indices=g.AccessorSparseIndices(
                    bufferView=idx_view, byteOffset=None, componentType=_COMPONENT[np.dtype(idx_dtype)]
                ),
                values=g.AccessorSparseValues(bufferView=val_view, byteOffset=None),
            ),
        )
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def texture(self, encoded: bytes, mime: str, name: str) -> int:
        view = self.buffer_view(encoded)
        self.gltf.images.append(g.Image(bufferView=view, mimeType=mime, name=name))
        if not self.gltf.samplers:
            self.gltf.samplers.append(
                g.Sampler(
                    magFilter=g.LINEAR,
                    minFilter=g.LINEAR_MIPMAP_LINEAR,
                    wrapS=g.CLAMP_TO_EDGE,
                    wrapT=g.CLAMP_TO_EDGE,
                )
            )
        self.gltf.textures.append(g.Texture(sampler=0, source=len(self.gltf.images) - 1))
        return len(self.gltf.textures) - 1

    def material(
        self,
        name: str,
        texture: int | None = None,
        colour: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
        alpha_mode: str = "OPAQUE",
        alpha_cutoff: float | None = None,
        double_sided: bool = False,
        roughness: float = 0.8,
    ) -> int:
        pbr = g.PbrMetallicRoughness(
            baseColorFactor=list(colour),
            baseColorTexture=g.TextureInfo(index=texture) if texture is not None else None,
            metallicFactor=0.0,
            roughnessFactor=roughness,
        )
        mat = g.Material(
            name=name,
            pbrMetallicRoughness=pbr,
            alphaMode=alpha_mode,
            alphaCutoff=alpha_cutoff if alpha_mode == "MASK" else None,
            doubleSided=double_sided,
        )
        self.gltf.materials.append(mat)
        return len(self.gltf.materials) - 1

    def node(self, **kw: Any) -> int:
        self.gltf.nodes.append(g.Node(**kw))
        return len(self.gltf.nodes) - 1

    def mesh(self, mesh: g.Mesh) -> int:
        self.gltf.meshes.append(mesh)
        return len(self.gltf.meshes) - 1

    def primitive(
        self,
        vertices: np.ndarray,
        triangles: np.ndarray,
        uvs: np.ndarray | None,
        material: int,
        joints: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        targets: Any = None,
        normals: np.ndarray | None = None,
    ) -> g.Primitive:
        v = np.asarray(vertices, np.float32)
        t = np.asarray(triangles)
        if self.reference:
            incidence = triangle_incidence(t, len(v))
            rest_normals = normals if normals is not None else vertex_normals(v, t, incidence)
        elif normals is not None:
            rest_normals = normals
        elif targets is not None and len(targets):
            rest_normals = vertex_normals_cached(v, t)
        else:  # a one-off topology (hair cards, body boxes): no cache entry
            rest_normals = vertex_normals(v, t)
        attrs = g.Attributes(
            POSITION=self.accessor(v, minmax=True),
            NORMAL=self.accessor(rest_normals),
        )
        if uvs is not None:
            attrs.TEXCOORD_0 = self.accessor(np.asarray(uvs, np.float32))
        if joints is not None and weights is not None:
            jt = np.uint8 if int(joints.max(initial=0)) < 256 else np.uint16
            # the validator wants joint 0 wherever the weight is 0
            joints = np.where(np.asarray(weights) > 0, joints, 0)
            attrs.JOINTS_0 = self.accessor(np.asarray(joints, jt))
            attrs.WEIGHTS_0 = self.accessor(np.asarray(weights, np.float32))
        idx_dtype = np.uint16 if len(v) <= 65535 else np.uint32
        prim = g.Primitive(
            attributes=attrs,
            indices=self.accessor(t.astype(idx_dtype).reshape(-1), target=g.ELEMENT_ARRAY_BUFFER),
            material=material,
            mode=g.TRIANGLES,
        )
        if targets is not None and len(targets) and not self.reference:
            prim.targets = self._targets(v, t, rest_normals, targets)
        elif targets:
            prim.targets = []
            tt = t.astype(np.int64)
            vv = v.astype(np.float64)
            face_rest = np.cross(vv[tt[:, 1]] - vv[tt[:, 0]], vv[tt[:, 2]] - vv[tt[:, 0]])
            for d in targets:
                # normal deltas where the shape bends the surface, so engines shade expressions right;
                # only triangles with a moving corner are recomputed
                moving = np.abs(d).max(1) > 0
                tri = np.flatnonzero(moving[tt].any(1))
                dn = np.zeros_like(rest_normals)
                if len(tri):
                    p = vv + d
                    face = face_rest.copy()
                    c = tt[tri]
                    face[tri] = np.cross(p[c[:, 1]] - p[c[:, 0]], p[c[:, 2]] - p[c[:, 0]])
                    touched = np.unique(c)
                    nsum = np.asarray(incidence[touched] @ face)
                    length = np.linalg.norm(nsum, axis=1, keepdims=True)
                    ok = length[:, 0] > 1e-20
                    dn[touched[ok]] = nsum[ok] / length[ok] - rest_normals[touched[ok]]
                prim.targets.append(
                    g.Attributes(POSITION=self.sparse_vec3(d), NORMAL=self.sparse_vec3(dn, 4e-3))
                )
        return prim

    def _targets(
        self, v: np.ndarray, t: np.ndarray, rest_normals: np.ndarray, targets: Any
    ) -> list[g.Attributes]:
        """POSITION and NORMAL sparse accessors of every morph target (the fast path).

        The reference path's normal deltas, computed for all targets at once: the faces with a
        moving corner (per target) are recomputed, and only the vertices around them are re-summed,
        through the cached vertex-triangle table, in the same order as the reference's sparse
        product. v : (n, 3) float32; t : (m, 3) int; targets : (T, n, 3) array or list of (n, 3).
        """
        deltas = np.asarray(targets, np.float32)  # (T, n, 3)
        count, n = deltas.shape[:2]
        tt = np.asarray(t, np.int64)
        m = len(tt)
        table = vertex_triangles(tt, n)  # (n, d), padded with m
        degree = (table < m).sum(1)
        vv = v.astype(np.float64)
        a = np.abs(deltas)
        peak = np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])  # (T, n) = abs max per row
        moving = peak > 0
        tri_moving = moving[:, tt[:, 0]] | moving[:, tt[:, 1]] | moving[:, tt[:, 2]]  # (T, m)
        kt, kf = np.nonzero(tri_moving)  # (K,) target and face of every recomputed face
        flat = kt[:, None] * n + tt[kf]  # (K, 3) corners as target * n + vertex
        p = np.take(vv, tt[kf], axis=0) + np.take(deltas.reshape(-1, 3), flat, axis=0)  # (K, 3, 3)
        faces = np.concatenate(
            [_face_normals(vv, tt), np.zeros((1, 3)), _cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])]
        )
        face_of = np.empty((count, m + 1), np.int32)  # per target: its rest face, or its posed row
        face_of[:] = np.arange(m + 1, dtype=np.int32)
        face_of[kt, kf] = np.arange(m + 1, m + 1 + len(kt), dtype=np.int32)
        touched = np.zeros(count * n, bool)  # corners of the recomputed faces, by target
        touched[flat.reshape(-1)] = True
        tv = np.flatnonzero(touched)
        tv_t, tv_v = tv // n, tv % n
        # each touched vertex's faces in ascending order (as the reference's CSR product sums them)
        cnt = degree[tv_v]
        starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
        rep = np.repeat(np.arange(len(tv)), cnt)
        slot = np.arange(len(rep)) - starts[rep]
        ring = face_of[tv_t[rep], table[tv_v[rep], slot]]
        nsum = np.add.reduceat(np.take(faces, ring, axis=0), starts, axis=0) if len(tv) else np.zeros((0, 3))
        length = np.linalg.norm(nsum, axis=1)
        ok = length > 1e-20
        tv_t, tv_v = tv_t[ok], tv_v[ok]
        dn = (nsum[ok] / length[ok, None] - rest_normals[tv_v]).astype(np.float32)
        bounds = np.searchsorted(tv_t, np.arange(count + 1))
        keep_position = peak >= 1e-7
        out = []
        for k in range(count):
            rows = np.flatnonzero(keep_position[k])
            position = self.sparse_rows_vec3(n, rows, deltas[k, rows], 1e-7, peak[k, rows])
            a, b = bounds[k], bounds[k + 1]
            normal = self.sparse_rows_vec3(n, tv_v[a:b], dn[a:b], 4e-3)
            out.append(g.Attributes(POSITION=position, NORMAL=normal))
        return out

    def json_bytes(self) -> bytes:
        """The glTF JSON chunk (UTF-8, padded with spaces to 4 bytes)."""
        if self.reference:
            text = self.gltf.gltf_to_json(separators=(",", ":"), indent=None)
            doc = json.loads(text)
        else:  # same document as pygltflib's, without its deep copies and a JSON round trip
            doc = _plain(self.gltf)
        # pygltflib keeps dataclass defaults such as byteOffset=0; drop those the spec forbids.
        for acc in doc.get("accessors", []):
            if "bufferView" not in acc:
                acc.pop("byteOffset", None)
            if acc.get("normalized") is False:
                acc.pop("normalized")
        raw = json.dumps(doc, separators=(",", ":"), allow_nan=False, default=_json_default).encode("utf-8")
        return raw + b" " * (-len(raw) % 4)

    def to_glb(self) -> bytes:
        """The GLB bytes (header, JSON chunk, BIN chunk)."""
        pad = -self._length % 4
        if pad:
            self._chunks.append(b"\0" * pad)
            self._length += pad
        self.gltf.buffers = [g.Buffer(byteLength=self._length)]
        raw = self.json_bytes()
        body = self.blob
        total = 12 + 8 + len(raw) + 8 + len(body)
        return b"".join(
            [
                struct.pack("<4sII", b"glTF", 2, total),
                struct.pack("<I4s", len(raw), b"JSON"),
                raw,
                struct.pack("<I4s", len(body), b"BIN\x00"),
                body,
            ]
        )


_FIELDS: dict[type, tuple[tuple[str, ...], Any]] = {}
_LEAVES = frozenset((int, float, str, bool, type(None)))


def _fields(obj: Any) -> tuple[tuple[str, ...], Any] | None:
    """(field names, attrgetter of them) of a dataclass instance; None for anything else."""
    tp = type(obj)
    hit = _FIELDS.get(tp)
    if hit is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = tuple(f.name for f in dataclasses.fields(obj))
        getter = operator.attrgetter(*names)
        hit = _FIELDS[tp] = (names, (lambda o: (getter(o),)) if len(names) == 1 else getter)
    return hit


def _plain(obj: Any, prune: bool = True) -> Any:
    """``delete_empty_keys(gltf_asdict(obj))`` of pygltflib in one walk, without its deep copies.

    Dicts (from dataclasses or dicts) are pruned of None and empty values when ``prune``, as
    ``delete_empty_keys`` does: recursively, except inside an ``extensions`` dict and inside lists
    nested in lists, and judging emptiness before pruning.
    """
    tp = type(obj)
    if tp in _LEAVES:
        return obj
    if tp is list or tp is tuple:
        return [v if type(v) in _LEAVES else _plain(v, prune) for v in obj]
    if tp is g.Attributes:
        items: Any = obj.__dict__.items()
    elif tp is dict:
        items = obj.items()
    else:
        found = _fields(obj)
        if found is None:
            return obj  # left to json.dumps(default=...)
        items = zip(found[0], found[1](obj), strict=True)
    out = {}
    for k, v in items:
        tv = type(v)
        if tv in _LEAVES:
            if prune and (v is None or (tv is str and not v)):
                continue
            out[k] = v
        elif tv is list or tv is tuple:
            if prune and not v:
                continue
            # delete_empty_keys walks dicts directly inside a list, not lists inside lists
            out[k] = [
                x if type(x) in _LEAVES else _plain(x, prune and not (type(x) is list or type(x) is tuple))
                for x in v
            ]
        else:
            if prune and hasattr(v, "__iter__") and len(v) == 0:
                continue
            out[k] = _plain(v, prune and k != "extensions")
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class SceneParts:
    """Indices of what :func:`build_avatar_scene` added (the VRM writer attaches to them)."""

    joint_nodes: list[int]
    head_node: int
    hair_node: int | None
    head_mesh: int
    skin: int
    target_names: tuple[str, ...]


def build_avatar_scene(builder: GlbBuilder, avatar: RiggedAvatar, options: ExportOptions) -> SceneParts:
    """Add the skeleton, the head mesh with morph targets and the hair mesh to ``builder``."""
    lod: LevelOfDetail = level_of_detail(avatar, options)
    head = avatar.head
    # skeleton
    local = local_translations(avatar.joints)
    joint_nodes = [
        builder.node(name=j.name, translation=[float(x) for x in local[i]])
        for i, j in enumerate(avatar.joints)
    ]
    for i, j in enumerate(avatar.joints):
        if j.parent >= 0:
            builder.gltf.nodes[joint_nodes[j.parent]].children.append(joint_nodes[i])
    ibm = inverse_bind_matrices(avatar.joints).transpose(0, 2, 1).reshape(-1, 16)  # column-major
    skin = g.Skin(
        name="head_skeleton",
        joints=joint_nodes,
        skeleton=joint_nodes[0],
        inverseBindMatrices=builder.accessor(np.ascontiguousarray(ibm, np.float32), target=None),
    )
    builder.gltf.skins.append(skin)
    skin_index = len(builder.gltf.skins) - 1

    # head
    albedo = builder.texture(encode_image(head.albedo, lod.texture_size, "jpeg"), "image/jpeg", "albedo")
    head_mat = builder.material("head", albedo, roughness=0.75)
    names = avatar.blendshape_names
    deltas = avatar.blendshape_deltas
    if not options.visemes:
        keep = [i for i, n in enumerate(names) if not n.startswith("viseme_")]
        names = tuple(names[i] for i in keep)
        deltas = deltas[keep]
    vmap = lod.vertex_map
    every_vertex = len(vmap) == len(head.vertices) and bool(np.all(vmap == np.arange(len(vmap))))
    if every_vertex and not builder.reference:  # lod high: no copies of the per-vertex arrays
        vmap = slice(None)
    deltas = deltas[:, vmap]
    prim = builder.primitive(
        head.vertices[vmap],
        lod.triangles,
        head.uvs[vmap],
        head_mat,
        joints=avatar.skin_joints[vmap],
        weights=avatar.skin_weights[vmap],
        targets=list(deltas) if builder.reference else deltas,
    )
    head_mesh = builder.mesh(
        g.Mesh(
            name="head", primitives=[prim], weights=[0.0] * len(names), extras={"targetNames": list(names)}
        )
    )
    head_node = builder.node(name="head_mesh", mesh=head_mesh, skin=skin_index)

    # hair: rigid on the head joint
    hair_node = None
    hair = avatar.hair
    if not hair.is_empty and len(hair.triangles):
        encode = encode_image if builder.reference else encode_image_cached
        tex = builder.texture(encode(hair.texture, lod.texture_size, "png"), "image/png", "hair")
        mode = hair.alpha_mode if hair.alpha_mode in ("MASK", "BLEND") else "MASK"
        hair_mat = builder.material(
            "hair",
            tex,
            alpha_mode=mode,
            alpha_cutoff=float(hair.alpha_cutoff),
            double_sided=True,
            roughness=0.6,
        )
        n = len(hair.vertices)
        joints = np.tile(
            np.array(
                [JOINT_INDEX["head"], JOINT_INDEX["jaw"], JOINT_INDEX["neck"], JOINT_INDEX["root"]], np.uint16
            ),
            (n, 1),
        )
        weights = np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (n, 1))
        hprim = builder.primitive(
            hair.vertices, hair.triangles, hair.uvs, hair_mat, joints=joints, weights=weights
        )
        hair_mesh = builder.mesh(g.Mesh(name="hair", primitives=[hprim]))
        hair_node = builder.node(name="hair_mesh", mesh=hair_mesh, skin=skin_index)
    return SceneParts(joint_nodes, head_node, hair_node, head_mesh, skin_index, names)


def asset_extras(avatar: RiggedAvatar, options: ExportOptions) -> dict[str, Any]:
    """JSON-safe metadata for ``asset.extras``."""
    head = avatar.head
    return json_safe(
        {
            "vrhub": {
                "version": vrhub.__version__,
                "lod": options.lod,
                "texture_size": options.texture_size,
                "visemes": options.visemes,
                "skin_tone": list(head.skin_tone),
                "eye_colour": list(head.eye_colour),
                "hair_style": avatar.hair.style,
                "quality": head.quality,
                "attributes": avatar.attributes,
            }
        }
    )


def write_glb(avatar: RiggedAvatar, options: ExportOptions | None = None, reference: bool = False) -> bytes:
    """The avatar as GLB bytes (see the module docstring). ``reference``: the original, slower code
    path (see :class:`GlbBuilder`), same glTF."""
    options = options or ExportOptions()
    b = GlbBuilder(reference=reference)
    parts = build_avatar_scene(b, avatar, options)
    roots = [parts.joint_nodes[0], parts.head_node] + (
        [parts.hair_node] if parts.hair_node is not None else []
    )
    b.gltf.scenes.append(g.Scene(name="avatar", nodes=roots))
    b.gltf.scene = 0
    b.gltf.asset.extras = asset_extras(avatar, options)
    return b.to_glb()
