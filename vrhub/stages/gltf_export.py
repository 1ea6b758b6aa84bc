"""Builtin ``export`` stage "gltf": GLB (glTF 2.0 binary) and VRM 1.0 files of a rigged avatar."""

from __future__ import annotations

from vrhub import hookimpl
from vrhub.export.gltf_writer import write_glb
from vrhub.pipeline.types import ExportedFiles, ExportOptions, RiggedAvatar

VERSION = "1.0"
FORMATS = ("glb", "vrm")


def gltf_export(avatar: RiggedAvatar, options: ExportOptions) -> ExportedFiles:
    """GLB with sparse ARKit morph targets, skin and embedded textures (and VRM 1.0 on request)."""
    unknown = [f for f in options.formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; available: {', '.join(FORMATS)}")
    files: dict[str, bytes] = {}
    if "glb" in options.formats:
        files["glb"] = write_glb(avatar, options)
    if "vrm" in options.formats:
        from vrhub.export.vrm import write_vrm

        files["vrm"] = write_vrm(avatar, options)
    return ExportedFiles(files)


@hookimpl
def register_stages(register):
    register("export", "gltf", gltf_export, version=VERSION)
