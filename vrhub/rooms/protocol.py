"""The rooms wire format: binary expression frames, batched room frames and JSON control messages.

All binary layouts are little-endian (``docs/protocol.md`` has worked hex examples):

Expression frame, client -> hub, :data:`EXPRESSION_FRAME_SIZE` = 74 bytes::

    offset size  field
    0      u8    version            (PROTOCOL_VERSION = 1)
    1      u8    kind               (KIND_EXPRESSION = 1)
    2      u16   seq                (sender's counter, wraps at 65536)
    4      u32   capture time, ms   (sender's clock, wraps)
    8      4xi16 head rotation quaternion x, y, z, w, each scaled by 32767
    16     3xi16 head position x, y, z in millimetres
    22     52xu8 ARKit blendshape weights 0..255 in ARKIT_BLENDSHAPES order

The *frame body* is bytes 2..74 (72 bytes: everything after version and kind).

Room frame, hub -> client: ``kind u8 (KIND_ROOM = 2), tick u32, count u16`` (7 bytes), then
``count`` entries of ``participant u16 + frame body`` (74 bytes each).

Decoders never raise on bad input: they return a :class:`ProtocolError` value naming what is wrong.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vrhub.pipeline.types import ARKIT_BLENDSHAPES

PROTOCOL_VERSION = 1
KIND_EXPRESSION = 1
KIND_ROOM = 2

EXPRESSION_FRAME_SIZE = 74
FRAME_BODY_SIZE = EXPRESSION_FRAME_SIZE - 2  # 72
ROOM_ENTRY_SIZE = 2 + FRAME_BODY_SIZE  # 74
ROOM_HEADER_SIZE = 7
N_WEIGHTS = 52
QUAT_SCALE = 32767.0

_FRAME = struct.Struct("<BBHI4h3h52B")
_HEAD = struct.Struct("<BBHI4h3h")  # the 22 bytes before the weights
ROOM_HEADER_STRUCT = struct.Struct("<BIH")
_U16 = struct.Struct("<H")
assert _FRAME.size == EXPRESSION_FRAME_SIZE

#: numpy view of one room entry (participant + body); used to decode a room frame in one call.
ROOM_ENTRY_DTYPE = np.dtype(
    [
        ("participant", "<u2"),
        ("seq", "<u2"),
        ("capture_ms", "<u4"),
        ("rotation", "<i2", (4,)),
        ("position_mm", "<i2", (3,)),
        ("weights", "u1", (N_WEIGHTS,)),
    ]
)
assert ROOM_ENTRY_DTYPE.itemsize == ROOM_ENTRY_SIZE

#: JSON message types a client may send, and those the hub sends.
CLIENT_MESSAGE_TYPES = frozenset({"hello", "set_avatar", "leave", "ping"})
HUB_MESSAGE_TYPES = frozenset({"welcome", "joined", "left", "avatar_ready", "error", "pong"})


class CloseCode:
    """Websocket close codes the hub uses (4xxx = application defined, RFC 6455 §7.4.2)."""

    GOING_AWAY = 1001
    BAD_REQUEST = 4400  # repeated protocol violations, or hello was invalid
    UNAUTHORIZED = 4401  # no token where one is required, bad signature, expired token
    FORBIDDEN = 4403  # token valid but for another room, or the role may not join
    TIMEOUT = 4408  # handshake never finished, or idle for longer than the idle timeout
    ROOM_FULL = 4409
    TOO_LARGE = 4413  # message over the size limit
    FLOOD = 4429  # frames far over the per-participant rate
    TOO_SLOW = 4503  # send buffer over the hard limit even after skipping ticks


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A decode/validation failure, as a value: ``code`` is machine readable, ``message`` for people."""

    code: str
    message: str

    def as_message(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True, eq=False)
class ExpressionFrame:
    """One participant's face state at one instant.

    weights : (52,) uint8, ARKit order, 0..255 (255 = fully on)
    rotation : (4,) float, unit quaternion x, y, z, w
    position_mm : (3,) int, head position in millimetres
    """

    seq: int
    capture_ms: int
    rotation: tuple[float, float, float, float]
    position_mm: tuple[int, int, int]
    weights: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExpressionFrame):
            return NotImplemented
        return (self.seq, self.capture_ms, self.rotation, self.position_mm) == (
            other.seq,
            other.capture_ms,
            other.rotation,
            other.position_mm,
        ) and np.array_equal(self.weights, other.weights)

    __hash__ = None  # type: ignore[assignment]

    @property
    def weights_float(self) -> np.ndarray:
        """(52,) float32 in 0..1."""
        return self.weights.astype(np.float32) / 255.0

    def weights_dict(self) -> dict[str, float]:
        return dict(zip(ARKIT_BLENDSHAPES, self.weights_float.tolist(), strict=True))


