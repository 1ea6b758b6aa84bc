"""A websocket payload reader that takes expression frames off the socket without a task switch.

aiohttp parses websocket frames into a queue that the handler task awaits: every incoming frame
costs a future, a task wake-up and several coroutine layers. Expression frames (masked, final,
binary, 74 bytes: the overwhelming majority of traffic) are instead split off right in the
protocol's ``data_received``, unmasked and handed to a callback synchronously. Every other complete
frame (text, control, fragments, other sizes) is passed *whole* to aiohttp's own reader, which keeps
its full behaviour (pings, close, size limits, errors).

It plugs in where aiohttp keeps the reader after the upgrade (``request.protocol._payload_parser``,
an aiohttp internal with the interface ``feed_data(bytes) -> (eof, tail)`` / ``feed_eof()``);
:func:`install` checks the attribute and returns False (leaving aiohttp alone) if it is absent.
Ordering: frames taken on the fast path reach the room before text messages that arrived *earlier*
in the same read are handled by the task; the protocol has no ordering dependency there once joined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vrhub.rooms.protocol import EXPRESSION_FRAME_SIZE

_HEAD0 = 0x82  # FIN + binary
_HEAD1 = 0x80 | EXPRESSION_FRAME_SIZE  # masked, 7-bit length 74
_FRAME_LEN = 2 + 4 + EXPRESSION_FRAME_SIZE  # header + mask + payload = 80
_TILE = (EXPRESSION_FRAME_SIZE + 3) // 4
_PAYLOAD_BITS = (1 << (8 * EXPRESSION_FRAME_SIZE)) - 1
_NOT_EOF = (False, b"")

try:  # aiohttp's Cython in-place XOR (private API; 2-3x faster than the int trick below)
    from aiohttp._websocket.mask import _websocket_mask_cython as _mask_in_place
except ImportError:  # pragma: no cover - pure-Python aiohttp build
    _mask_in_place = None


def unmask(mask: bytes, payload: bytes) -> bytes | bytearray:
    """RFC 6455 §5.3 unmasking of a 74-byte payload."""
    if _mask_in_place is not None:
        out = bytearray(payload)
        _mask_in_place(mask, out)
        return out
    key = int.from_bytes(mask * _TILE, "little") & _PAYLOAD_BITS
    return (int.from_bytes(payload, "little") ^ key).to_bytes(EXPRESSION_FRAME_SIZE, "little")


class ExpressionFrameReader:
    """Wraps aiohttp's WebSocketReader; see the module docstring."""

    __slots__ = ("inner", "on_frame", "buf", "max_frame", "passthrough")

    def __init__(
        self, inner: Any, on_frame: Callable[[bytes | bytearray], None], max_frame: int = 64 * 1024
    ) -> None:
        self.inner = inner
        self.on_frame = on_frame
        self.buf = b""
        self.max_frame = max_frame
        self.passthrough = False

    def feed_eof(self) -> None:
        self.inner.feed_eof()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self.passthrough:
            return self.inner.feed_data(data)
        # The common case: the read holds exactly one expression frame.
        if len(data) == _FRAME_LEN and not self.buf and data[0] == _HEAD0 and data[1] == _HEAD1:
            self.on_frame(unmask(data[2:6], data[6:]))
            return _NOT_EOF
        buf = self.buf + data if self.buf else bytes(data)
        n = len(buf)
        pos = 0
        on_frame = self.on_frame
        while True:
            left = n - pos
            if left >= _FRAME_LEN and buf[pos] == _HEAD0 and buf[pos + 1] == _HEAD1:
                on_frame(unmask(buf[pos + 2 : pos + 6], buf[pos + 6 : pos + _FRAME_LEN]))
                pos += _FRAME_LEN
                continue
            if left < 2:
                break
            b1 = buf[pos + 1]
            size = b1 & 0x7F
            head = 2
            if size == 126:
                if left < 4:
                    break
                size = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif size == 127:
                if left < 10:
                    break
                size = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & 0x80:
                head += 4
            if size > self.max_frame:
                # Let aiohttp see the oversized frame (it closes with 1009); stop splitting.
                self.passthrough = True
                self.buf = b""
                return self.inner.feed_data(buf[pos:])
            if left < head + size:
                break
            eof, _ = self.inner.feed_data(buf[pos : pos + head + size])
            pos += head + size
            if eof:
                self.buf = b""
                return True, b""
        self.buf = buf[pos:] if pos < n else b""
        return _NOT_EOF


def install(request: Any, on_frame: Callable[[bytes | bytearray], None], max_frame: int) -> bool:
    """Put an :class:`ExpressionFrameReader` in front of aiohttp's reader of ``request``'s socket."""
    protocol = getattr(request, "protocol", None)
    inner = getattr(protocol, "_payload_parser", None)
    if inner is None or not hasattr(inner, "feed_data") or not hasattr(inner, "feed_eof"):
        return False
    protocol._payload_parser = ExpressionFrameReader(inner, on_frame, max_frame)  # type: ignore[union-attr]
    return True
