"""The metadata store (SQLAlchemy 2, schema by Alembic; SQLite in WAL mode by default).

Its names are imported on first use (``lazy.py``): ``store/glance.py``, which ``shipyard
status`` reads through, must not pay for SQLAlchemy by being inside this package.
"""

from typing import TYPE_CHECKING

from shipyard.lazy import exports

if TYPE_CHECKING:
    from shipyard.store.store import Store, acting_as, current_actor

__getattr__ = exports(__name__, {"Store": "store", "acting_as": "store", "current_actor": "store"})

__all__ = ["Store", "acting_as", "current_actor"]
