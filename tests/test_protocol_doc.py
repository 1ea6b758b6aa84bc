"""docs/protocol.md stays true: its hex examples encode/decode, its JSON messages are what the hub
sends and accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from rooms_testing import running_hub

from vrhub.client import join
from vrhub.pipeline.types import ARKIT_BLENDSHAPES
from vrhub.rooms.protocol import (
    HUB_MESSAGE_TYPES,
    ProtocolError,
    decode_control,
    decode_expression_frame,
    decode_room_frame,
    encode_expression_frame,
    encode_room_frame,
    room_entry,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
BLOCK = re.compile(r"```(json|hex) ([\w-]+)\n(.*?)```", re.S)


def _blocks() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for lang, name, body in BLOCK.findall(DOC.read_text()):
        found.setdefault((lang, name), []).append(body)
    return found


def _hex(body: str) -> bytes:
    data = b""
    for line in body.strip().splitlines():
        offset, _, rest = line.partition(":")
        assert int(offset, 16) == len(data), f"offset {offset} does not follow the previous line"
        data += bytes.fromhex(rest)
    return data


BLOCKS = _blocks()
FRAME_EXAMPLES = sorted(
    name for lang, name in BLOCKS if lang == "hex" and name.startswith("expression-frame")
)


def test_doc_has_examples():
    assert len(FRAME_EXAMPLES) >= 2 and ("hex", "room-frame-3") in BLOCKS


@pytest.mark.parametrize("name", FRAME_EXAMPLES)
def test_expression_frame_example_encodes_and_decodes(name):
    spec = json.loads(BLOCKS[("json", name)][0])
    wire = _hex(BLOCKS[("hex", name)][0])
    assert (
        encode_expression_frame(
            spec["seq"], spec["capture_ms"], spec["weights"], spec["rotation"], spec["position_mm"]
        )
        == wire
    )
    frame = decode_expression_frame(wire)
    assert not isinstance(frame, ProtocolError)
    assert frame.seq == spec["seq"] and frame.capture_ms == spec["capture_ms"]
    assert frame.position_mm == tuple(spec["position_mm"])
    np.testing.assert_allclose(frame.rotation, spec["rotation"], atol=1 / 32767)
    weights = frame.weights_dict()
    for blendshape in ARKIT_BLENDSHAPES:
        assert weights[blendshape] == pytest.approx(
            spec["weights"].get(blendshape, 0.0), abs=0.5 / 255 + 1e-6
        )


def test_room_frame_example_encodes_and_decodes():
    spec = json.loads(BLOCKS[("json", "room-frame-3")][0])
    wire = _hex(BLOCKS[("hex", "room-frame-3")][0])
    frames = {e["frame"]: _hex(BLOCKS[("hex", e["frame"])][0]) for e in spec["entries"]}
    entries = [room_entry(e["participant"], frames[e["frame"]]) for e in spec["entries"]]
    assert encode_room_frame(spec["tick"], entries) == wire
    decoded = decode_room_frame(wire)
    assert decoded.tick == spec["tick"]
    for e in spec["entries"]:
        assert decoded.frames[e["participant"]] == decode_expression_frame(
            frames[e["frame"]]
        ) or np.array_equal(
            decoded.frames[e["participant"]].weights, decode_expression_frame(frames[e["frame"]]).weights
        )


def test_client_message_examples_are_accepted():
    for body in BLOCKS[("json", "client-message")]:
        assert not isinstance(decode_control(body), ProtocolError), body


async def test_hub_message_examples_match_a_live_hub(tmp_path):
    documented = {}
    for body in BLOCKS[("json", "hub-message")]:
        msg = json.loads(body)
        assert msg["type"] in HUB_MESSAGE_TYPES
        documented[msg["type"]] = msg
    assert set(documented) == HUB_MESSAGE_TYPES
    seen = {}
    async with running_hub(tmp_path) as h:
        a = await join(h.url, "doc-room", "Ada")
        seen["welcome"] = a.welcome
        b = await join(h.url, "doc-room", "Bo")
        seen["joined"] = await a.next_event("joined")
        await b.set_avatar("a71e0b3c")
        seen["avatar_ready"] = await a.next_event("avatar_ready")
        await a.send_raw(bytes([9]) + bytes(73))
        seen["error"] = await a.next_event("error")
        await a.ping()
        seen["pong"] = await a.next_event("pong")
        await b.leave()
        seen["left"] = await a.next_event("left")
        await a.leave()
    for kind, msg in seen.items():
        assert set(msg) - {"name"} <= set(documented[kind]) and set(documented[kind]) <= set(msg) | {
            "name"
        }, kind
        for key in ("participant", "reason", "code", "avatar_url"):
            if key in documented[kind] and documented[kind][key] is not None:
                assert type(msg[key]) is type(documented[kind][key]), (kind, key)
