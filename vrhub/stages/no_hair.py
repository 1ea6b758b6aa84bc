"""The "no hair" implementations of both hair slots: every avatar is built bald.

These are honest placeholders, not estimates: ``hair_attributes:none`` does no hair analysis at all
(``source="none"``, empty ``confidence``), and ``hair_model:none`` returns an empty HairModel, so the
exported avatar has no hair mesh. Select them with ``?stages=hair_attributes:none,hair_model:none``.
"""

from __future__ import annotations

from vrhub import hookimpl
from vrhub.pipeline.types import (
    FaceObservation,
    HairAttributes,
    HairModel,
    HeadModel,
    Photo,
    Segmentation,
)


def no_hair_attributes(photo: Photo, face: FaceObservation, segmentation: Segmentation) -> HairAttributes:
    """No hair analysis: every avatar is built bald (source="none", no confidences)."""
    return HairAttributes(
        length="bald",
        texture="straight",
        spikiness="flat",
        fringe="none",
        parting="none",
        baldness="full",
        headwear="none",
        confidence={},
        source="none",
    )


def no_hair_model(attributes: HairAttributes, head: HeadModel) -> HairModel:
    """No hair mesh: every avatar is built bald (an empty HairModel)."""
    return HairModel.empty("none")


@hookimpl
def register_stages(register) -> None:
    register(
        "hair_attributes",
        "none",
        no_hair_attributes,
        description="no hair analysis: every avatar is built bald (source='none', no confidences)",
    )
    register(
        "hair_model",
        "none",
        no_hair_model,
        description="no hair mesh: every avatar is built bald (empty HairModel)",
    )
