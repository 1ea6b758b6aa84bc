"""The local job runner: claims job rows and builds avatars in a process pool.

Jobs are rows (vrhub.db.avatars), so the runner holds nothing that a crash can lose: it claims a
job with a lease, renews the lease while the build runs, and records the outcome. A job whose
runner died keeps its lease until it expires; then any runner claims it again (``attempts`` + 1).

With ``job_workers = 0`` builds run in one thread of the hub (tests); otherwise in a pool of
spawned processes, whose progress comes back through a multiprocessing queue. With Redis
configured the hub does not poll: it enqueues to arq (vrhub.jobs.arq_backend) and ``vrhub worker``
processes call ``execute``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vrhub.blobs import BlobStore
from vrhub.config import Settings
from vrhub.db import avatars as queries
from vrhub.db.models import Avatar, Job
from vrhub.jobs.build import BuildRequest, build_avatar, init_worker, reexport, warm_up
from vrhub.pipeline.plugins import parse_selection
from vrhub.pipeline.types import ExportOptions

log = logging.getLogger(__name__)

#: Called after a job's outcome is recorded: (avatar row after the update, outcome).
FinishedFn = Callable[[Avatar, dict[str, Any]], Awaitable[None]]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, someone else's
        return True
    return True


class JobRunner:
    """Runs avatar builds for one hub (or one ``vrhub worker``)."""

    def __init__(
        self,
        settings: Settings,
        db: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        *,
        plugin_modules: tuple[str, ...] | None = None,
        poll: bool = True,
        poll_interval: float = 1.0,
    ):
        self.settings = settings
        self.db = db
        self.blobs = blobs
        self.plugin_modules = plugin_modules
        self.poll = poll
        self.poll_interval = poll_interval
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.capacity = max(1, settings.job_workers)
        self.default_stages = parse_selection(settings.stages)
        self.on_finished: list[FinishedFn] = []
        self.enqueue: Callable[[str], Awaitable[None]] | None = None  # set by the arq backend
        self._executor: concurrent.futures.Executor | None = None
        self._queue: Any = None
        self._drain: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._wakeup = asyncio.Event()
        self.blob_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.settings.job_workers <= 0:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vrhub-build")
        else:
            ctx = multiprocessing.get_context("spawn")
            self._queue = ctx.Queue()
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self.settings.job_workers, mp_context=ctx, initializer=init_worker, initargs=(self._queue,)
            )
            self._drain = threading.Thread(target=self._drain_progress, name="vrhub-progress", daemon=True)
            self._drain.start()
            for _ in range(self.settings.job_workers):  # start the processes and import the plugins now
                self._executor.submit(warm_up, self.plugin_modules)
        released = await queries.release_dead_local_leases(
            self.db, hostname=socket.gethostname(), current_owner=self.owner, is_alive=_pid_alive
        )
        if released:
            log.info("resuming %d job(s) whose runner on this host is gone", len(released))
        if self.poll:
            self._poller = asyncio.create_task(self._poll_loop(), name="vrhub-job-poller")

    async def stop(self) -> None:
        in_flight = list(self._running)
        tasks = [t for t in (self._poller, *self._running.values(), *self._background) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if in_flight:
            # Hand the interrupted builds back at once: any runner (this one after a restart,
            # or another hub) may take them without waiting for the lease to expire.
            try:
                await queries.release_leases(self.db, in_flight, owner=self.owner)
            except Exception:  # noqa: BLE001 - the database may already be gone
                log.warning("could not release the leases of %s", in_flight, exc_info=True)
        if self._executor is not None:
            if isinstance(self._executor, concurrent.futures.ProcessPoolExecutor):
                # Do not wait for a build in flight: its lease expires and another runner retries it.
                for process in list(getattr(self._executor, "_processes", {}).values()):
                    process.terminate()
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._queue is not None:
            self._queue.put(None)
            if self._drain is not None:
                await asyncio.to_thread(self._drain.join, 5)
            self._queue.close()

    # --- submitting ---------------------------------------------------------------------------

    async def submit(self, job_id: str) -> None:
        """A new job row exists: wake the poller (local) or enqueue it (arq)."""
        if self.enqueue is not None:
            await self.enqueue(job_id)
        else:
            self._wakeup.set()

    async def _poll_loop(self) -> None:
        while True:
            try:
                await queries.give_up_exhausted_jobs(self.db, max_attempts=self.settings.job_max_attempts)
                free = self.capacity - len(self._running)
                if free > 0:
                    ids = await queries.claimable_job_ids(
                        self.db, max_attempts=self.settings.job_max_attempts, limit=free
                    )
                    for job_id in ids:
                        if job_id not in self._running:
                            self._spawn(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database may be briefly unavailable
                log.exception("job poller")
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)

    def _spawn(self, job_id: str) -> None:
        task = asyncio.create_task(self.execute(job_id), name=f"vrhub-job-{job_id}")
        self._running[job_id] = task

        def done(t: asyncio.Task[Any]) -> None:
            self._running.pop(job_id, None)
            self._wakeup.set()
            if not t.cancelled() and t.exception() is not None:
                log.error("job %s", job_id, exc_info=t.exception())

        task.add_done_callback(done)

    # --- running ------------------------------------------------------------------------------

    async def execute(self, job_id: str) -> dict[str, Any] | None:
        """Claim ``job_id``, build it, record the outcome. None if another runner holds it."""
        s = self.settings
        job = await queries.claim_job(
            self.db,
            job_id,
            owner=self.owner,
            lease_seconds=s.job_lease_seconds,
            max_attempts=s.job_max_attempts,
        )
        if job is None:
            return None
        avatar = await queries.get_avatar(self.db, job.avatar_id)
        if avatar is None or "photo" not in avatar.blobs:
            outcome = {
                "status": "failed",
                "error": {"code": "photo_missing", "message": "the uploaded photo is no longer stored"},
            }
        else:
            request = BuildRequest(
                job_id=job.id,
                avatar_id=job.avatar_id,
                photo_key=avatar.blobs["photo"],
                blob_dir=str(self.blobs.root),
                stages=dict(job.request.get("stages", {})),
                default_stages=self.default_stages,
                max_bytes=s.max_upload_bytes,
                max_pixels=s.max_pixels,
                stage_timeout=s.stage_timeout or None,
                plugin_modules=self.plugin_modules,
                measure_likeness=s.measure_likeness,
            )
            heartbeat = asyncio.create_task(self._heartbeat(job.id))
            try:
                outcome = await self._run_build(request)
            finally:
                heartbeat.cancel()
        await self._record(job, outcome)
        return outcome

    async def _run_build(self, request: BuildRequest) -> dict[str, Any]:
        assert self._executor is not None and self._loop is not None
        if isinstance(self._executor, concurrent.futures.ThreadPoolExecutor):
            loop = self._loop

            def progress(stage: str, fraction: float) -> None:
                loop.call_soon_threadsafe(self._on_progress, request.job_id, stage, fraction)

            return await loop.run_in_executor(self._executor, partial(build_avatar, request, progress))
        try:
            return await self._loop.run_in_executor(self._executor, build_avatar, request)
        except concurrent.futures.process.BrokenProcessPool:
            # A build killed its worker process (out of memory, segfault in native code).
            self._restart_pool()
            return {
                "status": "failed",
                "error": {
                    "code": "worker_crashed",
                    "message": "the build process died (out of memory or a crash in native code)",
                },
            }

    def _restart_pool(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        old = self._executor
        self._executor = concurrent.futures.ProcessPoolExecutor(
            self.settings.job_workers, mp_context=ctx, initializer=init_worker, initargs=(self._queue,)
        )
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    async def _heartbeat(self, job_id: str) -> None:
        interval = max(0.2, self.settings.job_lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await queries.renew_lease(
                    self.db, job_id, owner=self.owner, lease_seconds=self.settings.job_lease_seconds
                )
            except Exception:  # noqa: BLE001
                log.warning("could not renew the lease of job %s", job_id, exc_info=True)

    def _drain_progress(self) -> None:
        """Thread: move (job_id, stage, fraction) messages from worker processes to the loop."""
        assert self._queue is not None and self._loop is not None
        while True:
            try:
                message = self._queue.get()
            except (EOFError, OSError):
                return
            if message is None:
                return
            with contextlib.suppress(RuntimeError):  # loop closed
                self._loop.call_soon_threadsafe(self._on_progress, *message)

    def _on_progress(self, job_id: str, stage: str, fraction: float) -> None:
        task = asyncio.ensure_future(queries.set_progress(self.db, job_id, stage=stage, fraction=fraction))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _record(self, job: Job, outcome: dict[str, Any]) -> None:
        await asyncio.gather(*list(self._background), return_exceptions=True)  # progress before the end
        recorded = await queries.finish_job(self.db, job, owner=self.owner, outcome=outcome)
        avatar = await queries.get_avatar(self.db, job.avatar_id)
        if not recorded or avatar is None:
            # The avatar was deleted meanwhile (or another runner took over): drop what we made.
            if avatar is None:
                for key in outcome.get("blobs", {}).values():
                    await self.delete_blob_if_unused(key)
            return
        if not self.settings.keep_photos and "photo" in avatar.blobs:
            key = avatar.blobs["photo"]
            blobs = dict(avatar.blobs)
            blobs.pop("photo")
            await queries.update_avatar(self.db, avatar.id, blobs=blobs)
            avatar.blobs = blobs
            await self.delete_blob_if_unused(key)
        for callback in self.on_finished:
            try:
                await callback(avatar, outcome)
            except Exception:  # noqa: BLE001
                log.exception("after-build callback for avatar %s", avatar.id)

    async def delete_blob_if_unused(self, key: str) -> bool:
        """Blobs are shared by content; delete ``key`` only if no avatar refers to it.

        Holds ``blob_lock``, which uploads hold from storing a blob to inserting the row that
        refers to it, so within one hub a blob cannot vanish between the two."""
        async with self.blob_lock:
            if await queries.blob_in_use(self.db, key):
                return False
            return await asyncio.to_thread(self.blobs.delete, key)

    # --- other CPU work -----------------------------------------------------------------------

    async def reexport(
        self, avatar_bytes: bytes, export_name: str, options: ExportOptions
    ) -> dict[str, bytes]:
        """Export a stored avatar with other options, in the pool."""
        assert self._executor is not None and self._loop is not None
        call = partial(
            reexport,
            avatar_bytes,
            export_name,
            options,
            self.plugin_modules,
            self.settings.stage_timeout or None,
        )
        return await self._loop.run_in_executor(self._executor, call)
