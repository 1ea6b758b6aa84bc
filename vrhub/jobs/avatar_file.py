"""RiggedAvatar <-> bytes, without pickle: one ``.npz`` holding every array plus a JSON tree.

The JSON tree mirrors the dataclasses (RiggedAvatar, HeadModel, HairModel, Joint); arrays are
replaced by ``{"$array": "a<n>"}`` references into the npz, tuples by ``{"$tuple": [...]}`` and
dataclasses by ``{"$type": name, "fields": {...}}``. Loading accepts only the types listed in
``_TYPES`` and reads the npz with ``allow_pickle=False``, so an avatar file cannot run code.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import numpy as np

from vrhub.pipeline.types import HairModel, HeadModel, Joint, RiggedAvatar

FORMAT = "vrhub-avatar/1"
_TYPES: dict[str, type] = {cls.__name__: cls for cls in (RiggedAvatar, HeadModel, HairModel, Joint)}


class AvatarFileError(ValueError):
    pass


def save_avatar(avatar: RiggedAvatar) -> bytes:
    """Serialise ``avatar`` to bytes (an uncompressed npz; GLB-sized, a few MB)."""
    arrays: dict[str, np.ndarray] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            name = f"a{len(arrays)}"
            arrays[name] = np.ascontiguousarray(value)
            return {"$array": name}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            type_name = type(value).__name__
            if type_name not in _TYPES:
                raise AvatarFileError(f"cannot store a {type_name} in an avatar file")
            return {
                "$type": type_name,
                "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)},
            }
        if isinstance(value, tuple):
            return {"$tuple": [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        raise AvatarFileError(f"cannot store a {type(value).__name__} in an avatar file")

    tree = {"format": FORMAT, "avatar": encode(avatar)}
    arrays["__tree__"] = np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def load_avatar(data: bytes) -> RiggedAvatar:
    """Inverse of ``save_avatar``; raises AvatarFileError for anything else."""
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        tree = json.loads(npz["__tree__"].tobytes().decode())
    except Exception as exc:  # noqa: BLE001
        raise AvatarFileError(f"not an avatar file: {exc}") from exc
    if tree.get("format") != FORMAT:
        raise AvatarFileError(f"unknown avatar file format {tree.get('format')!r}")

    def decode(value: Any) -> Any:
        if isinstance(value, list):
            return [decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "$array" in value:
            return npz[value["$array"]]
        if "$tuple" in value:
            return tuple(decode(v) for v in value["$tuple"])
        if "$type" in value:
            cls = _TYPES.get(value["$type"])
            if cls is None:
                raise AvatarFileError(f"unknown type {value['$type']!r} in avatar file")
            return cls(**{k: decode(v) for k, v in value["fields"].items()})
        return {k: decode(v) for k, v in value.items()}

    avatar = decode(tree["avatar"])
    if not isinstance(avatar, RiggedAvatar):
        raise AvatarFileError("avatar file does not hold a RiggedAvatar")
    return avatar
