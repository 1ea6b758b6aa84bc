"""Engines, sessions and migrations.

SQLite gets WAL, a busy timeout and foreign keys on every connection; PostgreSQL is used as is.
``migrate(url)`` runs alembic (migrations/) to head; the CLI and the tests call it, nothing calls
``create_all``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

#: migrations/ sits next to the package in a source checkout and is shipped beside it.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; for SQLite the folder is created and WAL switched on."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _run_alembic(connection: Connection, url: str, action: str, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    getattr(command, action)(cfg, revision)


async def upgrade(url: str, revision: str = "head", engine: AsyncEngine | None = None) -> None:
    """Bring the database at ``url`` to ``revision`` (on ``engine`` when given)."""
    await _alembic(url, "upgrade", revision, engine)


async def downgrade(url: str, revision: str = "base", engine: AsyncEngine | None = None) -> None:
    await _alembic(url, "downgrade", revision, engine)


async def _alembic(url: str, action: str, revision: str, engine: AsyncEngine | None) -> None:
    own = engine is None
    engine = engine or make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_alembic, url, action, revision)
    finally:
        if own:
            await engine.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def migrate(url: str, revision: str = "head") -> None:
    """Synchronous entry point (CLI): upgrade ``url`` to ``revision``."""
    asyncio.run(upgrade(url, revision))
