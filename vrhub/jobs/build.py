"""What a worker does with one job: photo blob in, avatar blobs and a JSON-able outcome out.

``build_avatar`` runs in a worker process (local pool or ``vrhub worker``) or, for tests, a thread
of the hub. It never touches the database: the caller records the outcome. Progress goes to the
``progress`` callback, or, in a pool process, to the queue the pool was started with.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing.queues
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from vrhub.blobs import BlobStore
from vrhub.jobs.avatar_file import load_avatar, save_avatar
from vrhub.pipeline.plugins import (
    SelectionError,
    StageRegistry,
    build_registry,
    get_plugin_manager,
)
from vrhub.pipeline.run import PipelineError, StageFailed, call_stage, run_pipeline
from vrhub.pipeline.types import AvatarAsset, ExportOptions, RiggedAvatar

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]

#: Set in pool processes by ``init_worker``: where progress messages go.
_progress_queue: multiprocessing.queues.Queue | None = None
_managers: dict[tuple[str, ...] | None, pluggy.PluginManager] = {}
_registries: dict[tuple[tuple[str, ...] | None, tuple[tuple[str, str], ...]], StageRegistry] = {}


def init_worker(queue: multiprocessing.queues.Queue | None) -> None:
    """Pool initializer: remember the progress queue."""
    global _progress_queue
    _progress_queue = queue


def warm_up(plugin_modules: Sequence[str] | None = None) -> int:
    """Run in each pool process at hub start: import the stage plugins (numpy, OpenCV, mediapipe,
    onnxruntime ...) and call each plugin's optional module-level ``warm_up()`` (model graphs,
    template caches) before the first photo arrives. Returns the pid."""
    import os

    pm, _ = load_plugins(plugin_modules)
    for plugin in pm.get_plugins():
        warm = getattr(plugin, "warm_up", None)
        if callable(warm):
            try:
                warm()
            except Exception:  # a failed warm-up only costs time; the job itself will report
                log.exception("warm-up of plugin %s failed", pm.get_name(plugin))
    return os.getpid()


def load_plugins(
    plugin_modules: Sequence[str] | None = None, defaults: dict[str, str] | None = None
) -> tuple[pluggy.PluginManager, StageRegistry]:
    """The plugin manager and stage registry of this process, made once per argument set.

    ``plugin_modules=None``: the builtin plugins and entry points. Otherwise only the named
    modules (tests use this to run the hub machinery on fixture stages).
    """
    modules = None if plugin_modules is None else tuple(plugin_modules)
    if modules not in _managers:
        if modules is None:
            pm = get_plugin_manager()
        else:
            import importlib

            pm = get_plugin_manager(load_entry_points=False, builtins=False)
            for name in modules:
                pm.register(importlib.import_module(name), name=name)
        _managers[modules] = pm
    pm = _managers[modules]
    key = (modules, tuple(sorted((defaults or {}).items())))
    if key not in _registries:
        _registries[key] = build_registry(pm, defaults or None)
    return pm, _registries[key]


@dataclass(frozen=True)
class BuildRequest:
    """Everything a worker needs, picklable."""

    job_id: str
    avatar_id: str
    photo_key: str
    blob_dir: str
    stages: dict[str, str] = field(default_factory=dict)  # the request's choice
    default_stages: dict[str, str] = field(default_factory=dict)  # the settings' choice
    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    stage_timeout: float | None = 120.0
    #: GLB always; other formats listed here are made too (a failure costs a warning). The hub
    #: makes VRM on first download instead, to keep builds short.
    formats: tuple[str, ...] = ("glb",)
    plugin_modules: tuple[str, ...] | None = None
    #: Render the avatar in the photo's pose and store the likeness NME in its quality report.
    measure_likeness: bool = True


def jsonable(value: Any) -> Any:
    """Round-trip through JSON, turning numpy scalars/arrays and tuples into plain values."""

    def default(obj: Any) -> Any:
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.asdict(obj)
        return str(obj)

    return json.loads(json.dumps(value, default=default))


def _failed(
    code: str, message: str, detail: dict[str, Any] | None = None, timings: Any = None
) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": {"code": code, "message": message, "detail": detail or {}},
        "timings": timings or {},
    }


def _measure_likeness(result: Any) -> dict[str, Any]:
    """The stage's quality report plus the measured likeness NME (render + re-detection); never fails
    the avatar: a measuring error is a warning in the report."""
    t0 = time.perf_counter()
    try:
        from vrhub.evaluation.likeness import quality_report

        quality = quality_report(result.avatar, result.face)
    except Exception as exc:  # noqa: BLE001 - the avatar is fine; only its measurement failed
        log.warning("likeness measurement failed", exc_info=True)
        quality = dict(result.avatar.head.quality)
        quality["warnings"] = [*quality.get("warnings", []), f"likeness not measured: {exc}"]
        quality["nme_percent"] = None
    quality["nme_seconds"] = round(time.perf_counter() - t0, 3)
    return quality


def build_avatar(request: BuildRequest, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Build the avatar of ``request``; returns the outcome (``status`` ready or failed), never raises.

    Outcome keys: status, blobs (name -> key), timings (slot -> s), attributes (JSON), error.
    """
    if progress is None and _progress_queue is not None:
        queue = _progress_queue

        def progress(stage: str, fraction: float) -> None:
            queue.put((request.job_id, stage, fraction))

    store = BlobStore(Path(request.blob_dir))
    timings: dict[str, float] = {}
    try:
        from vrhub.photo_io import decode_photo

        pm, registry = load_plugins(request.plugin_modules, request.default_stages)
        stages = registry.select(request.stages, request.default_stages)
        if progress:
            progress("decode", 0.0)
        photo = decode_photo(
            store.get(request.photo_key), max_bytes=request.max_bytes, max_pixels=request.max_pixels
        )
        primary = tuple(f for f in request.formats if f == "glb") or ("glb",)
        result = run_pipeline(
            photo,
            stages,
            ExportOptions(formats=primary),
            progress=progress,
            time_limit=request.stage_timeout,
        )
        timings = dict(result.timings)
        files = dict(result.files)
        warnings = list(result.warnings)
        extra = tuple(f for f in request.formats if f not in files)
        if extra:
            # Extra formats (VRM) are a bonus: an export stage that cannot write them costs a warning,
            # not the avatar.
            t0 = time.perf_counter()
            try:
                exported = call_stage(
                    stages["export"],
                    result.avatar,
                    ExportOptions(formats=extra),
                    time_limit=request.stage_timeout,
                )
                files.update({k: v for k, v in exported.files.items() if k not in files})
            except StageFailed as exc:
                warnings.append(f"no {'/'.join(extra).upper()} file: {exc}")
            timings["export_extra"] = time.perf_counter() - t0
        asset = AvatarAsset(
            avatar_id=request.avatar_id, files=files, timings=dict(timings), stages=result.stages
        )
        for impl in pm.hook.avatar_built.get_hookimpls():
            try:
                impl.function(avatar=result.avatar, asset=asset)
            except Exception as exc:  # noqa: BLE001 - a post-processing plugin must not lose the avatar
                log.warning("avatar_built of plugin %s failed", impl.plugin_name, exc_info=True)
                warnings.append(
                    f"plugin {impl.plugin_name} (avatar_built) failed: {type(exc).__name__}: {exc}"
                )
        if "glb" not in asset.files:
            impl = stages["export"]
            raise StageFailed("export", impl.plugin, impl.name, "produced no GLB file", "stage_no_glb")
        blobs = {"avatar": store.put(save_avatar(result.avatar))}
        for fmt, data in asset.files.items():
            blobs[fmt] = store.put(data)
        head = result.avatar.head
        quality = head.quality
        if request.measure_likeness:
            quality = _measure_likeness(result)
        attributes = {
            "hair": dataclasses.asdict(result.attributes),
            "quality": quality,
            "warnings": warnings,
            "stages": result.stages,
            "faces_found": result.face.faces_found,
            "blendshapes": len(result.avatar.blendshape_names),
            "vertices": int(len(head.vertices)),
        }
        return {"status": "ready", "blobs": blobs, "timings": timings, "attributes": jsonable(attributes)}
    except StageFailed as exc:
        detail = {"slot": exc.slot, "plugin": exc.plugin, "name": exc.name}
        return _failed(exc.code, str(exc), detail, timings)
    except PipelineError as exc:
        return _failed(exc.code, str(exc), jsonable(exc.detail), timings)
    except SelectionError as exc:
        return _failed("unknown_stage", str(exc), {"valid": exc.valid}, timings)
    except Exception as exc:  # noqa: BLE001 - report, never crash the worker
        log.error("build of avatar %s crashed:\n%s", request.avatar_id, traceback.format_exc())
        return _failed("internal_error", f"the build crashed: {type(exc).__name__}: {exc}", None, timings)


def reexport(
    avatar_bytes: bytes,
    export_name: str,
    options: ExportOptions,
    plugin_modules: tuple[str, ...] | None = None,
    time_limit: float | None = None,
) -> dict[str, bytes]:
    """Export a stored avatar again (other LOD, texture size, visemes) through the export slot."""
    _pm, registry = load_plugins(plugin_modules)
    impl = registry.stages["export"].get(export_name)
    if impl is None:
        raise SelectionError(
            f"the export stage {export_name!r} that built this avatar is no longer installed",
            registry.valid(),
        )
    avatar: RiggedAvatar = load_avatar(avatar_bytes)
    return call_stage(impl, avatar, options, time_limit=time_limit).files
