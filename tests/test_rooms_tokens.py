"""Room tokens: HMAC-signed (room, name, role, expiry) from the admin endpoint; 4401/4403 closes."""

from __future__ import annotations

import aiohttp
import pytest
from rooms_testing import running_hub

from vrhub.client import JoinError, join
from vrhub.rooms.tokens import TokenClaims, TokenError, issue_token, verify_token

SECRET = "s3cret-for-tests"


def test_token_roundtrip_and_refusals():
    token, exp = issue_token(SECRET, "room-a", "Ada", "host", 60, now=1000.0)
    claims = verify_token(SECRET, token, "room-a", now=1010.0)
    assert claims == TokenClaims("room-a", "Ada", "host", exp)
    assert verify_token(SECRET, token, "room-b", now=1010.0) == TokenError(
        4403, "token is for room 'room-a', not 'room-b'"
    )
    assert verify_token(SECRET, token, "room-a", now=2000.0) == TokenError(4401, "token expired")
    assert verify_token("other", token, "room-a", now=1010.0).close_code == 4401
    assert verify_token(SECRET, "garbage", "room-a").close_code == 4401
    payload, sig = token.split(".")
    assert verify_token(SECRET, payload[:-2] + "xx." + sig, "room-a").close_code == 4401
    resume, _ = issue_token(SECRET, "room-a", "Ada", kind="resume", participant=3)
    assert verify_token(SECRET, resume, "room-a").close_code == 4401  # a resume token is not a room token


async def _token(url: str, room: str, key: str, **body) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{url}/api/rooms/{room}/tokens", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as r:
            return r.status, await r.json()


async def test_token_endpoint_requires_admin_key(tmp_path):
    async with running_hub(tmp_path, secret=SECRET, admin_key="adm1n", open_rooms=False) as h:
        status, body = await _token(h.url, "class-1", "wrong", name="Ada")
        assert status == 403 and body["error"]["code"] == "forbidden"
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{h.url}/api/rooms/class-1/tokens", json={"name": "x"}) as r:
                assert r.status == 401
        status, body = await _token(h.url, "class-1", "adm1n", name="Ada", role="king")
        assert status == 400 and body["error"]["code"] == "bad_role"
        status, body = await _token(h.url, "class-1", "adm1n", name="Ada", role="host", ttl=600)
        assert status == 200 and body["role"] == "host"
        a = await join(h.url, "class-1", "ignored", token=body["token"])
        assert a.welcome["name"] == "Ada" and a.welcome["role"] == "host"
        await a.leave()


async def test_closed_rooms_refuse_missing_bad_and_foreign_tokens(tmp_path):
    async with running_hub(tmp_path, secret=SECRET, admin_key="adm1n", open_rooms=False) as h:
        with pytest.raises(JoinError) as err:
            await join(h.url, "class-2", "Ada")
        assert err.value.code == 4401 and "token" in err.value.reason
        with pytest.raises(JoinError) as err:
            await join(h.url, "class-2", "Ada", token="abc.def")
        assert err.value.code == 4401
        expired, _ = issue_token(SECRET, "class-2", "Ada", ttl_s=-5)
        with pytest.raises(JoinError) as err:
            await join(h.url, "class-2", "Ada", token=expired)
        assert err.value.code == 4401 and err.value.reason == "token expired"
        foreign, _ = issue_token(SECRET, "class-9", "Ada")
        with pytest.raises(JoinError) as err:
            await join(h.url, "class-2", "Ada", token=foreign)
        assert err.value.code == 4403 and "class-9" in err.value.reason


async def test_admin_endpoint_disabled_without_admin_key(tmp_path):
    async with running_hub(tmp_path, secret=SECRET, admin_key="") as h:
        status, body = await _token(h.url, "class-3", "", name="Ada")
        assert status == 403 and body["error"]["code"] == "admin_disabled"


async def test_observer_token_cannot_send_frames(tmp_path):
    async with running_hub(tmp_path, secret=SECRET) as h:
        token, _ = issue_token(SECRET, "class-4", "Watcher", role="observer")
        obs = await join(h.url, "class-4", "x", token=token)
        await obs.send_frame({"jawOpen": 1.0})
        err = await obs.next_event("error")
        assert err["code"] == "forbidden"
        assert h.hub.stats.frames_in == 0
        await obs.leave()
