"""Blendshape contact sheet of vrhub's own head template (no photo involved), for the README.

    .venv/bin/python scripts/template_contact_sheet.py docs/img/blendshapes.jpg

The template head (vrhub/geometry/head_template.py) gets a plain skin-tone texture, goes through the
builtin rig and GLB export, and vrhub.export.contact_sheet draws every morph target at weight 1,
front and side, with what moves tinted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vrhub.export.contact_sheet import main as contact_sheet_main
from vrhub.geometry.head_template import get_head_template
from vrhub.pipeline.types import ExportOptions, HairModel, HeadModel
from vrhub.stages.gltf_export import gltf_export
from vrhub.stages.procedural_rig import procedural_rig


def template_head() -> HeadModel:
    t = get_head_template()
    albedo = np.empty((256, 256, 3), np.uint8)
    albedo[:] = (200, 160, 130)
    return HeadModel(
        vertices=(np.asarray(t.vertices, np.float64) * 0.01).astype(np.float32),
        triangles=np.asarray(t.triangles, np.uint32),
        uvs=np.asarray(t.uvs, np.float32),
        albedo=albedo,
        landmark_vertices=np.arange(468, dtype=np.int64),
        regions={k: np.asarray(v, np.int64) for k, v in t.regions.items()},
    )


def main(out: str) -> None:
    avatar = procedural_rig(template_head(), HairModel.empty())
    glb = gltf_export(avatar, ExportOptions(texture_size=256)).files["glb"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "template.glb"
        path.write_bytes(glb)
        sheet = Path(tmp) / "sheet.png"
        contact_sheet_main([str(path), str(sheet), "--tile", "160"])
        image = Image.open(sheet)
        image.thumbnail((1400, 1800))
        image.convert("RGB").save(out, quality=85, optimize=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img/blendshapes.jpg")
