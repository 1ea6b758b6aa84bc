"""Codec and frame-splitting unit tests: errors are values, the fast reader splits any chunking."""

from __future__ import annotations

import os

import numpy as np
import pytest

from vrhub.rooms.frame_reader import ExpressionFrameReader, unmask
from vrhub.rooms.protocol import (
    EXPRESSION_FRAME_SIZE,
    ProtocolError,
    decode_expression_frame,
    decode_room_frame,
    encode_expression_frame,
    encode_room_frame,
    room_entry,
    room_frame_arrays,
    weights_to_u8,
    ws_frame,
)


def test_encode_decode_roundtrip_and_quantisation():
    rng = np.random.default_rng(1)
    w = rng.random(52)
    frame = encode_expression_frame(70000, 2**32 + 5, w, (0, 0, 2, 0), (1, 2, 3))
    assert isinstance(frame, bytes) and len(frame) == EXPRESSION_FRAME_SIZE
    back = decode_expression_frame(frame)
    assert back.seq == 70000 & 0xFFFF and back.capture_ms == 5  # both wrap
    assert back.rotation == (0.0, 0.0, 1.0, 0.0)  # normalised
    np.testing.assert_allclose(back.weights_float, w, atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"weights": {"jawOpen": 0.5, "notAShape": 1}}, "bad_weights"),
        ({"weights": [0.1] * 51}, "bad_weights"),
        ({"weights": [float("nan")] * 52}, "bad_weights"),
        ({"weights": [0.0] * 52, "rotation": (0, 0, 0, 0)}, "bad_rotation"),
        ({"weights": [0.0] * 52, "position_mm": (0, 0, 40000)}, "bad_position"),
    ],
)
def test_encode_errors_are_values(kwargs, code):
    err = encode_expression_frame(1, 1, **kwargs)
    assert isinstance(err, ProtocolError) and err.code == code and err.message


def test_decode_errors_are_values():
    good = encode_expression_frame(1, 1, [0.0] * 52)
    assert decode_expression_frame(good[:-1]).code == "bad_frame"
    assert decode_expression_frame(b"\x02" + good[1:]).code == "bad_version"
    assert decode_room_frame(b"\x02\x00").code == "bad_room_frame"
    room = encode_room_frame(1, [room_entry(5, good)])
    assert decode_room_frame(room + b"\x00").code == "bad_room_frame"
    assert decode_room_frame(b"\x07" + room[1:]).code == "bad_kind"
    arr = room_frame_arrays(room)
    assert arr["participant"].tolist() == [5]
    assert isinstance(weights_to_u8({"bogus": 1.0}), ProtocolError)


def test_ws_frame_lengths():
    assert ws_frame(b"x" * 10)[:2] == b"\x82\x0a"
    assert ws_frame(b"x" * 300)[:4] == b"\x82\x7e\x01\x2c"
    assert ws_frame(b"x" * 70000)[:2] == b"\x82\x7f"
    assert ws_frame(b"{}", opcode=1)[:2] == b"\x81\x02"


class _Inner:
    def __init__(self) -> None:
        self.fed: list[bytes] = []
        self.eof = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.fed.append(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.eof = True


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = (
        bytes([0x80 | opcode, 0x80 | n])
        if n < 126
        else bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    )
    return head + mask + body


@pytest.mark.parametrize("chunk", [1, 3, 7, 80, 81, 1000])
def test_fast_reader_splits_frames_at_any_chunking(chunk):
    frames = [encode_expression_frame(i, i, np.full(52, i / 10)) for i in range(5)]
    text = _masked(1, b'{"type":"ping"}')
    big = _masked(2, b"\x01" * 300)
    stream = (
        _masked(2, frames[0])
        + text
        + _masked(2, frames[1])
        + big
        + b"".join(_masked(2, f) for f in frames[2:])
    )
    got: list[bytes] = []
    inner = _Inner()
    reader = ExpressionFrameReader(inner, lambda d: got.append(bytes(d)))
    for i in range(0, len(stream), chunk):
        assert reader.feed_data(stream[i : i + chunk]) == (False, b"")
    assert got == frames
    assert inner.fed == [text, big]  # everything else reaches aiohttp's reader whole
    reader.feed_eof()
    assert inner.eof


def test_fast_reader_hands_oversized_frames_to_aiohttp():
    inner = _Inner()
    reader = ExpressionFrameReader(inner, lambda d: None, max_frame=100)
    huge = _masked(2, b"\x00" * 200)
    reader.feed_data(huge[:50])
    reader.feed_data(huge[50:])
    assert b"".join(inner.fed) == huge and reader.passthrough


def test_unmask_matches_rfc6455():
    payload = bytes(range(74))
    mask = b"\x01\x02\x03\x04"
    assert bytes(unmask(mask, payload)) == bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
