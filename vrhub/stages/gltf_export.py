"""Builtin ``export`` stage "gltf": GLB (glTF 2.0 binary) and VRM 1.0 files of a rigged avatar."""

from __future__ import annotations

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
    """Build the per-process topology caches for the head template (the vertex-triangle table
    the morph-target normals use) now rather than in the first job."""
    from vrhub.export.gltf_writer import vertex_triangles
    from vrhub.geometry.head_template import get_head_template

    template = get_head_template()
    vertex_triangles(template.triangles, len(template.vertices))


@hookimpl
def register_stages(register):
    register("export", "gltf", gltf_export, version=VERSION)
