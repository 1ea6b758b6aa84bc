"""Blendshape contact sheet: every morph target of an avatar GLB at weight 1, front and side.

    python -m vrhub.export.contact_sheet AVATAR.glb OUT.png [--tile 180] [--columns 6]

Reads the GLB back (so it shows what the file holds, sparse targets included) and draws the head
mesh with a small painter's-algorithm renderer (flat Lambert shading of the albedo texture; no
GPU needed). Tiles: neutral first, then every target in file order; each tile shows the front
view and the view from the avatar's left side (+X); what moves is tinted red (full red at 6 mm) and the largest
displacement is printed per tile.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

_DTYPES = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@dataclass(frozen=True)
class GlbHead:
    """The head mesh of a GLB: vertices (n, 3), triangles (m, 3), uvs (n, 2), texture (h, w, 3)
    uint8, target_names, targets (k, n, 3) float32 (sparse accessors expanded)."""

    vertices: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray
    texture: np.ndarray
    target_names: list[str]
    targets: np.ndarray


def read_glb_head(data: bytes, mesh_name: str = "head") -> GlbHead:
    """Read the mesh called ``mesh_name`` (else the first mesh with targets) from GLB bytes."""
    _, _, _ = struct.unpack_from("<4sII", data, 0)
    n_json, _ = struct.unpack_from("<I4s", data, 12)
    doc = json.loads(data[20 : 20 + n_json])
    off = 20 + n_json
    n_bin, _ = struct.unpack_from("<I4s", data, off)
    blob = data[off + 8 : off + 8 + n_bin]

    def view_bytes(i: int) -> bytes:
        bv = doc["bufferViews"][i]
        start = bv.get("byteOffset", 0)
        return blob[start : start + bv["byteLength"]]

    def accessor(i: int) -> np.ndarray:
        acc = doc["accessors"][i]
        width = _WIDTH[acc["type"]]
        dtype = _DTYPES[acc["componentType"]]
        if "bufferView" in acc:
            raw = view_bytes(acc["bufferView"])
            arr = np.frombuffer(raw, dtype, acc["count"] * width, acc.get("byteOffset", 0)).reshape(
                acc["count"], width
            )
            arr = arr.copy()
        else:
            arr = np.zeros((acc["count"], width), dtype)
        sp = acc.get("sparse")
        if sp:
            idx = np.frombuffer(
                view_bytes(sp["indices"]["bufferView"]), _DTYPES[sp["indices"]["componentType"]], sp["count"]
            )
            vals = np.frombuffer(view_bytes(sp["values"]["bufferView"]), dtype, sp["count"] * width).reshape(
                -1, width
            )
            arr[idx.astype(np.int64)] = vals
        return arr

    meshes = doc["meshes"]
    mesh = next((m for m in meshes if m.get("name") == mesh_name), None)
    if mesh is None:
        mesh = next(m for m in meshes if m["primitives"][0].get("targets"))
    prim = mesh["primitives"][0]
    attrs = prim["attributes"]
    vertices = accessor(attrs["POSITION"]).astype(np.float64)
    tris = accessor(prim["indices"]).reshape(-1, 3).astype(np.int64)
    uvs = (
        accessor(attrs["TEXCOORD_0"]).astype(np.float64)
        if "TEXCOORD_0" in attrs
        else np.zeros((len(vertices), 2))
    )
    texture = np.full((4, 4, 3), 200, np.uint8)
    mat = doc["materials"][prim["material"]] if "material" in prim else {}
    tex_info = mat.get("pbrMetallicRoughness", {}).get("baseColorTexture")
    if tex_info is not None:
        image = doc["images"][doc["textures"][tex_info["index"]]["source"]]
        texture = np.asarray(Image.open(io.BytesIO(view_bytes(image["bufferView"]))).convert("RGB"))
    targets = [accessor(t["POSITION"]).astype(np.float32) for t in prim.get("targets", [])]
    names = (mesh.get("extras") or {}).get("targetNames") or [f"target_{i}" for i in range(len(targets))]
    return GlbHead(vertices, tris, uvs, texture, list(names), np.array(targets).reshape(-1, len(vertices), 3))


def render(
    vertices: np.ndarray,
    triangles: np.ndarray,
    colours: np.ndarray,
    view: str,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
) -> Image.Image:
    """Painter's-algorithm render. view "front" (looking along -Z) or "side" (from +X).
    box: (u0, v0, u1, v1) metres of the view plane to fill ``size``; colours: (m, 3) float 0..255."""
    v = np.asarray(vertices, np.float64)
    if view == "front":
        uvz = np.stack([v[:, 0], v[:, 1], v[:, 2]], 1)
    else:
        uvz = np.stack([-v[:, 2], v[:, 1], v[:, 0]], 1)
    t = np.asarray(triangles, np.int64)
    p = uvz[t]  # (m, 3, 3)
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    length = np.linalg.norm(normal, axis=1)
    ok = (normal[:, 2] > 0) & (length > 0)
    light = np.array([0.35, 0.45, 0.82])
    light /= np.linalg.norm(light)
    shade = 0.25 + 0.75 * np.clip((normal[ok] / length[ok, None]) @ light, 0, 1)
    col = np.clip(colours[ok] * shade[:, None], 0, 255).astype(np.uint8)
    pts = p[ok]
    order = np.argsort(pts[:, :, 2].mean(1))
    w, h = size
    u0, v0, u1, v1 = box
    sx = (pts[:, :, 0] - u0) / (u1 - u0) * w
    sy = (v1 - pts[:, :, 1]) / (v1 - v0) * h
    img = Image.new("RGB", size, (40, 44, 52))
    draw = ImageDraw.Draw(img)
    for i in order.tolist():
        c = tuple(int(x) for x in col[i])
        draw.polygon([(sx[i, 0], sy[i, 0]), (sx[i, 1], sy[i, 1]), (sx[i, 2], sy[i, 2])], fill=c, outline=c)
    return img


def contact_sheet(head: GlbHead, tile: int = 180, columns: int = 6) -> Image.Image:
    """One image: neutral + every target, each as a front|side pair with its name."""
    v = head.vertices
    lm = v[:468] if len(v) >= 468 else v
    tex = head.texture
    th, tw = tex.shape[:2]
    uv = head.uvs[head.triangles].mean(1)
    colours = tex[
        np.clip((uv[:, 1] * th).astype(int), 0, th - 1), np.clip((uv[:, 0] * tw).astype(int), 0, tw - 1)
    ]
    colours = colours.astype(np.float64)
    lo, hi = lm.min(0), lm.max(0)
    pad = 0.12 * (hi[1] - lo[1])
    half_w = 0.5 * max(hi[0] - lo[0], hi[2] - lo[2]) + pad
    cy = 0.5 * (lo[1] + hi[1]) - 0.3 * pad
    half_h = 0.5 * (hi[1] - lo[1]) + pad
    cx, cz = 0.5 * (lo[0] + hi[0]), 0.5 * (lo[2] + hi[2])
    box_front = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    box_side = (-cz - half_w, cy - half_h, -cz + half_w, cy + half_h)
    th_px = int(tile * half_h / half_w)
    label = 16
    names = ["neutral", *head.target_names]
    rows = -(-len(names) // columns)
    sheet = Image.new("RGB", (columns * 2 * tile, rows * (th_px + label)), (20, 22, 26))
    draw = ImageDraw.Draw(sheet)
    for k, name in enumerate(names):
        d = np.zeros_like(v) if k == 0 else head.targets[k - 1].astype(np.float64)
        posed = v + d
        # tint what moves: red in proportion to the displacement (full at 6 mm)
        amount = np.clip(np.linalg.norm(d, axis=1)[head.triangles].mean(1) / 0.006, 0, 1)[:, None] * 0.55
        tinted = colours * (1 - amount) + np.array([255.0, 70.0, 50.0]) * amount
        r, c = divmod(k, columns)
        x0, y0 = c * 2 * tile, r * (th_px + label)
        sheet.paste(
            render(posed, head.triangles, tinted, "front", box_front, (tile, th_px)), (x0, y0 + label)
        )
        sheet.paste(
            render(posed, head.triangles, tinted, "side", box_side, (tile, th_px)), (x0 + tile, y0 + label)
        )
        moved = float(np.linalg.norm(d, axis=1).max()) * 100
        draw.text((x0 + 4, y0 + 2), f"{name}  max {moved:.1f} cm", fill=(230, 230, 230))
    return sheet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("glb", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tile", type=int, default=180)
    ap.add_argument("--columns", type=int, default=6)
    ap.add_argument("--only", help="comma-separated target names to draw")
    args = ap.parse_args(argv)
    head = read_glb_head(args.glb.read_bytes())
    if args.only:
        keep = [i for i, n in enumerate(head.target_names) if n in args.only.split(",")]
        head = GlbHead(
            head.vertices,
            head.triangles,
            head.uvs,
            head.texture,
            [head.target_names[i] for i in keep],
            head.targets[keep],
        )
    contact_sheet(head, args.tile, args.columns).save(args.out)
    print(f"wrote {args.out} ({len(head.target_names)} targets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