@dataclass(frozen=True, slots=True)
class RoomFrame:
    """A decoded room frame: the tick number and the frames it carries, keyed by participant id."""

    tick: int
    frames: dict[int, ExpressionFrame]


def weights_to_u8(weights: Mapping[str, float] | Sequence[float] | np.ndarray) -> np.ndarray | ProtocolError:
    """Blendshape weights (dict by ARKit name, or 52 floats in 0..1) -> (52,) uint8.

    Values are clipped to 0..1 and rounded. Unknown names are an error; missing names are 0.
    """
    if isinstance(weights, Mapping):
        unknown = set(weights) - set(ARKIT_BLENDSHAPES)
        if unknown:
            return ProtocolError("bad_weights", f"unknown blendshape names: {', '.join(sorted(unknown))}")
        arr = np.array([float(weights.get(n, 0.0)) for n in ARKIT_BLENDSHAPES], dtype=np.float64)
    else:
        arr = np.asarray(weights, dtype=np.float64).reshape(-1)
        if arr.shape != (N_WEIGHTS,):
            return ProtocolError("bad_weights", f"expected {N_WEIGHTS} weights, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        return ProtocolError("bad_weights", "weights must be finite numbers")
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_expression_frame(
    seq: int,
    capture_ms: int,
    weights: Mapping[str, float] | Sequence[float] | np.ndarray,
    rotation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
    position_mm: Sequence[float] = (0, 0, 0),
) -> bytes | ProtocolError:
    """Pack one expression frame (74 bytes). ``weights`` as for :func:`weights_to_u8`; a
    ``uint8`` array of 52 is taken as already quantised."""
    if isinstance(weights, np.ndarray) and weights.dtype == np.uint8:
        w = weights.reshape(-1)
        if w.shape != (N_WEIGHTS,):
            return ProtocolError("bad_weights", f"expected {N_WEIGHTS} weights, got {w.size}")
    else:
        w = weights_to_u8(weights)
        if isinstance(w, ProtocolError):
            return w
    q = np.asarray(rotation, dtype=np.float64).reshape(-1)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        return ProtocolError("bad_rotation", "rotation must be 4 finite numbers (x, y, z, w)")
    norm = float(np.linalg.norm(q))
    if norm < 1e-6:
        return ProtocolError("bad_rotation", "rotation quaternion has zero length")
    qi = np.rint(np.clip(q / norm, -1.0, 1.0) * QUAT_SCALE).astype(np.int64)
    p = np.asarray(position_mm, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)) or np.any(np.abs(p) > 32767):
        return ProtocolError("bad_position", "position must be 3 numbers in -32767..32767 mm")
    pi = np.rint(p).astype(np.int64)
    head = _HEAD.pack(
        PROTOCOL_VERSION,
        KIND_EXPRESSION,
        seq & 0xFFFF,
        capture_ms & 0xFFFFFFFF,
        *qi.tolist(),
        *pi.tolist(),
    )
    return head + w.tobytes()


def check_expression_frame(data: bytes) -> ProtocolError | None:
    """Validate an incoming binary message as an expression frame (size, version, kind)."""
    if len(data) != EXPRESSION_FRAME_SIZE:
        return ProtocolError(
            "bad_frame", f"expression frame must be {EXPRESSION_FRAME_SIZE} bytes, got {len(data)}"
        )
    if data[0] != PROTOCOL_VERSION:
        return ProtocolError(
            "bad_version", f"protocol version {data[0]} is not supported (this hub speaks {PROTOCOL_VERSION})"
        )
    if data[1] != KIND_EXPRESSION:
        return ProtocolError(
            "bad_kind", f"frame kind {data[1]} is not an expression frame ({KIND_EXPRESSION})"
        )
    return None


def _body_to_frame(
    seq: int, capture_ms: int, rot: Sequence[int], pos: Sequence[int], w: np.ndarray
) -> ExpressionFrame:
    return ExpressionFrame(
        seq=int(seq),
        capture_ms=int(capture_ms),
        rotation=tuple(float(v) / QUAT_SCALE for v in rot),  # type: ignore[arg-type]
        position_mm=tuple(int(v) for v in pos),  # type: ignore[arg-type]
        weights=np.array(w, dtype=np.uint8),
    )


def decode_expression_frame(data: bytes) -> ExpressionFrame | ProtocolError:
    err = check_expression_frame(data)
    if err is not None:
        return err
    fields = _HEAD.unpack_from(data)
    w = np.frombuffer(data, dtype=np.uint8, count=N_WEIGHTS, offset=_HEAD.size)
    return _body_to_frame(fields[2], fields[3], fields[4:8], fields[8:11], w)


