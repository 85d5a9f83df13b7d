"""The metadata store (SQLAlchemy 2, schema by Alembic; SQLite in WAL mode by default)."""

from shipyard.store.store import Store, acting_as, current_actor

__all__ = ["Store", "acting_as", "current_actor"]
