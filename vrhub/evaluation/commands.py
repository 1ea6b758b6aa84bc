"""Commands this area adds to ``vrhub`` (found by :func:`vrhub.cli._area_commands`)."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    from vrhub.evaluation.cli import add_eval

    add_eval(sub)
