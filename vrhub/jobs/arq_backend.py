"""Jobs through Redis (arq): the hub enqueues, ``vrhub worker`` processes build.

The job row stays the source of truth: a worker claims the row with a lease exactly like the local
runner (vrhub.jobs.runner.JobRunner.execute), so a job is never built twice at once, and a job
whose worker died is retried once its lease expires (arq re-delivers it; the hub's sweeper also
re-enqueues rows with dead leases). Blobs are written by the worker, so every worker and hub must
see the same blob folder (one machine, or a shared volume).

The queue is ``<VRHUB_REDIS_PREFIX>:jobs`` (default ``vrhub:jobs``), or ``VRHUB_QUEUE_NAME``; tests
use a unique one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from typing import Any

from arq import Retry, create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker, func

from vrhub.blobs import BlobStore
from vrhub.config import Settings
from vrhub.db import avatars as queries
from vrhub.db.engine import current_revision, head_revision, make_engine, make_sessionmaker
from vrhub.jobs.runner import JobRunner

log = logging.getLogger(__name__)


def queue_name(settings: Settings) -> str:
    """``VRHUB_QUEUE_NAME`` if set, else ``<redis_prefix>:jobs`` (the prefix the rooms use too)."""
    prefix = getattr(settings, "redis_prefix", "") or "vrhub"
    return os.environ.get("VRHUB_QUEUE_NAME") or f"{prefix}:jobs"


def _arq_job_id(job_id: str) -> str:
    return f"vrhub-build-{job_id}"


class ArqQueue:
    """Hub side: enqueue new jobs, re-enqueue orphaned ones, and report finished builds."""

    def __init__(self, settings: Settings, runner: JobRunner, *, queue: str | None = None):
        self.settings = settings
        self.runner = runner
        self.queue = queue or queue_name(settings)
        self.pool: ArqRedis | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect (if Redis is down, the hub still starts: job rows wait and the sweeper enqueues
        them once Redis answers; /api/health reports it meanwhile)."""
        self.runner.enqueue = self.enqueue
        await self._connect()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="vrhub-arq-sweeper")

    async def _connect(self) -> bool:
        if self.pool is not None:
            return True
        try:
            self.pool = await create_pool(
                dataclasses.replace(RedisSettings.from_dsn(self.settings.redis_url), conn_retries=0),
                default_queue_name=self.queue,
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("job queue: Redis is not reachable (%s); jobs wait in the database", exc)
            return False
        return True

    async def stop(self) -> None:
        tasks = [t for t in (self._sweeper, *self._tasks) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.pool is not None:
            await self.pool.aclose()

    async def enqueue(self, job_id: str) -> None:
        if not await self._connect():
            return  # the row stays queued; the sweeper enqueues it when Redis is back
        assert self.pool is not None
        job = await self.pool.enqueue_job(
            "build_job", job_id, _job_id=_arq_job_id(job_id), _queue_name=self.queue
        )
        if job is not None:
            task = asyncio.create_task(self._await_result(job_id, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _await_result(self, job_id: str, job: Any) -> None:
        """Wait for the worker, then run the hub's after-build callbacks (room announcements)."""
        with contextlib.suppress(Exception):
            await job.result(timeout=None, poll_delay=0.5)
        async with self.runner.db() as session:
            from vrhub.db.models import Job

            row = await session.get(Job, job_id)
        if row is None:
            return
        avatar = await queries.get_avatar(self.runner.db, row.avatar_id)
        if avatar is None or avatar.status not in ("ready", "failed"):
            return
        for callback in self.runner.on_finished:
            try:
                await callback(avatar, {"status": avatar.status})
            except Exception:  # noqa: BLE001
                log.exception("after-build callback for avatar %s", avatar.id)

    async def _sweep_loop(self) -> None:
        """Queued rows (e.g. made while Redis was down) and rows whose worker died go back to arq."""
        interval = max(1.0, min(30.0, self.settings.job_lease_seconds / 2))
        while True:
            try:
                await queries.give_up_exhausted_jobs(
                    self.runner.db, max_attempts=self.settings.job_max_attempts
                )
                for job_id in await queries.claimable_job_ids(
                    self.runner.db, max_attempts=self.settings.job_max_attempts, limit=100
                ):
                    await self.enqueue(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("arq sweeper")
            await asyncio.sleep(interval)


# --- worker side ------------------------------------------------------------------------------


async def build_job(ctx: dict[str, Any], job_id: str) -> str:
    """arq task: build the avatar of job row ``job_id``."""
    runner: JobRunner = ctx["vrhub_runner"]
    outcome = await runner.execute(job_id)
    if outcome is not None:
        return str(outcome["status"])
    async with runner.db() as session:
        from vrhub.db.models import Job

        row = await session.get(Job, job_id)
    if row is not None and row.state == "running":
        # Another worker holds the lease (or a dead one still does): try again when it may have expired.
        raise Retry(defer=max(1.0, runner.settings.job_lease_seconds))
    return "skipped"


async def _startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["vrhub_settings"]
    engine = make_engine(settings.database_url)
    current, head = await current_revision(engine), head_revision()
    if current != head:
        await engine.dispose()
        raise RuntimeError(
            f"the database is at revision {current}, this vrhub needs {head}: run `vrhub migrate`"
        )
    assert settings.blob_dir is not None
    runner = JobRunner(
        settings,
        make_sessionmaker(engine),
        BlobStore(settings.blob_dir),
        plugin_modules=ctx.get("vrhub_plugin_modules"),
        poll=False,
    )
    await runner.start()
    ctx["vrhub_engine"] = engine
    ctx["vrhub_runner"] = runner


async def _shutdown(ctx: dict[str, Any]) -> None:
    if "vrhub_runner" in ctx:
        await ctx["vrhub_runner"].stop()
    if "vrhub_engine" in ctx:
        await ctx["vrhub_engine"].dispose()


def make_worker(
    settings: Settings,
    *,
    queue: str | None = None,
    plugin_modules: tuple[str, ...] | None = None,
    burst: bool = False,
    handle_signals: bool = True,
) -> Worker:
    """An arq Worker building avatars; ``settings.job_workers`` builds at a time."""
    if not settings.redis_url:
        raise ValueError("vrhub worker needs VRHUB_REDIS_URL (the queue lives in Redis)")
    timeout = int(max(60.0, (settings.stage_timeout or 120.0) * 8 + 60))
    return Worker(
        functions=[
            func(build_job, name="build_job", timeout=timeout, max_tries=settings.job_max_attempts + 2)
        ],
        queue_name=queue or queue_name(settings),
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=_startup,
        on_shutdown=_shutdown,
        max_jobs=max(1, settings.job_workers),
        burst=burst,
        handle_signals=handle_signals,
        keep_result=3600,
        poll_delay=0.2,
        ctx={"vrhub_settings": settings, "vrhub_plugin_modules": plugin_modules},
    )


def run_worker(
    settings: Settings, *, burst: bool = False, plugin_modules: tuple[str, ...] | None = None
) -> None:
    """``vrhub worker``: run until interrupted."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = make_worker(settings, burst=burst, plugin_modules=plugin_modules)
    worker.run()
