"""VRM 1.0 export: the rigged head on a simple stylised low-poly body, with VRMC_vrm.

VRM 1.0's humanoid needs hips, spine, arms, hands, legs and feet, so the head gets a body: box
segments for torso, arms and legs (T-pose, facing +Z, feet on y = 0), sized from the head, in the
avatar's skin tone with a plain shirt, trousers and shoes, each segment bound rigidly to its bone.
The head keeps its own skeleton (root, neck, head, jaw, eye_L, eye_R); ``root`` hangs under
``upperChest`` and neck/head/jaw/eyes are the humanoid bones of the same names. Expressions: the
VRM presets (happy, angry, sad, relaxed, surprised, aa, ih, ou, ee, oh, blink, blinkLeft,
blinkRight, lookUp/Down/Left/Right, neutral) are mixtures of the ARKit morph targets, and every ARKit
shape is also a custom expression under its own name ("perfect sync"). lookAt uses the eye bones.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pygltflib as g

from vrhub.export.gltf_writer import GlbBuilder, asset_extras, build_avatar_scene, encode_image
from vrhub.geometry.blendshapes import VISEME_MIX
from vrhub.pipeline.types import ARKIT_BLENDSHAPES, ExportOptions, Joint, RiggedAvatar

#: VRM expression presets as ARKit mixtures.
PRESETS: dict[str, dict[str, float]] = {
    "happy": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.6, "cheekSquintRight": 0.6, "eyeSquintLeft": 0.4, "eyeSquintRight": 0.4},
    "angry": {"browDownLeft": 1.0, "browDownRight": 1.0, "eyeSquintLeft": 0.4, "eyeSquintRight": 0.4, "mouthFrownLeft": 0.6, "mouthFrownRight": 0.6, "noseSneerLeft": 0.3, "noseSneerRight": 0.3},
    "sad": {"browInnerUp": 1.0, "mouthFrownLeft": 0.8, "mouthFrownRight": 0.8, "mouthShrugLower": 0.3, "eyeSquintLeft": 0.2, "eyeSquintRight": 0.2},
    "relaxed": {"mouthSmileLeft": 0.45, "mouthSmileRight": 0.45, "eyeBlinkLeft": 0.25, "eyeBlinkRight": 0.25},
    "surprised": {"eyeWideLeft": 1.0, "eyeWideRight": 1.0, "browInnerUp": 1.0, "browOuterUpLeft": 1.0, "browOuterUpRight": 1.0, "jawOpen": 0.4},
    "aa": VISEME_MIX["viseme_aa"],
    "ih": VISEME_MIX["viseme_I"],
    "ou": VISEME_MIX["viseme_U"],
    "ee": VISEME_MIX["viseme_E"],
    "oh": VISEME_MIX["viseme_O"],
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "blinkLeft": {"eyeBlinkLeft": 1.0},
    "blinkRight": {"eyeBlinkRight": 1.0},
    "lookUp": {"eyeLookUpLeft": 1.0, "eyeLookUpRight": 1.0},
    "lookDown": {"eyeLookDownLeft": 1.0, "eyeLookDownRight": 1.0},
    "lookLeft": {"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0},
    "lookRight": {"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0},
    "neutral": {},
}  # fmt: skip

SHIRT = (72, 96, 128)
TROUSERS = (52, 54, 64)
SHOES = (32, 30, 30)
_BODY_COLOURS = ("skin", "shirt", "trousers", "shoes")


def _box(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An axis-aligned box: (24, 3) vertices (4 per face, for flat normals), (12, 3) triangles
    wound counter-clockwise from outside, (24, 3) normals."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float64)
    p = lo + corners * (hi - lo)
    # faces as corner indices (counter-clockwise seen from outside)
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    normals = [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)]
    verts = np.concatenate([p[list(f)] for f in faces])
    norms = np.repeat(np.array(normals, np.float64), 4, axis=0)
    tris = np.concatenate([np.array([[0, 1, 2], [0, 2, 3]]) + 4 * i for i in range(6)])
    return verts, tris, norms


def _body(
    avatar: RiggedAvatar,
) -> tuple[dict[str, np.ndarray], dict[str, str], list[tuple[str, np.ndarray, np.ndarray, str]]]:
    """Bone positions (head frame, metres), bone parents, and box segments (bone, lo, hi, colour)
    of a body sized from the head."""
    lm = avatar.head.vertices[:468].astype(np.float64)
    k = float(np.linalg.norm(lm[454] - lm[234])) / 0.153  # 1.0 for a canonical-sized face
    root = np.array(avatar.joints[0].position, np.float64)
    x0, y0, z0 = root
    z = z0 - 0.01 * k
    hips_y = y0 - 0.58 * k
    P = {
        "hips": (x0, hips_y, z),
        "spine": (x0, hips_y + 0.12 * k, z),
        "chest": (x0, y0 - 0.30 * k, z),
        "upperChest": (x0, y0 - 0.14 * k, z),
    }
    parents = {"hips": "", "spine": "hips", "chest": "spine", "upperChest": "chest"}
    segments: list[tuple[str, np.ndarray, np.ndarray, str]] = [
        ("hips", (x0 - 0.16 * k, hips_y - 0.08 * k, z - 0.10 * k), (x0 + 0.16 * k, hips_y + 0.12 * k, z + 0.10 * k), "trousers"),
        ("spine", (x0 - 0.15 * k, hips_y + 0.12 * k, z - 0.095 * k), (x0 + 0.15 * k, y0 - 0.30 * k, z + 0.095 * k), "shirt"),
        ("chest", (x0 - 0.19 * k, y0 - 0.30 * k, z - 0.11 * k), (x0 + 0.19 * k, y0 - 0.14 * k, z + 0.11 * k), "shirt"),
        ("upperChest", (x0 - 0.20 * k, y0 - 0.14 * k, z - 0.10 * k), (x0 + 0.20 * k, y0 - 0.02 * k, z + 0.09 * k), "shirt"),
    ]  # fmt: skip
    for side, s in (("left", 1.0), ("right", -1.0)):
        sh_y = y0 - 0.06 * k
        P[f"{side}Shoulder"] = (x0 + s * 0.05 * k, sh_y, z)
        P[f"{side}UpperArm"] = (x0 + s * 0.19 * k, sh_y, z)
        P[f"{side}LowerArm"] = (x0 + s * 0.46 * k, sh_y, z)
        P[f"{side}Hand"] = (x0 + s * 0.71 * k, sh_y, z)
        parents |= {f"{side}Shoulder": "upperChest", f"{side}UpperArm": f"{side}Shoulder", f"{side}LowerArm": f"{side}UpperArm", f"{side}Hand": f"{side}LowerArm"}  # fmt: skip
        leg_x = x0 + s * 0.09 * k
        P[f"{side}UpperLeg"] = (leg_x, hips_y - 0.05 * k, z)
        P[f"{side}LowerLeg"] = (leg_x, hips_y - 0.49 * k, z)
        P[f"{side}Foot"] = (leg_x, hips_y - 0.91 * k, z)
        parents |= {
            f"{side}UpperLeg": "hips",
            f"{side}LowerLeg": f"{side}UpperLeg",
            f"{side}Foot": f"{side}LowerLeg",
        }

        def seg(bone, a, b, half, colour, s=s):
            lo = np.minimum(a, b) - half
            hi = np.maximum(a, b) + half
            segments.append((bone, lo, hi, colour))

        r = np.array([0, 1.0, 1.0]) * 0.05 * k
        seg(
            f"{side}UpperArm",
            np.array(P[f"{side}UpperArm"]) + [s * -0.02 * k, 0, 0],
            np.array(P[f"{side}LowerArm"]),
            r + [0, 0.005 * k, 0.005 * k],
            "shirt",
        )
        seg(f"{side}LowerArm", np.array(P[f"{side}LowerArm"]), np.array(P[f"{side}Hand"]), r * 0.85, "skin")
        seg(
            f"{side}Hand",
            np.array(P[f"{side}Hand"]),
            np.array(P[f"{side}Hand"]) + [s * 0.16 * k, 0, 0],
            np.array([0, 0.045, 0.025]) * k,
            "skin",
        )
        rl = np.array([1.0, 0, 1.0]) * 0.075 * k
        seg(f"{side}UpperLeg", np.array(P[f"{side}UpperLeg"]), np.array(P[f"{side}LowerLeg"]), rl, "trousers")
        seg(
            f"{side}LowerLeg",
            np.array(P[f"{side}LowerLeg"]),
            np.array(P[f"{side}Foot"]),
            rl * 0.8,
            "trousers",
        )
        foot = np.array(P[f"{side}Foot"])
        segments.append(
            (
                f"{side}Foot",
                foot + np.array([-0.05, -0.06, -0.06]) * k,
                foot + np.array([0.05, 0.0, 0.2]) * k,
                "shoes",
            )
        )
    return {n: np.array(p, np.float64) for n, p in P.items()}, parents, segments


def _shifted(avatar: RiggedAvatar, offset: np.ndarray) -> RiggedAvatar:
    """The avatar moved by ``offset`` (3,) metres (head, hair and joints)."""
    head = replace(avatar.head, vertices=(avatar.head.vertices + offset).astype(np.float32))
    hair = avatar.hair
    if not hair.is_empty:
        hair = replace(hair, vertices=(hair.vertices + offset).astype(np.float32))
    joints = tuple(
        Joint(j.name, j.parent, tuple(float(c) for c in np.add(j.position, offset))) for j in avatar.joints
    )
    return replace(avatar, head=head, hair=hair, joints=joints)


def _body_texture(skin: tuple[int, int, int]) -> np.ndarray:
    tex = np.zeros((8, 32, 3), np.uint8)
    for i, c in enumerate((skin, SHIRT, TROUSERS, SHOES)):
        tex[:, i * 8 : (i + 1) * 8] = c
    return tex


def write_vrm(avatar: RiggedAvatar, options: ExportOptions | None = None, reference: bool = False) -> bytes:
    """The avatar as a VRM 1.0 file (GLB container with VRMC_vrm); ``reference``: the writer's
    original, slower code path (same file)."""
    options = options or ExportOptions()
    bones, parents, segments = _body(avatar)
    ground = min(float(lo[1]) for _, lo, _, _ in segments)
    offset = np.array([0.0, -ground, 0.0])
    avatar = _shifted(avatar, offset)
    bones = {n: p + offset for n, p in bones.items()}
    segments = [(b, lo + offset, hi + offset, c) for b, lo, hi, c in segments]

    builder = GlbBuilder(reference=reference)
    parts = build_avatar_scene(builder, avatar, options)
    joint_pos = {j.name: np.array(j.position) for j in avatar.joints}

    # body bones
    order = list(bones)  # parents were inserted before children
    node_of: dict[str, int] = {}
    for name in order:
        parent = parents[name]
        local = bones[name] - (bones[parent] if parent else 0.0)
        node_of[name] = builder.node(name=name, translation=[float(x) for x in local])
        if parent:
            builder.gltf.nodes[node_of[parent]].children.append(node_of[name])
    # hang the head skeleton under upperChest
    head_root = parts.joint_nodes[0]
    builder.gltf.nodes[head_root].translation = [float(x) for x in joint_pos["root"] - bones["upperChest"]]
    builder.gltf.nodes[node_of["upperChest"]].children.append(head_root)

    # body mesh, rigid per segment
    verts, tris, norms, uvs, joints = [], [], [], [], []
    body_joints = [node_of[n] for n in order]
    for bone, lo, hi, colour in segments:
        v, t, n = _box(lo, hi)
        tris.append(t + sum(len(x) for x in verts))
        verts.append(v)
        norms.append(n)
        col = _BODY_COLOURS.index(colour)
        uvs.append(np.tile([(col + 0.5) / 4.0, 0.5], (len(v), 1)))
        joints.append(np.full(len(v), order.index(bone)))
    n_body = sum(len(v) for v in verts)
    jw = np.zeros((n_body, 4), np.uint16)
    jw[:, 0] = np.concatenate(joints)
    ww = np.zeros((n_body, 4), np.float32)
    ww[:, 0] = 1.0
    ibm = np.tile(np.eye(4, dtype=np.float32), (len(order), 1, 1))
    for i, name in enumerate(order):
        ibm[i, :3, 3] = -bones[name]  # body bones have no rest rotation
    builder.gltf.skins.append(
        g.Skin(
            name="body_skeleton",
            joints=body_joints,
            skeleton=node_of["hips"],
            inverseBindMatrices=builder.accessor(
                np.ascontiguousarray(ibm.transpose(0, 2, 1).reshape(-1, 16), np.float32), target=None
            ),
        )
    )
    tex = builder.texture(encode_image(_body_texture(avatar.head.skin_tone), 32, "png"), "image/png", "body")
    mat = builder.material("body", tex, roughness=0.9)
    prim = builder.primitive(
        np.concatenate(verts),
        np.concatenate(tris),
        np.concatenate(uvs),
        mat,
        joints=jw,
        weights=ww,
        normals=np.concatenate(norms).astype(np.float32),
    )
    body_mesh = builder.mesh(g.Mesh(name="body", primitives=[prim]))
    body_node = builder.node(name="body_mesh", mesh=body_mesh, skin=len(builder.gltf.skins) - 1)

    roots = [node_of["hips"], parts.head_node, body_node] + (
        [parts.hair_node] if parts.hair_node is not None else []
    )
    builder.gltf.scenes.append(g.Scene(name="avatar", nodes=roots))
    builder.gltf.scene = 0
    builder.gltf.asset.extras = asset_extras(avatar, options)

    # VRMC_vrm
    names = list(parts.target_names)
    head_node = parts.head_node

    def binds(mix: dict[str, float]) -> list[dict]:
        return [
            {"node": head_node, "index": names.index(n), "weight": float(min(w, 1.0))}
            for n, w in mix.items()
            if n in names
        ]

    def expression(mix: dict[str, float]) -> dict:
        return {"morphTargetBinds": binds(mix), "isBinary": False, "overrideBlink": "none", "overrideLookAt": "none", "overrideMouth": "none"}  # fmt: skip

    jn = {j.name: parts.joint_nodes[i] for i, j in enumerate(avatar.joints)}
    human = {name: {"node": node_of[name]} for name in order}
    human |= {"neck": {"node": jn["neck"]}, "head": {"node": jn["head"]}, "jaw": {"node": jn["jaw"]}}
    human |= {"leftEye": {"node": jn["eye_L"]}, "rightEye": {"node": jn["eye_R"]}}
    eye_mid = 0.5 * (joint_pos["eye_L"] + joint_pos["eye_R"]) - joint_pos["head"]
    degrees = avatar.attributes.get("rig", {}).get(
        "eye_look_degrees", {"horizontal": 25.0, "up": 20.0, "down": 20.0}
    )
    vrmc = {
        "specVersion": "1.0",
        "meta": {
            "name": f"vrhub avatar {avatar.attributes.get('avatar_id', '')}".strip(),
            "version": "1",
            "authors": ["vrhub"],
            "licenseUrl": "https://vrm.dev/licenses/1.0/",
            "avatarPermission": "onlyAuthor",
            "commercialUsage": "personalNonProfit",
            "creditNotation": "required",
            "allowRedistribution": False,
            "modification": "prohibited",
            "allowExcessivelyViolentUsage": False,
            "allowExcessivelySexualUsage": False,
            "allowPoliticalOrReligiousUsage": False,
            "allowAntisocialOrHateUsage": False,
        },
        "humanoid": {"humanBones": human},
        "expressions": {
            "preset": {name: expression(mix) for name, mix in PRESETS.items()},
            "custom": {name: expression({name: 1.0}) for name in ARKIT_BLENDSHAPES if name in names},
        },
        "lookAt": {
            "offsetFromHeadBone": [float(x) for x in eye_mid],
            "type": "bone",
            "rangeMapHorizontalInner": {"inputMaxValue": 90.0, "outputScale": float(degrees["horizontal"])},
            "rangeMapHorizontalOuter": {"inputMaxValue": 90.0, "outputScale": float(degrees["horizontal"])},
            "rangeMapVerticalDown": {"inputMaxValue": 90.0, "outputScale": float(degrees["down"])},
            "rangeMapVerticalUp": {"inputMaxValue": 90.0, "outputScale": float(degrees["up"])},
        },
        "firstPerson": {
            "meshAnnotations": [
                {"node": node, "type": "thirdPersonOnly"}
                for node in (head_node, parts.hair_node)
                if node is not None
            ]
        },
    }
    builder.gltf.extensionsUsed = ["VRMC_vrm"]
    builder.gltf.extensions = {"VRMC_vrm": vrmc}
    return builder.to_glb()
