"""HMAC-signed room tokens (room, name, role, expiry) and resume tokens, signed with Settings.secret.

A token is ``base64url(json payload) + "." + base64url(hmac_sha256(secret, payload))``; payload
fields: ``room``, ``name``, ``role``, ``exp`` (unix seconds) and ``kind`` ("room" or "resume").
Verification returns a :class:`TokenClaims` or a :class:`TokenError` (never raises).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from vrhub.rooms.protocol import CloseCode

ROLES = ("participant", "host", "observer")
DEFAULT_TTL_S = 3600.0
MAX_TTL_S = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class TokenClaims:
    room: str
    name: str
    role: str
    exp: float
    kind: str = "room"
    participant: int | None = None


@dataclass(frozen=True, slots=True)
class TokenError:
    """Why a token was refused, with the websocket close code to use (4401 or 4403)."""

    close_code: int
    reason: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()


def issue_token(
    secret: str,
    room: str,
    name: str,
    role: str = "participant",
    ttl_s: float = DEFAULT_TTL_S,
    *,
    kind: str = "room",
    participant: int | None = None,
    now: float | None = None,
) -> tuple[str, float]:
    """Sign a token; returns ``(token, expiry unix seconds)``."""
    exp = (time.time() if now is None else now) + ttl_s
    claims: dict[str, object] = {"room": room, "name": name, "role": role, "exp": round(exp, 3), "kind": kind}
    if participant is not None:
        claims["participant"] = participant
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}", exp


def verify_token(
    secret: str, token: str, room: str, *, kind: str = "room", now: float | None = None
) -> TokenClaims | TokenError:
    """Check signature, expiry, kind and room. Bad/expired -> 4401; valid but other room/role -> 4403."""
    try:
        payload_b64, sig_b64 = token.split(".")
        payload = _unb64(payload_b64)
        sig = _unb64(sig_b64)
    except (ValueError, TypeError):
        return TokenError(CloseCode.UNAUTHORIZED, "malformed token")
    if not hmac.compare_digest(sig, _sign(secret, payload)):
        return TokenError(CloseCode.UNAUTHORIZED, "token signature is not valid")
    try:
        claims = json.loads(payload)
        parsed = TokenClaims(
            room=str(claims["room"]),
            name=str(claims.get("name", "")),
            role=str(claims.get("role", "participant")),
            exp=float(claims["exp"]),
            kind=str(claims.get("kind", "room")),
            participant=int(claims["participant"]) if "participant" in claims else None,
        )
    except (ValueError, KeyError, TypeError):
        return TokenError(CloseCode.UNAUTHORIZED, "token payload is not valid")
    if parsed.kind != kind:
        return TokenError(CloseCode.UNAUTHORIZED, f"a {parsed.kind} token cannot be used as a {kind} token")
    if parsed.exp < (time.time() if now is None else now):
        return TokenError(CloseCode.UNAUTHORIZED, "token expired")
    if parsed.room != room:
        return TokenError(CloseCode.FORBIDDEN, f"token is for room {parsed.room!r}, not {room!r}")
    if parsed.role not in ROLES:
        return TokenError(CloseCode.FORBIDDEN, f"role {parsed.role!r} may not join rooms")
    return parsed