def room_entry(participant: int, frame: bytes) -> bytes:
    """The room-frame entry for a validated 74-byte expression frame: participant u16 + body."""
    return _U16.pack(participant) + frame[2:]


def encode_room_frame(tick: int, entries: Iterable[bytes]) -> bytes:
    """Header + the given entries (each from :func:`room_entry`), in one buffer."""
    entries = list(entries)
    return ROOM_HEADER_STRUCT.pack(KIND_ROOM, tick & 0xFFFFFFFF, len(entries)) + b"".join(entries)


def decode_room_frame(data: bytes) -> RoomFrame | ProtocolError:
    if len(data) < ROOM_HEADER_SIZE:
        return ProtocolError("bad_room_frame", f"room frame shorter than its {ROOM_HEADER_SIZE}-byte header")
    kind, tick, count = ROOM_HEADER_STRUCT.unpack_from(data)
    if kind != KIND_ROOM:
        return ProtocolError("bad_kind", f"frame kind {kind} is not a room frame ({KIND_ROOM})")
    expected = ROOM_HEADER_SIZE + count * ROOM_ENTRY_SIZE
    if len(data) != expected:
        return ProtocolError(
            "bad_room_frame", f"room frame with {count} entries must be {expected} bytes, got {len(data)}"
        )
    rec = np.frombuffer(data, dtype=ROOM_ENTRY_DTYPE, count=count, offset=ROOM_HEADER_SIZE)
    frames = {
        int(r["participant"]): _body_to_frame(
            r["seq"], r["capture_ms"], r["rotation"], r["position_mm"], r["weights"]
        )
        for r in rec
    }
    return RoomFrame(tick=int(tick), frames=frames)


def room_frame_arrays(data: bytes) -> np.ndarray | ProtocolError:
    """Decode a room frame to a structured array of :data:`ROOM_ENTRY_DTYPE` (no per-entry objects)."""
    if len(data) < ROOM_HEADER_SIZE or data[0] != KIND_ROOM:
        return ProtocolError("bad_room_frame", "not a room frame")
    count = ROOM_HEADER_STRUCT.unpack_from(data)[2]
    if len(data) != ROOM_HEADER_SIZE + count * ROOM_ENTRY_SIZE:
        return ProtocolError("bad_room_frame", "room frame length does not match its count")
    return np.frombuffer(data, dtype=ROOM_ENTRY_DTYPE, count=count, offset=ROOM_HEADER_SIZE)


# ----------------------------------------------------------------------------- JSON control messages

MAX_NAME_LENGTH = 64
MAX_AVATAR_ID_LENGTH = 128


def decode_control(text: str) -> dict[str, Any] | ProtocolError:
    """Parse a client's JSON text frame: must be an object with a known ``type``; fields checked."""
    try:
        msg = json.loads(text)
    except ValueError as exc:
        return ProtocolError("bad_json", f"message is not valid JSON: {exc}")
    if not isinstance(msg, dict):
        return ProtocolError("bad_message", f"message must be a JSON object, got {type(msg).__name__}")
    kind = msg.get("type")
    if not isinstance(kind, str):
        return ProtocolError("bad_message", "message has no string 'type'")
    if kind not in CLIENT_MESSAGE_TYPES:
        return ProtocolError(
            "unknown_type",
            f"unknown message type {kind[:40]!r}; known: {', '.join(sorted(CLIENT_MESSAGE_TYPES))}",
        )
    if kind == "hello":
        name = msg.get("name", "")
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
            return ProtocolError(
                "bad_message", f"hello.name must be a string of at most {MAX_NAME_LENGTH} characters"
            )
    if kind in ("hello", "set_avatar"):
        avatar = msg.get("avatar_id")
        if avatar is not None and (
            not isinstance(avatar, str) or not 0 < len(avatar) <= MAX_AVATAR_ID_LENGTH
        ):
            return ProtocolError("bad_message", f"{kind}.avatar_id must be null or a non-empty string")
        if kind == "set_avatar" and avatar is None:
            return ProtocolError("bad_message", "set_avatar needs an avatar_id")
    if kind == "hello":
        resume = msg.get("resume")
        if resume is not None and not isinstance(resume, str):
            return ProtocolError("bad_message", "hello.resume must be a string (the resume token)")
    return msg


def encode_control(kind: str, **fields: Any) -> str:
    """A hub -> client JSON message (compact)."""
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


# ----------------------------------------------------------------------------- raw websocket framing


def ws_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """An unmasked, unfragmented server->client websocket frame (RFC 6455 §5.2) around ``payload``.

    The hub prepares this once per tick and writes the same bytes to every client of the room.
    opcode 0x2 = binary, 0x1 = text.
    """
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload
