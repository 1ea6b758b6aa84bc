"""Alembic owns the schema: an empty database upgrades to head and downgrades to base, on SQLite
and on PostgreSQL (127.0.0.1:5432, a fresh database per run), and the models match head."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from vrhub.db.engine import current_revision, downgrade, head_revision, make_engine, upgrade
from vrhub.db.models import Base

PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TABLES = {"avatars", "jobs", "rooms"}


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    return names - {"alembic_version"}


async def _round_trip(url: str) -> None:
    await upgrade(url)
    assert await _tables(url) == TABLES
    engine = make_engine(url)
    try:
        assert await current_revision(engine) == head_revision()
        # The models and the migrations agree: alembic's autogenerate finds nothing to do.
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert diff == []
    finally:
        await engine.dispose()
    await downgrade(url)
    assert await _tables(url) == set()
    await upgrade(url)  # and up again
    assert await _tables(url) == TABLES


async def test_sqlite_upgrades_to_head_and_back_to_base(tmp_path: Path) -> None:
    await _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'vrhub.db'}")


async def test_sqlite_database_uses_write_ahead_logging(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vrhub.db'}"
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"vrhub_test_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        await admin.dispose()
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required for this test: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.mark.postgres
async def test_postgresql_upgrades_to_head_and_back_to_base(postgres_url: str) -> None:
    await _round_trip(postgres_url)


@pytest.mark.postgres
async def test_jobs_are_claimed_once_on_postgresql(postgres_url: str) -> None:
    """Two runners racing for one job row: exactly one wins (the conditional UPDATE)."""
    import asyncio

    from vrhub.db import avatars as queries
    from vrhub.db.engine import make_sessionmaker

    await upgrade(postgres_url)
    engine = make_engine(postgres_url)
    db = make_sessionmaker(engine)
    try:
        created = await queries.create_avatar(db, photo_key="0" * 64, request={})
        claims = await asyncio.gather(
            *(
                queries.claim_job(db, created.job.id, owner=f"runner-{i}", lease_seconds=60, max_attempts=3)
                for i in range(5)
            )
        )
        assert sum(c is not None for c in claims) == 1
        avatar = await queries.get_avatar(db, created.avatar.id)
        assert avatar is not None and avatar.status == "running"
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_the_hub_builds_lists_and_deletes_avatars_on_postgresql(
    postgres_url: str, make_client: Any, tiny_photo_bytes: bytes
) -> None:
    from conftest import upload, wait_for_avatar

    await upgrade(postgres_url)
    client = await make_client(database_url=postgres_url, admin_key="adm1n")
    admin = {"Authorization": "Bearer adm1n"}
    health = await (await client.get("/api/health")).json()
    assert health["checks"]["db"]["backend"] == "postgresql"
    ids = []
    for i in range(3):
        created = await (await upload(client, tiny_photo_bytes + bytes([i]))).json()
        ids.append(created["id"])
        assert (await wait_for_avatar(client, created["id"]))["status"] == "ready"
    first = await (await client.get("/api/avatars?limit=2", headers=admin)).json()
    second = await (await client.get(first["next"], headers=admin)).json()
    assert [a["id"] for a in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next_cursor"] is None
    resp = await client.delete(f"/api/avatars/{ids[0]}", headers={"X-Owner-Token": created["owner_token"]})
    assert resp.status == 403
