"""SQLAlchemy 2 typed models: avatars, jobs, rooms.

Alembic owns the schema (migrations/); these classes mirror the latest revision and never
create tables themselves. Constraint names follow ``NAMING_CONVENTION`` so they are the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Avatar life cycle: queued -> running -> ready | failed.
AVATAR_STATUSES = ("queued", "running", "ready", "failed")
#: Job life cycle: queued -> running -> done | failed (running with an expired lease is retried).
JOB_STATES = ("queued", "running", "done", "failed")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Avatar(Base):
    """One avatar: what was asked, how far it got, and the blob keys of what was built."""

    __tablename__ = "avatars"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_token_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    #: slot -> seconds.
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: hair attributes, quality report, warnings, stages chosen, requested stages.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: name -> sha256 key: photo, avatar (serialised RiggedAvatar), glb, vrm, variant:... .
    blobs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    room: Mapped[str | None] = mapped_column(String(64), default=None)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_avatars_created_id", "created", "id"),)


class Job(Base):
    """A unit of work for a runner; a row, so queued and interrupted jobs survive a restart."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    avatar_id: Mapped[str] = mapped_column(ForeignKey("avatars.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Which runner holds the job, and until when (it renews the lease while it works).
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    heartbeat: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    progress_stage: Mapped[str | None] = mapped_column(String(32), default=None)
    progress_fraction: Mapped[float] = mapped_column(Float, default=0.0)
    #: Build request: stage choices (slot -> name), export options.
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_jobs_state_created", "state", "created"),)


class Room(Base):
    """A classroom; live state is in memory (and Redis), this row holds what outlives it."""

    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
