"""glTF 2.0 binary (GLB) writing of a rigged avatar with pygltflib.

The head is one skinned mesh with sparse morph targets (``mesh.extras.targetNames``: the 52 ARKit
names then the visemes), its albedo embedded as JPEG; the hair is a second skinned mesh bound
rigidly to the ``head`` joint, RGBA PNG, alphaMode MASK/BLEND, double-sided. Skinned mesh nodes
and the skeleton root are scene roots (the validator warns otherwise). :class:`GlbBuilder` is also
what the VRM writer extends.
"""

from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pygltflib as g
from PIL import Image as PILImage

import vrhub
from vrhub.export.lod import LevelOfDetail, level_of_detail
from vrhub.geometry.skinning import JOINT_INDEX, inverse_bind_matrices, local_translations
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


class GlbBuilder:
    """Accumulates buffer views, accessors, images and JSON objects; :meth:`to_glb` packs them."""

    def __init__(self) -> None:
        self.gltf = g.GLTF2(asset=g.Asset(generator=f"vrhub {vrhub.__version__} (pygltflib)", version="2.0"))
        self.blob = bytearray()

    # -- raw data ----------------------------------------------------------------------------
    def buffer_view(self, data: bytes, target: int | None = None) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        view = g.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target)
        self.blob.extend(data)
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
            acc.min = [float(x) for x in flat.min(0)]
            acc.max = [float(x) for x in flat.max(0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def sparse_vec3(self, dense: np.ndarray, tolerance: float = 1e-7) -> int:
        """A sparse VEC3 float accessor (no bufferView: zeros outside the listed rows).

        dense : (n, 3) float. Rows with every component below ``tolerance`` are left out (zeroed);
        at least one row is always listed, as the spec requires count >= 1.
        """
        d = np.asarray(dense, np.float32).copy()
        mask = np.abs(d).max(1) >= tolerance
        d[~mask] = 0.0
        keep = np.flatnonzero(mask)
        if len(keep) == 0:
            keep = np.array([0])
        idx_dtype = np.uint16 if len(d) <= 65535 else np.uint32
        idx_view = self.buffer_view(keep.astype(idx_dtype).tobytes())
        val_view = self.buffer_view(np.ascontiguousarray(d[keep]).tobytes())
        acc = g.Accessor(
            bufferView=None,
            byteOffset=None,
            componentType=g.FLOAT,
            normalized=None,
            count=len(d),
            type=g.VEC3,
            min=[float(x) for x in d.min(0)],
            max=[float(x) for x in d.max(0)],
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
        targets: list[np.ndarray] | None = None,
        normals: np.ndarray | None = None,
    ) -> g.Primitive:
        v = np.asarray(vertices, np.float32)
        t = np.asarray(triangles)
        incidence = triangle_incidence(t, len(v))
        rest_normals = normals if normals is not None else vertex_normals(v, t, incidence)
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
        if targets:
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

    def to_glb(self) -> bytes:
        """The GLB bytes (header, JSON chunk, BIN chunk)."""
        while len(self.blob) % 4:
            self.blob.append(0)
        self.gltf.buffers = [g.Buffer(byteLength=len(self.blob))]
        text = self.gltf.gltf_to_json(separators=(",", ":"), indent=None)
        # pygltflib keeps dataclass defaults such as byteOffset=0; drop those the spec forbids.
        doc = json.loads(text)
        for acc in doc.get("accessors", []):
            if "bufferView" not in acc:
                acc.pop("byteOffset", None)
            if acc.get("normalized") is False:
                acc.pop("normalized")
        raw = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
        raw += b" " * (-len(raw) % 4)
        body = bytes(self.blob)
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
    deltas = deltas[:, lod.vertex_map]
    prim = builder.primitive(
        head.vertices[lod.vertex_map],
        lod.triangles,
        head.uvs[lod.vertex_map],
        head_mat,
        joints=avatar.skin_joints[lod.vertex_map],
        weights=avatar.skin_weights[lod.vertex_map],
        targets=list(deltas),
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
        tex = builder.texture(encode_image(hair.texture, lod.texture_size, "png"), "image/png", "hair")
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


def write_glb(avatar: RiggedAvatar, options: ExportOptions | None = None) -> bytes:
    """The avatar as GLB bytes (see the module docstring)."""
    options = options or ExportOptions()
    b = GlbBuilder()
    parts = build_avatar_scene(b, avatar, options)
    roots = [parts.joint_nodes[0], parts.head_node] + (
        [parts.hair_node] if parts.hair_node is not None else []
    )
    b.gltf.scenes.append(g.Scene(name="avatar", nodes=roots))
    b.gltf.scene = 0
    b.gltf.asset.extras = asset_extras(avatar, options)
    return b.to_glb()
