"""Outgoing notifications: a team hears when a run fails, waits for approval, is rolled back
or goes live. ``notices`` reads them off the audit log, ``delivery`` posts them (one courier
per receiver, retries with backoff), ``notifier`` is the server's thread tying the two."""

from shipyard.notify.notices import Notice, NoticeKind
from shipyard.notify.notifier import Notifier

__all__ = ["Notice", "NoticeKind", "Notifier"]
