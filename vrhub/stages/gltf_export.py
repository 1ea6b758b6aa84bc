"""Builtin ``export`` stage "gltf": GLB (glTF 2.0 binary) and VRM 1.0 files of a rigged avatar."""

from __future__ import annotations

import pygltflib

from vrhub import hookimpl
from vrhub.export.gltf_writer import write_glb
from vrhub.pipeline.types import ExportedFiles, ExportOptions, RiggedAvatar

VERSION = "1.0"
FORMATS = ("glb", "vrm")


def gltf_export(avatar: RiggedAvatar, options: ExportOptions, *, reference: bool = False) -> ExportedFiles:
    """GLB with sparse ARKit morph targets, skin and embedded textures (and VRM 1.0 on request).

    reference : the original, slower writer code path (same files; for the bench and the
    equivalence test)."""
    unknown = [f for f in options.formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; available: {', '.join(FORMATS)}")
    files: dict[str, bytes] = {}
    if "glb" in options.formats:
        files["glb"] = write_glb(avatar, options, reference=reference)
    if "vrm" in options.formats:
        from vrhub.export.vrm import write_vrm

        files["vrm"] = write_vrm(avatar, options, reference=reference)
    return ExportedFiles(files)


def warm_up() -> None:
    """Build the per-process topology cache for the head template (the vertex-triangle table the
    morph-target normals use) and write one small GLB of the template mesh (image encoders,
    JSON writer), so the first job pays for neither."""
    import numpy as np

    from vrhub.export.gltf_writer import GlbBuilder, encode_image
    from vrhub.geometry.head_template import get_head_template

    template = get_head_template()
    v = np.asarray(template.vertices, np.float32) * np.float32(0.01)
    targets = np.zeros((2, len(v), 3), np.float32)
    targets[1, : min(len(v), 468), 2] = 0.001
    b = GlbBuilder()
    b.texture(encode_image(np.zeros((16, 16, 3), np.uint8), 16, "jpeg"), "image/jpeg", "warm_up")
    b.texture(encode_image(np.zeros((16, 16, 4), np.uint8), 16, "png"), "image/png", "warm_up")
    prim = b.primitive(v, template.triangles, template.uvs, b.material("warm_up"), targets=targets)
    b.mesh(pygltflib.Mesh(name="warm_up", primitives=[prim]))
    b.to_glb()


@hookimpl
def register_stages(register):
    register("export", "gltf", gltf_export, version=VERSION)
