"""Queries for the avatar aggregate: an avatar row and the job rows that build it.

Jobs are claimed with a conditional UPDATE (state and lease checked in the WHERE clause), so two
runners never hold the same job, on SQLite or PostgreSQL. A running job whose lease has expired
(its runner died) is claimed again, up to ``max_attempts``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vrhub.db.models import Avatar, Job, utcnow


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_id() -> str:
    return uuid.uuid4().hex


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; every datetime we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class CreatedAvatar:
    avatar: Avatar
    job: Job
    owner_token: str


async def create_avatar(
    db: async_sessionmaker[AsyncSession],
    *,
    photo_key: str,
    request: dict[str, Any],
    room: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> CreatedAvatar:
    """Insert an avatar (status queued) and its job; returns the owner token (shown once)."""
    token = secrets.token_urlsafe(24)
    avatar = Avatar(
        id=new_id(),
        owner_token_hash=hash_token(token),
        status="queued",
        timings={},
        attributes=attributes or {},
        blobs={"photo": photo_key},
        room=room,
    )
    job = Job(id=new_id(), avatar_id=avatar.id, state="queued", request=request, progress_fraction=0.0)
    async with db.begin() as session:
        session.add(avatar)
        await session.flush()
        session.add(job)
    return CreatedAvatar(avatar, job, token)


async def get_avatar(db: async_sessionmaker[AsyncSession], avatar_id: str) -> Avatar | None:
    async with db() as session:
        return await session.get(Avatar, avatar_id)


async def get_avatar_and_job(
    db: async_sessionmaker[AsyncSession], avatar_id: str
) -> tuple[Avatar | None, Job | None]:
    async with db() as session:
        avatar = await session.get(Avatar, avatar_id)
        if avatar is None:
            return None, None
        job = (
            await session.execute(
                select(Job).where(Job.avatar_id == avatar_id).order_by(Job.created.desc()).limit(1)
            )
        ).scalar_one_or_none()
        return avatar, job


def encode_cursor(avatar: Avatar) -> str:
    created = as_utc(avatar.created)
    assert created is not None
    raw = f"{created.isoformat()}|{avatar.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """Raises ValueError for a cursor we did not make."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        created_text, avatar_id = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        created = dt.datetime.fromisoformat(created_text)
    except Exception as exc:  # noqa: BLE001
        raise ValueError("cursor is not one this server handed out") from exc
    if len(avatar_id) != 32:
        raise ValueError("cursor is not one this server handed out")
    return created, avatar_id


async def list_avatars(
    db: async_sessionmaker[AsyncSession], *, limit: int, cursor: str | None = None
) -> tuple[list[Avatar], str | None]:
    """Newest first. Returns the page and the cursor of the next page (None at the end)."""
    query = select(Avatar).order_by(Avatar.created.desc(), Avatar.id.desc()).limit(limit + 1)
    if cursor:
        created, avatar_id = decode_cursor(cursor)
        query = query.where(
            or_(Avatar.created < created, and_(Avatar.created == created, Avatar.id < avatar_id))
        )
    async with db() as session:
        rows = list((await session.execute(query)).scalars())
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def count_pending_jobs(db: async_sessionmaker[AsyncSession]) -> int:
    """Jobs queued or running (the builds an upload would wait behind)."""
    async with db() as session:
        n = await session.scalar(
            select(func.count()).select_from(Job).where(Job.state.in_(("queued", "running")))
        )
    return int(n or 0)


async def delete_avatar(db: async_sessionmaker[AsyncSession], avatar_id: str) -> None:
    async with db.begin() as session:
        await session.execute(delete(Job).where(Job.avatar_id == avatar_id))
        await session.execute(delete(Avatar).where(Avatar.id == avatar_id))


async def update_avatar(db: async_sessionmaker[AsyncSession], avatar_id: str, **values: Any) -> None:
    async with db.begin() as session:
        await session.execute(update(Avatar).where(Avatar.id == avatar_id).values(updated=utcnow(), **values))


# --- jobs -----------------------------------------------------------------------------------------


def _claimable(now: dt.datetime, max_attempts: int) -> Any:
    return and_(
        Job.attempts < max_attempts,
        or_(Job.state == "queued", and_(Job.state == "running", Job.lease_until < now)),
    )


async def claim_job(
    db: async_sessionmaker[AsyncSession],
    job_id: str,
    *,
    owner: str,
    lease_seconds: float,
    max_attempts: int,
) -> Job | None:
    """Take ``job_id`` if it is queued or its lease has expired; None if someone else has it."""
    now = utcnow()
    async with db.begin() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id == job_id, _claimable(now, max_attempts))
            .values(
                state="running",
                attempts=Job.attempts + 1,
                lease_owner=owner,
                lease_until=now + dt.timedelta(seconds=lease_seconds),
                heartbeat=now,
                updated=now,
            )
        )
        if result.rowcount != 1:
            return None
        job = await session.get(Job, job_id)
        assert job is not None
        await session.execute(
            update(Avatar).where(Avatar.id == job.avatar_id).values(status="running", updated=now)
        )
        return job


async def claimable_job_ids(
    db: async_sessionmaker[AsyncSession], *, max_attempts: int, limit: int
) -> list[str]:
    """Queued jobs and running ones whose lease expired, oldest first."""
    async with db() as session:
        rows = await session.execute(
            select(Job.id).where(_claimable(utcnow(), max_attempts)).order_by(Job.created).limit(limit)
        )
        return list(rows.scalars())


