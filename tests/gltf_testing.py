"""Test helpers for glTF files: the Khronos validator (npm gltf-validator) and the GLB JSON chunk."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = ROOT / "tests" / "js" / "validate_gltf.mjs"


def validate_glbs(paths: list[Path]) -> dict:
    """Run the Khronos glTF validator on files; its reports by path. Skips without node or the package."""
    if shutil.which("node") is None or not (ROOT / "node_modules" / "gltf-validator").is_dir():
        pytest.skip("node or node_modules/gltf-validator is missing (npm ci)")
    out = subprocess.run(
        ["node", str(VALIDATE), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout)


def glb_json(data: bytes) -> dict:
    """The JSON chunk of a GLB (asserting the GLB header is sound)."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data)
    n, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20 : 20 + n])
