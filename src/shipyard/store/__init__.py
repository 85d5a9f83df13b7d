"""The metadata store (SQLAlchemy 2, schema by Alembic; SQLite in WAL mode by default)."""

from shipyard.store.store import Store, current_actor

__all__ = ["Store", "current_actor"]
