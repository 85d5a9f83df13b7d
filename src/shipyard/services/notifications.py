"""Notification targets: where the server posts which notices (``notify/`` does the posting).

A target is an http(s) URL, the notice kinds it wants (all when none are named) and
optionally one project. Its URL may carry a secret (a chat's webhook), so the audit log
keeps only its host.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select

from shipyard.adapters import Adapters
from shipyard.domain import NoticeKind
from shipyard.errors import InvalidInput, NotFound
from shipyard.services.views import View
from shipyard.store import current_actor
from shipyard.store.models import NotificationTarget

__all__ = ["Notifications", "TargetView"]

KINDS = ", ".join(NoticeKind)


class TargetView(View):
    id: int
    url: str
    events: list[NoticeKind]  # empty: every kind
    project: str | None  # None: every project
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: NotificationTarget) -> TargetView:
        return cls(
            id=row.id,
            url=row.url,
            events=[NoticeKind(kind) for kind in row.events],
            project=row.project,
            created_by=row.created_by,
            created_at=row.created_at,
        )

    def wants(self, kind: NoticeKind, project: str) -> bool:
        return (not self.events or kind in self.events) and self.project in (None, project)


class Notifications:
    def __init__(self, adapters: Adapters) -> None:
        self.store = adapters.store

    def add(
        self, url: str, events: list[NoticeKind] | None = None, project: str | None = None
    ) -> TargetView:
        url = url.strip()
        host = _checked(url)
        kinds = [kind for kind in NoticeKind if kind in (events or [])]  # in a stable order
        with self.store.session() as s:
            row = NotificationTarget(
                url=url,
                events=[k.value for k in kinds],
                project=project,
                created_by=current_actor(),
            )
            s.add(row)
            s.flush()
            self.store.record(
                s,
                "notification.target-added",
                str(row.id),
                host=host,
                events=row.events,
                project=project,
            )
            return TargetView.of(row)

    def list(self) -> list[TargetView]:
        with self.store.session() as s:
            rows = s.scalars(select(NotificationTarget).order_by(NotificationTarget.id))
            return [TargetView.of(row) for row in rows]

    def remove(self, target: int) -> TargetView:
        with self.store.session() as s:
            row = s.get(NotificationTarget, target)
            if row is None:
                raise NotFound(
                    f"There is no notification target {target}.", hint="`shipyard notify list`."
                )
            view = TargetView.of(row)
            s.delete(row)
            self.store.record(
                s, "notification.target-removed", str(target), host=urlsplit(row.url).hostname
            )
            return view


def _checked(url: str) -> str:
    """The URL's host, when it is an http(s) URL a notice can be posted to."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number, a broken [IPv6] host
        valid = False
    if not valid or any(c.isspace() for c in url):
        raise InvalidInput(
            f"{url!r} is not an http(s) URL.",
            hint="Give the receiver's full URL, e.g. https://hooks.slack.com/services/...",
        )
    if len(url) > 2000:
        raise InvalidInput("The URL is longer than 2000 characters.")
    return str(parts.hostname)
