"""The plugin manager: builtin stage plugins, then entry points (group ``vrhub``), then slot selection.

Builtin stages are plugins of vrhub itself, registered through the same ``register_stages`` hook as
third-party ones. ``VRHUB_LOAD_PLUGINS=a,b`` loads only the named entry-point plugins (empty: none).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from vrhub.pipeline import hookspecs
from vrhub.pipeline.types import SLOTS

#: Builtin plugin modules, registered exactly like third-party plugins.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "vrhub.stages.mediapipe_detect",
    "vrhub.stages.landmark_segment",
    "vrhub.stages.landmark_head",
    "vrhub.stages.no_hair",
    "vrhub.stages.onnx_hair_attributes",
    "vrhub.stages.procedural_hair",
    "vrhub.stages.procedural_rig",
    "vrhub.stages.gltf_export",
)

#: The implementation each slot uses when neither the request nor the settings choose one.
BUILTIN_DEFAULTS: dict[str, str] = {
    "detect": "mediapipe",
    "segment": "landmarks",
    "reconstruct": "landmark_head",
    "hair_attributes": "onnx",
    "hair_model": "procedural",
    "rig": "procedural",
    "export": "gltf",
}


class SelectionError(ValueError):
    """An unknown slot or implementation was asked for; the message lists the valid ones."""

    def __init__(self, message: str, valid: dict[str, list[str]]):
        super().__init__(message)
        self.valid = valid


@dataclass(frozen=True)
class StageImpl:
    """One implementation of one slot, as a plugin registered it."""

    slot: str
    name: str
    fn: Callable[..., Any]
    plugin: str
    version: str
    description: str
    origin: str  # "builtin" or the distribution that provided the entry point

    def describe(self) -> dict[str, str]:
        return {
            "slot": self.slot,
            "name": self.name,
            "plugin": self.plugin,
            "version": self.version,
            "origin": self.origin,
            "description": self.description,
        }


class StageRegistry:
    """Every stage implementation, by slot and name."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, StageImpl]] = {slot: {} for slot in SLOTS}
        self.defaults: dict[str, str] = dict(BUILTIN_DEFAULTS)

    def add(self, impl: StageImpl) -> None:
        if impl.slot not in self.stages:
            raise ValueError(
                f"plugin {impl.plugin!r} registered unknown slot {impl.slot!r}; slots are {', '.join(SLOTS)}"
            )
        existing = self.stages[impl.slot].get(impl.name)
        if existing is not None and existing.plugin != impl.plugin:
            raise ValueError(
                f"plugin {impl.plugin!r} registered {impl.slot}:{impl.name}, already registered by {existing.plugin!r}"
            )
        self.stages[impl.slot][impl.name] = impl

    def set_defaults(self, defaults: Mapping[str, str]) -> None:
        """Make ``defaults`` (e.g. from VRHUB_STAGES) the choice when a request names none."""
        for slot, name in defaults.items():
            if slot not in self.stages:
                raise SelectionError(f"unknown slot {slot!r}; slots are {', '.join(SLOTS)}", self.valid())
            if name not in self.stages[slot]:
                names = ", ".join(sorted(self.stages[slot])) or "(none registered)"
                raise SelectionError(
                    f"no implementation {name!r} for slot {slot!r}; valid: {names}", self.valid()
                )
        self.defaults.update(defaults)

    def valid(self) -> dict[str, list[str]]:
        return {slot: sorted(names) for slot, names in self.stages.items()}

    def all(self) -> list[StageImpl]:
        return [impl for slot in SLOTS for impl in self.stages[slot].values()]

    def select(self, *choices: Mapping[str, str]) -> dict[str, StageImpl]:
        """Pick one implementation per slot: the first of ``choices`` that names the slot wins,
        then the builtin default. Raises SelectionError naming the valid slots and names."""
        chosen: dict[str, StageImpl] = {}
        for choice in choices:
            for slot in choice:
                if slot not in self.stages:
                    raise SelectionError(f"unknown slot {slot!r}; slots are {', '.join(SLOTS)}", self.valid())
        for slot in SLOTS:
            name = next((c[slot] for c in choices if slot in c), self.defaults[slot])
            impl = self.stages[slot].get(name)
            if impl is None:
                names = ", ".join(sorted(self.stages[slot])) or "(none registered)"
                raise SelectionError(
                    f"no implementation {name!r} for slot {slot!r}; valid: {names}", self.valid()
                )
            chosen[slot] = impl
        return chosen


