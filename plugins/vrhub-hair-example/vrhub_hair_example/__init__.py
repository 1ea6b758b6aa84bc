"""Example vrhub hair plugin: two afro puffs (slot ``hair_model``, name ``afro_puffs``).

A classroom developer's template: one function ``(HairAttributes, HeadModel) -> HairModel`` built
with vrhub's public hair-card helpers (``vrhub.hair.cards``), registered through the ``vrhub``
entry-point group. Select it per request (``?stages=hair_model:afro_puffs``), per server
(``VRHUB_STAGES=hair_model=afro_puffs``) or per command (``vrhub create --stages hair_model=afro_puffs``).
"""

from __future__ import annotations

import numpy as np

from vrhub import hookimpl
from vrhub.hair.cards import CardMesh, Hairline, ScalpSurface, cap_shell, finish, grow_strands, ribbons
from vrhub.pipeline.types import HairAttributes, HairModel, HeadModel

__version__ = "0.1.0"

#: triangles per puff (two puffs + the scalp cap stay under vrhub's 8k budget)
PUFF_STRANDS = 260
PUFF_STEPS = 6


def _puff(surface: ScalpSurface, side: float, seed: int) -> CardMesh:
    """A ball of tightly curled cards sitting on the upper side of the head (side = +1 left, -1 right)."""
    c, r = surface.centre, surface.radii
    centre = c + np.array([side * 0.62 * r[0], 0.78 * r[1], -0.15 * r[2]])
    radius = 0.055
    ball = ScalpSurface(centre, np.full(3, radius * 0.6), np.zeros((0, 3)))
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(PUFF_STRANDS, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    roots = centre + d * radius * 0.6
    paths = grow_strands(
        ball, roots, radius * 0.7, steps=PUFF_STEPS, lift=0.9, gravity=0.0,
        curl_amplitude=0.008, curl_turns=2.5, volume=0.0, hug=0.0, seed=seed,
    )  # fmt: skip
    return ribbons(paths, 0.02, ball, column=2, taper=0.3, facing="normal")


def afro_puffs(attributes: HairAttributes, head: HeadModel) -> HairModel:
    """Two afro puffs on a close scalp cap, in the photo's hair colour."""
    surface = ScalpSurface.from_head(head)
    hairline = Hairline(front_y=0.55)
    mesh = cap_shell(surface, hairline, offset=0.002)
    mesh = mesh + _puff(surface, +1.0, seed=1) + _puff(surface, -1.0, seed=2)
    return finish(mesh, tuple(int(v) for v in attributes.colour_rgb), style="afro_puffs")


@hookimpl
def register_stages(register) -> None:
    register(
        "hair_model",
        "afro_puffs",
        afro_puffs,
        version=__version__,
        description="two afro puffs (example plugin)",
    )
