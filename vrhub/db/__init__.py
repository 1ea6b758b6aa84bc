"""Storage: typed SQLAlchemy models (models.py), engines and alembic migrations (engine.py), and the
queries of the avatar aggregate (avatars.py)."""

from vrhub.db.engine import downgrade, make_engine, make_sessionmaker, migrate, upgrade

__all__ = ["downgrade", "make_engine", "make_sessionmaker", "migrate", "upgrade"]
