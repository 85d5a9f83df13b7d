"""Leases as rows of the metadata store's ``leases`` table (SQLite or PostgreSQL).

Taking a lease is one transaction: read the row (``FOR UPDATE`` where the database has it;
SQLite's ``BEGIN IMMEDIATE`` already serialises writers), then insert, take over an expired
row, renew our own, or refuse. Two owners racing to insert the same new name meet the primary
key, and the loser is refused.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from shipyard.coordination.interface import LeaseInfo, Leases
from shipyard.store import Store
from shipyard.store.models import Lease, utcnow

__all__ = ["StoreLeases"]


class StoreLeases(Leases):
    def __init__(self, store: Store) -> None:
        self.store = store

    def acquire(self, name: str, owner: str, ttl: float = 15.0) -> bool:
        try:
            with self.store.session() as s:
                now = utcnow()
                row = s.scalar(select(Lease).where(Lease.name == name).with_for_update())
                expires = now + timedelta(seconds=ttl)
                if row is None:
                    s.add(
                        Lease(
                            name=name,
                            owner=owner,
                            acquired_at=now,
                            renewed_at=now,
                            expires_at=expires,
                        )
                    )
                    return True
                if row.owner != owner and row.expires_at > now:
                    return False
                if row.owner != owner:
                    row.owner, row.acquired_at = owner, now
                row.renewed_at, row.expires_at = now, expires
                return True
        except IntegrityError:  # another owner inserted the same name first
            return False

    def release(self, name: str, owner: str) -> None:
        with self.store.session() as s:
            s.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))

    def holder(self, name: str) -> LeaseInfo | None:
        with self.store.session() as s:
            row = s.scalar(select(Lease).where(Lease.name == name, Lease.expires_at > utcnow()))
            return _info(row) if row is not None else None

    def held_by(self, prefix: str) -> list[LeaseInfo]:
        with self.store.session() as s:
            query = (
                select(Lease)
                .where(Lease.name.startswith(prefix, autoescape=True), Lease.expires_at > utcnow())
                .order_by(Lease.name)
            )
            return [_info(row) for row in s.scalars(query)]


def _info(row: Lease) -> LeaseInfo:
    return LeaseInfo(row.name, row.owner, row.acquired_at, row.expires_at)
