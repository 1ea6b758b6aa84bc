"""mediapipe's canonical face mesh (468 vertices, 898 triangles, UVs), read at run time from npm.

The mesh is not in the Python wheel; the npm package ``@mediapipe/face_mesh`` carries it inside
``face_mesh_solution_packed_assets.data`` (an uncompressed Emscripten file package whose file table
lives in ``face_mesh_solution_packed_assets_loader.js``). The entry
``face_geometry/data/geometry_pipeline_metadata_landmarks.binarypb`` parses with mediapipe's own
``geometry_pipeline_metadata_pb2``. Nothing of the mesh is stored in this repository.

Conventions of the returned :class:`CanonicalFace`:

- ``vertices`` are centimetres, +Y up, +Z toward the viewer (mediapipe's own frame, unchanged).
- ``uvs`` follow glTF: origin at the texture's top-left, v grows downward. Checked on the data:
  in the file the forehead (landmark 10) has v = 0.107 and the chin (152) v = 0.954, so the file's
  v already grows downward (image convention) and is used unchanged; ``1 - v`` would turn the
  face upside down in the texture. (ARCHITECTURE.md's "use 1 - v" note is wrong on this point.)
- ``triangles`` are counter-clockwise seen from outside the face. In the file, 888 of 898
  triangles face the viewer (+Z); the other 10 are NOT inverted: they are already edge-consistent
  with their neighbours (every interior edge is used once in each direction) and their normals
  point down (-Y), because they lie on the underside of the upper lip (8) and under the nostrils
  (2), where "outside" is below. They are kept as they are; :func:`edge_consistent_orientation`
  runs anyway, so a package with a genuinely flipped triangle is repaired.
- The mesh covers the eyes and the mouth: 18 triangles span the lip opening and 14 each the eye
  openings (see :data:`MOUTH_RING`, :data:`EYE_RING_L`, :data:`EYE_RING_R`); the head template
  removes them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

PACKAGE = "@mediapipe/face_mesh"
DATA_FILE = "face_mesh_solution_packed_assets.data"
LOADER_FILE = "face_mesh_solution_packed_assets_loader.js"
ENTRY_SUFFIX = "face_geometry/data/geometry_pipeline_metadata_landmarks.binarypb"

N_VERTICES = 468
N_TRIANGLES = 898

#: Inner lip contour, counter-clockwise seen from the front (mediapipe indices).
MOUTH_RING: tuple[int, ...] = (
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
)  # fmt: skip
#: Lid contour of the avatar's left eye (+X; the subject's left; landmark 263 is its outer corner).
EYE_RING_L: tuple[int, ...] = (
    263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,
)  # fmt: skip
#: Lid contour of the avatar's right eye (-X; landmark 33 is its outer corner).
EYE_RING_R: tuple[int, ...] = (
    33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
)  # fmt: skip
#: Cheek and nose landmarks, where a face shows plain skin (skin colour samples).
SKIN_SAMPLE_LANDMARKS: tuple[int, ...] = (50, 280, 101, 330, 4, 195, 5, 205, 425, 36, 266)


class CanonicalFaceMissing(FileNotFoundError):
    """node_modules/@mediapipe/face_mesh could not be found or read."""


@dataclass(frozen=True, eq=False)
class CanonicalFace:
    """The canonical face mesh.

    vertices : (468, 3) float64 — centimetres, +Y up, +Z toward the viewer.
    uvs : (468, 2) float64 — glTF convention (origin top-left, v down).
    triangles : (898, 3) int64 — counter-clockwise seen from outside (the viewer).
    procrustes_weights : (468,) float64 — mediapipe's Procrustes landmark weights (33 non-zero).
    mirror : (468,) int64 — the landmark at the mirrored position (x -> -x) of each landmark.
    source : where the mesh was read from.
    """

    vertices: np.ndarray
    uvs: np.ndarray
    triangles: np.ndarray
    procrustes_weights: np.ndarray
    mirror: np.ndarray
    source: Path

    @property
    def boundary_loops(self) -> list[np.ndarray]:
        """Boundary loops of the mesh as vertex index arrays, longest first (outer rim, lips, eyes)."""
        return boundary_loops(self.triangles)


def _candidate_dirs(node_modules: Path | None) -> list[Path]:
    if node_modules is not None:
        return [Path(node_modules)]
    found: list[Path] = []
    env = os.environ.get("VRHUB_NODE_MODULES")
    if env:
        found.append(Path(env))
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            found.append(folder / "node_modules")
    return found


def find_face_mesh_package(node_modules: Path | None = None) -> Path:
    """Folder of ``@mediapipe/face_mesh``: given ``node_modules``, else $VRHUB_NODE_MODULES, else the
    first ``node_modules`` walking up from this package and from the working directory."""
    tried = _candidate_dirs(node_modules)
    for nm in tried:
        pkg = nm / PACKAGE
        if (pkg / DATA_FILE).is_file() and (pkg / LOADER_FILE).is_file():
            return pkg
    shown = ", ".join(str(p) for p in dict.fromkeys(tried[:4]))
    raise CanonicalFaceMissing(
        f"cannot find {PACKAGE} (needed for the canonical face mesh); looked in {shown}. "
        "Run `npm install` in the project folder, or set VRHUB_NODE_MODULES / Settings.node_modules "
        "to the folder that holds node_modules/@mediapipe/face_mesh."
    )


def _read_entry(pkg: Path) -> bytes:
    loader = (pkg / LOADER_FILE).read_text(encoding="utf-8", errors="replace")
    for match in re.finditer(r"\{[^{}]*\"filename\"[^{}]*\}", loader):
        entry = json.loads(match.group(0))
        if entry["filename"].endswith(ENTRY_SUFFIX):
            start, end = int(entry["start"]), int(entry["end"])
            with (pkg / DATA_FILE).open("rb") as fh:
                fh.seek(start)
                blob = fh.read(end - start)
            if len(blob) != end - start:
                raise CanonicalFaceMissing(f"{pkg / DATA_FILE} is truncated (entry {start}-{end})")
            return blob
    raise CanonicalFaceMissing(f"{pkg / LOADER_FILE} lists no {ENTRY_SUFFIX}")


def edge_consistent_orientation(triangles: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Flip the triangles whose winding disagrees with their neighbours.

    triangles : (m, 3) int — a connected, orientable, manifold-with-boundary mesh.
    vertices : (n, 3) float — used only to choose the global sign (normals mostly toward +Z).
    Returns (m, 3) int64, consistently wound. Breadth-first over shared edges (m is small).
    """
    tris = np.asarray(triangles, np.int64).copy()
    m = len(tris)
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    owner = np.tile(np.arange(m), 3)
    key = np.sort(edges, axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    k = key[order]
    same = np.all(k[1:] == k[:-1], axis=1)
    pairs = np.stack([owner[order][:-1][same], owner[order][1:][same]], 1)
    neighbours: list[list[int]] = [[] for _ in range(m)]
    for a, b in pairs.tolist():
        neighbours[a].append(b)
        neighbours[b].append(a)
    done = np.zeros(m, bool)
    done[0] = True
    queue = [0]
    while queue:
        t = queue.pop()
        te = {(tris[t, i], tris[t, (i + 1) % 3]) for i in range(3)}
        for u in neighbours[t]:
            if done[u]:
                continue
            ue = {(tris[u, i], tris[u, (i + 1) % 3]) for i in range(3)}
            if te & ue:  # same directed edge in both: u is wound the other way
                tris[u] = tris[u, ::-1]
            done[u] = True
            queue.append(u)
    v = np.asarray(vertices, np.float64)
    normals = np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]])
    if normals[:, 2].sum() < 0:
        tris = tris[:, ::-1].copy()
    return tris


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Closed boundary loops of a consistently wound mesh, longest first.

    triangles : (m, 3) int. Returns a list of (k,) int64 arrays; each loop follows the direction of
    its boundary edges as the triangles wind them.
    """
    tris = np.asarray(triangles, np.int64)
    directed = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    fwd = {(int(a), int(b)) for a, b in directed}
    boundary = [(a, b) for a, b in fwd if (b, a) not in fwd]
    nxt = dict(boundary)
    loops: list[np.ndarray] = []
    seen: set[int] = set()
    for a, _ in sorted(boundary):
        if a in seen:
            continue
        loop = [a]
        seen.add(a)
        cur = nxt[a]
        while cur != a:
            loop.append(cur)
            seen.add(cur)
            cur = nxt[cur]
        loops.append(np.array(loop, np.int64))
    loops.sort(key=len, reverse=True)
    return loops


@lru_cache(maxsize=4)
def _load(pkg: Path) -> CanonicalFace:
    from mediapipe.modules.face_geometry.protos import geometry_pipeline_metadata_pb2 as gpm

    meta = gpm.GeometryPipelineMetadata()
    meta.ParseFromString(_read_entry(pkg))
    buf = np.asarray(meta.canonical_mesh.vertex_buffer, np.float64).reshape(-1, 5)
    if len(buf) != N_VERTICES:
        raise CanonicalFaceMissing(f"canonical mesh in {pkg} has {len(buf)} vertices, expected 468")
    tris = np.asarray(meta.canonical_mesh.index_buffer, np.int64).reshape(-1, 3)
    if len(tris) != N_TRIANGLES:
        raise CanonicalFaceMissing(f"canonical mesh in {pkg} has {len(tris)} triangles, expected 898")
    vertices = buf[:, :3].copy()
    uvs = buf[:, 3:5].copy()
    weights = np.zeros(N_VERTICES, np.float64)
    for ref in meta.procrustes_landmark_basis:
        weights[ref.landmark_id] = ref.weight
    tris = edge_consistent_orientation(tris, vertices)
    mirrored = vertices * np.array([-1.0, 1.0, 1.0])
    dist = np.linalg.norm(mirrored[:, None, :] - vertices[None, :, :], axis=2)
    mirror = np.argmin(dist, axis=1).astype(np.int64)
    for arr in (vertices, uvs, tris, weights, mirror):
        arr.setflags(write=False)
    return CanonicalFace(
        vertices=vertices, uvs=uvs, triangles=tris, procrustes_weights=weights, mirror=mirror, source=pkg
    )


def load_canonical_face(node_modules: Path | None = None) -> CanonicalFace:
    """The canonical face mesh, read once per process from ``@mediapipe/face_mesh``.

    node_modules : folder holding ``@mediapipe/face_mesh``; default: $VRHUB_NODE_MODULES, else the
    nearest ``node_modules`` above this package or the working directory.
    Raises :class:`CanonicalFaceMissing` with a message saying how to install it.
    """
    if node_modules is None:
        return _load(_default_package())
    return _load(find_face_mesh_package(node_modules).resolve())


@lru_cache(maxsize=1)
def _default_package() -> Path:
    """The default package folder, looked up once per process (it is on every hot path)."""
    return find_face_mesh_package(None).resolve()
