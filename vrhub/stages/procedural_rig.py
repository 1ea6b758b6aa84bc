"""Builtin ``rig`` stage "procedural": skeleton, skin weights and the 52 ARKit blendshapes plus
15 visemes, computed from the head's own landmarks (see vrhub/geometry/blendshapes.py)."""

from __future__ import annotations

from vrhub import hookimpl
from vrhub.geometry.blendshapes import EYE_LOOK_DEGREES, blendshapes_and_jaw
from vrhub.geometry.skinning import build_skin
from vrhub.pipeline.types import HairModel, HeadModel, RiggedAvatar

VERSION = "1.0"


def procedural_rig(head: HeadModel, hair: HairModel) -> RiggedAvatar:
    """Procedural ARKit rig: joints root/neck/head/jaw/eyes, smooth neck and jaw weights, 52 ARKit
    blendshapes and 15 visemes personalised to this head; hair bound rigidly to the head joint."""
    names, deltas, jaw, eyes = blendshapes_and_jaw(
        head.vertices, head.regions, visemes=True, triangles=head.triangles
    )
    skin = build_skin(head.vertices, head.regions, jaw, eyes)
    attributes = {
        "rig": {
            "implementation": "procedural",
            "version": VERSION,
            "jaw_pivot": [float(x) for x in jaw.pivot],
            "jaw_axis": [float(x) for x in jaw.axis],
            "jaw_open_degrees": float(jaw.open_degrees),
            "eye_look_degrees": dict(EYE_LOOK_DEGREES),
        },
        "hair_style": hair.style,
    }
    return RiggedAvatar(
        head=head,
        hair=hair,
        joints=skin.joints,
        skin_joints=skin.skin_joints,
        skin_weights=skin.skin_weights,
        blendshape_names=names,
        blendshape_deltas=deltas,
        attributes=attributes,
    )


@hookimpl
def register_stages(register):
    register("rig", "procedural", procedural_rig, version=VERSION)
