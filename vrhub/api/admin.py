"""The admin key (``VRHUB_ADMIN_KEY``): what only a hub's operator may do (issue room tokens, list
every avatar). Sent as ``Authorization: Bearer <admin_key>``; with no key configured these
endpoints are disabled."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from vrhub.config import Settings


def admin_refusal(settings: Settings, headers: Mapping[str, str], what: str) -> tuple[int, str, str] | None:
    """None when ``headers`` carry the admin key, else (HTTP status, error code, message).

    what : the action, for the message ("issuing room tokens", "listing all avatars")."""
    if not settings.admin_key:
        return 403, "admin_disabled", f"{what} requires VRHUB_ADMIN_KEY to be set on the hub"
    auth = headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return 401, "unauthorized", "send the admin key as 'Authorization: Bearer <admin_key>'"
    if not hmac.compare_digest(auth[7:].strip().encode(), settings.admin_key.encode()):
        return 403, "forbidden", "the admin key is not valid"
    return None
