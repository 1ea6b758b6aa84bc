"""Builtin ``rig`` stage "procedural": skeleton, skin weights and the 52 ARKit blendshapes plus
15 visemes, computed from the head's own landmarks (see vrhub/geometry/blendshapes.py)."""

from __future__ import annotations

import numpy as np

from vrhub import hookimpl
from vrhub.geometry.blendshapes import EYE_LOOK_DEGREES, blendshapes_and_jaw
from vrhub.geometry.skinning import build_skin
from vrhub.pipeline.types import HairModel, HeadModel, RiggedAvatar

VERSION = "1.0"


def procedural_rig(head: HeadModel, hair: HairModel, *, reference: bool = False) -> RiggedAvatar:
    """Procedural ARKit rig: joints root/neck/head/jaw/eyes, smooth neck and jaw weights, 52 ARKit
    blendshapes and 15 visemes personalised to this head; hair bound rigidly to the head joint.

    reference : the original, slower code path (same rig to float32 rounding; for the bench and
    the equivalence test)."""
    names, deltas, jaw, eyes = blendshapes_and_jaw(
        head.vertices, head.regions, visemes=True, triangles=head.triangles, reference=reference
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


def warm_up() -> None:
    """Build the per-process topology cache (the head template's mesh adjacency, used to smooth
    the jaw weights) and run the rig once on the template head (metres), so the first job pays
    for neither."""
    from vrhub.geometry.head_template import get_head_template

    template = get_head_template()
    blendshapes_and_jaw(
        np.asarray(template.vertices, np.float64) * 0.01, template.regions, triangles=template.triangles
    )


@hookimpl
def register_stages(register):
    register("rig", "procedural", procedural_rig, version=VERSION)