async def give_up_exhausted_jobs(db: async_sessionmaker[AsyncSession], *, max_attempts: int) -> list[str]:
    """Fail jobs that died ``max_attempts`` times (their lease expired on the last try)."""
    now = utcnow()
    async with db.begin() as session:
        rows = await session.execute(
            select(Job.id, Job.avatar_id).where(
                Job.state == "running", Job.lease_until < now, Job.attempts >= max_attempts
            )
        )
        dead = list(rows)
        for job_id, avatar_id in dead:
            message = f"the build was interrupted {max_attempts} times (worker crashed or was killed)"
            await session.execute(
                update(Job).where(Job.id == job_id).values(state="failed", error=message, updated=now)
            )
            await session.execute(
                update(Avatar)
                .where(Avatar.id == avatar_id)
                .values(status="failed", error_code="interrupted", error_message=message, updated=now)
            )
        return [job_id for job_id, _ in dead]


async def renew_lease(
    db: async_sessionmaker[AsyncSession], job_id: str, *, owner: str, lease_seconds: float
) -> bool:
    now = utcnow()
    async with db.begin() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.state == "running")
            .values(lease_until=now + dt.timedelta(seconds=lease_seconds), heartbeat=now)
        )
        return result.rowcount == 1


async def set_progress(
    db: async_sessionmaker[AsyncSession], job_id: str, *, stage: str, fraction: float
) -> None:
    async with db.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "running")
            .values(progress_stage=stage, progress_fraction=float(fraction), heartbeat=utcnow())
        )


async def finish_job(
    db: async_sessionmaker[AsyncSession],
    job: Job,
    *,
    owner: str,
    outcome: dict[str, Any],
) -> bool:
    """Record what a build produced (``outcome`` from vrhub.jobs.build). False if we lost the lease."""
    now = utcnow()
    ok = outcome["status"] == "ready"
    async with db.begin() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id == job.id, Job.lease_owner == owner, Job.state == "running")
            .values(
                state="done" if ok else "failed",
                progress_stage="done" if ok else "failed",
                progress_fraction=1.0 if ok else Job.progress_fraction,
                error=None if ok else outcome["error"]["message"],
                lease_until=None,
                updated=now,
            )
        )
        if result.rowcount != 1:
            return False
        avatar = await session.get(Avatar, job.avatar_id)
        if avatar is None:  # deleted while it was being built
            return True
        blobs = dict(avatar.blobs)
        blobs.update(outcome.get("blobs", {}))
        for name in outcome.get("drop_blobs", ()):
            blobs.pop(name, None)
        attributes = dict(avatar.attributes)
        attributes.update(outcome.get("attributes", {}))
        values: dict[str, Any] = {
            "status": outcome["status"],
            "timings": outcome.get("timings", {}),
            "attributes": attributes,
            "blobs": blobs,
            "updated": now,
        }
        if not ok:
            values["error_code"] = outcome["error"]["code"]
            values["error_message"] = outcome["error"]["message"]
        await session.execute(update(Avatar).where(Avatar.id == avatar.id).values(**values))
        return True


async def blob_in_use(db: async_sessionmaker[AsyncSession], key: str) -> bool:
    """Does any avatar refer to blob ``key``? (Blob keys are content hashes, so two avatars made
    from the same photo share blobs.) Scans the blob maps: fine for a classroom-sized hub."""
    async with db() as session:
        rows = await session.execute(select(Avatar.blobs))
        for (blobs,) in rows:
            if key in _keys(blobs):
                return True
    return False


def _keys(blobs: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for value in blobs.values():
        if isinstance(value, str):
            keys.add(value)
        elif isinstance(value, dict):
            keys.update(v for v in value.values() if isinstance(v, str))
    return keys


def blob_keys(avatar: Avatar) -> set[str]:
    return _keys(avatar.blobs)


async def release_dead_local_leases(
    db: async_sessionmaker[AsyncSession], *, hostname: str, current_owner: str, is_alive: Any
) -> list[str]:
    """Expire the leases of running jobs held by runners on this host that are gone.

    Owners are ``host:pid:nonce``. A lease is dead when its pid no longer runs (``is_alive(pid)``
    False), or when it is this process's pid with another nonce (a previous life of a hub that
    restarted with the same pid, as pid 1 in a container). Other hosts' leases wait for expiry.
    """
    own_pid = current_owner.split(":")[1]
    async with db() as session:
        rows = await session.execute(
            select(Job.id, Job.lease_owner).where(
                Job.state == "running", Job.lease_owner.like(f"{hostname}:%")
            )
        )
        candidates = list(rows)
    dead = []
    for job_id, owner in candidates:
        parts = (owner or "").split(":")
        if len(parts) != 3 or not parts[1].isdigit() or owner == current_owner:
            continue
        if parts[1] == own_pid or not is_alive(int(parts[1])):
            dead.append(job_id)
    if dead:
        async with db.begin() as session:
            await session.execute(
                update(Job)
                .where(Job.id.in_(dead), Job.state == "running")
                .values(lease_until=utcnow() - dt.timedelta(seconds=1))
            )
    return dead


async def release_leases(db: async_sessionmaker[AsyncSession], job_ids: list[str], *, owner: str) -> None:
    """A runner shutting down gives its running jobs back (their leases expire now)."""
    async with db.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.lease_owner == owner, Job.state == "running")
            .values(lease_until=utcnow() - dt.timedelta(seconds=1))
        )
