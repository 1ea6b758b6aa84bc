"""Procedural hairstyles of alpha-textured hair cards (slot ``hair_model``).

``procedural`` picks the library style that matches the attributes (``vrhub.hair.styles.choose_style``);
``procedural_bun`` and ``procedural_ponytail`` force the tied-up styles (no attribute says "tied up").
The cards are fitted to the head's scalp, coloured from the photo, at most 8k triangles, with an RGBA
strand texture for alphaMode MASK on double-sided cards.
"""

from __future__ import annotations

from vrhub import hookimpl
from vrhub.hair.styles import build_hair
from vrhub.pipeline.types import HairAttributes, HairModel, HeadModel


def procedural_hair(attributes: HairAttributes, head: HeadModel) -> HairModel:
    """The library hairstyle matching the attributes, fitted to the head's scalp."""
    return build_hair(attributes, head)


def procedural_bun(attributes: HairAttributes, head: HeadModel) -> HairModel:
    """Hair combed back into a bun, in the photo's hair colour."""
    return build_hair(attributes, head, style="bun")


def procedural_ponytail(attributes: HairAttributes, head: HeadModel) -> HairModel:
    """Hair combed back into a ponytail, in the photo's hair colour."""
    return build_hair(attributes, head, style="ponytail")


@hookimpl
def register_stages(register) -> None:
    register(
        "hair_model",
        "procedural",
        procedural_hair,
        description="procedural hair-card library (bald, buzz, spiky, short/medium/long straight/wavy/curly, "
        "fringe and parting variants) chosen by the attributes",
    )
    register("hair_model", "procedural_bun", procedural_bun, description="procedural hair cards: a bun")
    register(
        "hair_model",
        "procedural_ponytail",
        procedural_ponytail,
        description="procedural hair cards: a ponytail",
    )
