"""The example plugin's stage on its own: a valid hair-card mesh on a real head."""

from __future__ import annotations

import numpy as np
import pytest

from vrhub.pipeline.types import HairAttributes


@pytest.fixture(scope="module")
def head():
    from vrhub.geometry.head_template import get_head_template
    from vrhub.pipeline.types import HeadModel

    t = get_head_template()
    return HeadModel(
        vertices=(t.vertices * 0.01).astype(np.float32),
        triangles=t.triangles.astype(np.uint32),
        uvs=t.uvs.astype(np.float32),
        albedo=np.zeros((4, 4, 3), np.uint8),
        landmark_vertices=np.arange(468),
        regions=t.regions,
    )


def test_afro_puffs_are_two_puffs_above_the_head_in_the_hair_colour(head):
    from vrhub_hair_example import afro_puffs

    hair = afro_puffs(HairAttributes(colour_rgb=(30, 20, 15)), head)
    assert hair.style == "afro_puffs" and 0 < len(hair.triangles) <= 8000
    assert hair.triangles.max() < len(hair.vertices)
    top = head.vertices[:, 1].max()
    high = hair.vertices[hair.vertices[:, 1] > top]
    assert len(high) > 100
    assert (high[:, 0] > 0.02).any() and (high[:, 0] < -0.02).any()  # one puff on each side
    assert hair.texture[hair.texture[..., 3] > 128][:, :3].mean() < 40
