"""The ``vrhub`` command: serve, migrate, create, plugins, worker (and commands other areas add).

Each command is one small ``add_<name>(subparsers)`` function. Other areas add commands without
touching this file: a module ``vrhub/<package>/commands.py`` with ``add_commands(subparsers)``
is found and called (e.g. ``vrhub track``, ``vrhub bench``, ``vrhub eval``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import vrhub
from vrhub.config import Settings

Subparsers = Any  # argparse._SubParsersAction


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    try:
        return Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise SystemExit(f"vrhub: configuration error: {exc}") from None


def _add_plugins_module(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugins-module",
        action="append",
        metavar="MODULE",
        help="register only this stage plugin module (repeatable) instead of the builtin plugins and "
        "entry points; for developing and testing plugins",
    )


def _plugin_modules(args: argparse.Namespace) -> tuple[str, ...] | None:
    return tuple(args.plugins_module) if args.plugins_module else None


# --- serve ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from vrhub.app import run_server

    settings = _settings(args, host=args.host, port=args.port, job_workers=args.workers)
    try:
        run_server(settings, plugin_modules=_plugin_modules(args))
    except RuntimeError as exc:  # e.g. the database is not migrated
        print(f"vrhub serve: {exc}", file=sys.stderr)
        return 1
    return 0


def add_serve(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run the hub (HTTP API, web client, rooms, local jobs)")
    p.add_argument("--host", help="address to listen on (VRHUB_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (VRHUB_PORT, default 8080)")
    p.add_argument("--workers", type=int, help="build processes (VRHUB_JOB_WORKERS)")
    _add_plugins_module(p)
    p.set_defaults(func=cmd_serve)


# --- migrate ----------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from vrhub.db.engine import migrate

    settings = _settings(args)
    url = args.url or settings.database_url
    migrate(url, args.revision)
    print(f"database {make_url(url).render_as_string(hide_password=True)} is at revision {args.revision}")
    return 0


def add_migrate(sub: Subparsers) -> None:
    p = sub.add_parser("migrate", help="create or upgrade the database schema (alembic)")
    p.add_argument("--url", help="database URL (default: VRHUB_DATABASE_URL or var/vrhub.db)")
    p.add_argument("--revision", default="head", help="target revision (default head)")
    p.set_defaults(func=cmd_migrate)


# --- create -----------------------------------------------------------------------------------


def cmd_create(args: argparse.Namespace) -> int:
    from vrhub.jobs.build import load_plugins
    from vrhub.photo_io import decode_photo
    from vrhub.pipeline.plugins import SelectionError, parse_selection
    from vrhub.pipeline.run import PipelineError, StageFailed, run_pipeline
    from vrhub.pipeline.types import ExportOptions

    settings = _settings(args)
    photo_path = Path(args.photo)
    try:
        data = photo_path.read_bytes()
    except OSError as exc:
        print(f"vrhub create: cannot read {photo_path}: {exc.strerror}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        photo = decode_photo(
            data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels, name=photo_path.name
        )
    except PipelineError as exc:
        print(f"vrhub create: {photo_path.name}: {exc} [{exc.code}]", file=sys.stderr)
        return 2
    decode_s = time.perf_counter() - t0
    try:
        _pm, registry = load_plugins(None, parse_selection(settings.stages))
        stages = registry.select(parse_selection(args.stages))
    except SelectionError as exc:
        print(f"vrhub create: {exc}", file=sys.stderr)
        return 2
    formats = ("glb", "vrm") if args.vrm else ("glb",)
    options = ExportOptions(
        formats=formats, lod=args.lod, texture_size=args.texture, visemes=not args.no_visemes
    )
    try:
        result = run_pipeline(photo, stages, options, time_limit=settings.stage_timeout or None)
    except PipelineError as exc:
        print(f"vrhub create: {photo_path.name}: {exc} [{exc.code}]", file=sys.stderr)
        return 2
    except StageFailed as exc:
        print(f"vrhub create: {photo_path.name}: {exc} [{exc.code}]", file=sys.stderr)
        return 1
    t_pipeline = time.perf_counter()
    total = t_pipeline - t0
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(result.files["glb"])
    written = [f"{out} ({len(result.files['glb']) / 1e6:.2f} MB)"]
    if args.vrm:
        if "vrm" in result.files:
            Path(args.vrm).write_bytes(result.files["vrm"])
            written.append(f"{args.vrm} ({len(result.files['vrm']) / 1e6:.2f} MB)")
        else:
            print(f"vrhub create: the export stage {result.stages['export']!r} made no VRM", file=sys.stderr)
    rows = [("decode", "photo_io", decode_s)] + [
        (slot, result.stages[slot], seconds) for slot, seconds in result.timings.items()
    ]
    print(_table(["stage", "implementation", "ms"], [(s, n, f"{t * 1000:.0f}") for s, n, t in rows]))
    print(f"total {total * 1000:.0f} ms; faces found: {result.face.faces_found}; wrote " + ", ".join(written))
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0


def add_create(sub: Subparsers) -> None:
    p = sub.add_parser("create", help="build an avatar from a photo, without a server")
    p.add_argument("photo", help="JPEG/PNG/WebP photo of a face")
    p.add_argument("-o", "--output", required=True, help="GLB file to write")
    p.add_argument("--stages", default="", help="implementation per slot, e.g. hair_model=none,export=gltf")
    p.add_argument("--lod", default="high", choices=("high", "medium", "low"))
    p.add_argument("--texture", type=int, default=1024, choices=(256, 512, 1024, 2048), help="texture size")
    p.add_argument("--no-visemes", action="store_true", help="leave the 15 viseme morph targets out")
    p.add_argument("--vrm", metavar="OUT.vrm", help="also write a VRM file (if the export stage makes one)")
    p.set_defaults(func=cmd_create)


# --- plugins ----------------------------------------------------------------------------------


def cmd_plugins(args: argparse.Namespace) -> int:
    from vrhub.api.plugins import describe_registry
    from vrhub.jobs.build import load_plugins
    from vrhub.pipeline.plugins import parse_selection

    settings = _settings(args)
    _pm, registry = load_plugins(None, parse_selection(settings.stages))
    rows = [
        (
            r["slot"],
            r["name"],
            r["plugin"],
            r["version"],
            r["origin"],
            "*" if r["default"] else "",
            r["description"],
        )
        for r in describe_registry(registry)
    ]
    print(_table(["slot", "name", "plugin", "version", "origin", "default", "description"], rows))
    return 0


def add_plugins(sub: Subparsers) -> None:
    p = sub.add_parser("plugins", help="list stage plugins: slot, name, plugin, version, origin, default")
    p.set_defaults(func=cmd_plugins)


# --- worker -----------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from vrhub.jobs.arq_backend import run_worker

    settings = _settings(args, job_workers=args.workers)
    if not settings.redis_url:
        print("vrhub worker: set VRHUB_REDIS_URL (the job queue lives in Redis)", file=sys.stderr)
        return 2
    run_worker(settings, burst=args.burst, plugin_modules=_plugin_modules(args))
    return 0


def add_worker(sub: Subparsers) -> None:
    p = sub.add_parser("worker", help="build avatars from the Redis queue (arq); needs VRHUB_REDIS_URL")
    p.add_argument("--workers", type=int, help="builds at a time (VRHUB_JOB_WORKERS)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    _add_plugins_module(p)
    p.set_defaults(func=cmd_worker)


# --- plumbing ---------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


BUILTIN_COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    add_serve,
    add_migrate,
    add_create,
    add_plugins,
    add_worker,
)


def _area_commands() -> list[Callable[[Subparsers], None]]:
    """``add_commands`` of every ``vrhub.<package>.commands`` module."""
    found = []
    for module in pkgutil.iter_modules(vrhub.__path__):
        if not module.ispkg:
            continue
        name = f"vrhub.{module.name}.commands"
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name).add_commands)
    return found


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrhub",
        description="vrhub: one photo to a rigged 3D head avatar; live expressions in classrooms.",
    )
    parser.add_argument("--version", action="version", version=f"vrhub {vrhub.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (*BUILTIN_COMMANDS, *_area_commands()):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("vrhub."):
            raise
        print(
            f"vrhub {args.command}: a plugin module is missing from this install: {exc.name}", file=sys.stderr
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
