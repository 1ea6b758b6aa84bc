"""The pluggy hook specifications of vrhub (marker name ``vrhub``).

Plugins write ``from vrhub import hookimpl`` and implement any of these. docs/plugins.md
documents each with its exact signature; tests/test_plugin_docs.py keeps the two in step.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("vrhub")
hookimpl = pluggy.HookimplMarker("vrhub")


@hookspec
def register_stages(register: Any) -> None:
    """Register stage implementations by calling ``register(slot, name, fn, version=..., description=...)``."""


@hookspec
def avatar_built(avatar: Any, asset: Any) -> None:
    """Called after an avatar is built: ``avatar`` is the RiggedAvatar, ``asset`` the AvatarAsset with its files."""


@hookspec
def startup(app: Any) -> None:
    """Called while the aiohttp application is being made; add routes or background tasks to ``app``."""