def parse_selection(text: str | None, *, pair_sep: str = ",", kv_seps: str = "=:") -> dict[str, str]:
    """Parse ``"hair_model=braids,reconstruct:ict"`` (or repeated query values) into ``{slot: name}``."""
    result: dict[str, str] = {}
    if not text:
        return result
    for part in text.split(pair_sep):
        part = part.strip()
        if not part:
            continue
        for sep in kv_seps:
            if sep in part:
                slot, name = part.split(sep, 1)
                break
        else:
            raise SelectionError(
                f"cannot read stage choice {part!r}; write slot=name, e.g. hair_model=none",
                {},
            )
        result[slot.strip()] = name.strip()
    return result


def _plugin_name(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return getattr(plugin, "__name__", type(plugin).__name__)


def get_plugin_manager(load_entry_points: bool = True, builtins: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the specs, the builtin plugins and (optionally) entry points."""
    pm = pluggy.PluginManager("vrhub")
    pm.add_hookspecs(hookspecs)
    if os.environ.get("VRHUB_TRACE_PLUGINS"):
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    for module_name in DEFAULT_PLUGINS if builtins else ():
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        only = os.environ.get("VRHUB_LOAD_PLUGINS")
        if only is None:
            pm.load_setuptools_entrypoints("vrhub")
        else:
            wanted = {n.strip() for n in only.split(",") if n.strip()}
            for ep in importlib.metadata.entry_points(group="vrhub"):
                if ep.name in wanted and pm.get_plugin(ep.name) is None:
                    pm.register(ep.load(), name=ep.name)
    return pm


def _origins(pm: pluggy.PluginManager) -> dict[int, tuple[str, str]]:
    """Map id(plugin object) -> (origin, version)."""
    import vrhub

    result: dict[int, tuple[str, str]] = {}
    for plugin, dist in pm.list_plugin_distinfo():
        result[id(plugin)] = (dist.project_name, dist.version)
    for module_name in DEFAULT_PLUGINS:
        plugin = pm.get_plugin(module_name)
        if plugin is not None:
            result[id(plugin)] = ("builtin", vrhub.__version__)
    return result


def build_registry(pm: pluggy.PluginManager, defaults: Mapping[str, str] | None = None) -> StageRegistry:
    """Call every plugin's ``register_stages`` and collect what they register."""
    registry = StageRegistry()
    origins = _origins(pm)
    for impl in pm.hook.register_stages.get_hookimpls():
        plugin = impl.plugin
        origin, dist_version = origins.get(id(plugin), ("local", "0"))
        plugin_name = impl.plugin_name

        def register(
            slot: str,
            name: str,
            fn: Callable[..., Any],
            *,
            version: str | None = None,
            description: str = "",
            _plugin: str = plugin_name,
            _origin: str = origin,
            _version: str = dist_version,
        ) -> None:
            if not callable(fn):
                raise TypeError(f"plugin {_plugin!r} registered {slot}:{name} with a non-callable")
            registry.add(
                StageImpl(
                    slot=slot,
                    name=name,
                    fn=fn,
                    plugin=_plugin,
                    version=version or _version,
                    description=description or (fn.__doc__ or "").strip().split("\n")[0],
                    origin=_origin,
                )
            )

        impl.function(register=register)
    if defaults:
        registry.set_defaults(defaults)
    return registry


_cached: tuple[pluggy.PluginManager, StageRegistry] | None = None


def default_registry() -> StageRegistry:
    """The process-wide registry (builtin + entry points), made once."""
    global _cached
    if _cached is None:
        pm = get_plugin_manager()
        _cached = (pm, build_registry(pm))
    return _cached[1]


def default_plugin_manager() -> pluggy.PluginManager:
    default_registry()
    assert _cached is not None
    return _cached[0]


def reset_default_registry() -> None:
    """Forget the cached registry (tests that register plugins call this)."""
    global _cached
    _cached = None
