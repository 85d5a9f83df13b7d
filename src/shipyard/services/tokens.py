"""API tokens: created with a role, shown once, kept only as a sha256 digest.

A token is ``shy_`` plus 32 random bytes in URL-safe base64: long enough that a digest without
a salt is safe to store, and recognisable in a leaked log.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from shipyard.adapters import Adapters
from shipyard.domain import TokenRole
from shipyard.errors import Conflict, InvalidInput, NotFound, Unauthorized
from shipyard.services.cache import ViewCache
from shipyard.services.views import View
from shipyard.store.models import BrowserSession, Token, utcnow

__all__ = ["NewToken", "SessionView", "TokenRequest", "TokenView", "Tokens"]

PREFIX = "shy_"
SESSION_PREFIX = "shs_"
SESSION_HOURS = 12  # a dashboard sign-in lasts a working day
LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class TokenView(View):
    name: str
    role: TokenRole
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Token) -> TokenView:
        return cls(
            name=row.name,
            role=TokenRole(row.role),
            created_by=row.created_by,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


class SessionView(View):
    """A signed-in browser: who it acts as, and the CSRF token its forms must carry."""

    token: TokenView
    csrf: str
    expires_at: datetime


class TokenRequest(View):
    """What creating a token takes."""

    name: str
    role: TokenRole


class NewToken(View):
    """A token just created, with its secret: the only time the secret is seen."""

    token: TokenView
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    def __init__(self, adapters: Adapters) -> None:
        self.store = adapters.store
        self.views = ViewCache(adapters.store)

    def create(self, name: str, role: TokenRole) -> tuple[TokenView, str]:
        """A new token; its secret is returned here and never again."""
        if not NAME.match(name):
            raise InvalidInput(
                f"Token name {name!r} is not valid.",
                hint="Use up to 64 letters, digits, '.', '_', '@' or '-'.",
            )
        secret = PREFIX + secrets.token_urlsafe(32)
        with self.store.session() as s:
            if s.scalar(select(Token).where(Token.name == name)) is not None:
                raise Conflict(
                    f"There is already a token named {name!r}.",
                    hint="Revoke it first (`shipyard token revoke NAME`) or choose another name.",
                )
            row = Token(name=name, role=role.value, digest=digest(secret), created_by=_actor())
            s.add(row)
            self.store.record(s, "token.created", name, role=role.value)
            s.flush()
            return TokenView.of(row), secret

    def list(self) -> list[TokenView]:
        with self.store.session() as s:
            return [TokenView.of(row) for row in s.scalars(select(Token).order_by(Token.name))]

    def revoke(self, name: str) -> TokenView:
        with self.store.session() as s:
            row = s.scalar(select(Token).where(Token.name == name))
            if row is None:
                raise NotFound(f"There is no token {name!r}.", hint="`shipyard token list`.")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                self.store.record(s, "token.revoked", name)
            return TokenView.of(row)

    def authenticate(self, secret: str) -> TokenView | None:
        """The live token whose secret this is; None for an unknown or revoked one.

        Every API call asks this; the answer is kept until the store changes (creating or
        revoking a token writes an event, so neither waits for the cache).
        """
        wanted = digest(secret)
        return self.views.get(("token", wanted), lambda: self._look_up(wanted))

    def _look_up(self, wanted: str) -> TokenView | None:
        with self.store.reading() as s:
            row = s.scalar(select(Token).where(Token.digest == wanted))
            # The lookup is by digest; compare again in constant time all the same.
            if row is None or not hmac.compare_digest(row.digest, wanted) or row.revoked_at:
                return None
            token = TokenView.of(row)
        now = utcnow()
        # Written at most once a minute: every API call authenticates, and a write on each
        # would make every read wait for SQLite's one writer.
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            with self.store.session() as s:
                s.execute(update(Token).where(Token.name == token.name).values(last_used_at=now))
            token = token.model_copy(update={"last_used_at": now})
        return token

    # -- dashboard sessions: a browser signs in once with a token --------------------------------

    def sign_in(self, secret: str) -> tuple[SessionView, str]:
        """A session for the token whose secret this is, and the session's own secret (the
        browser's cookie; only its digest is kept). An unknown or revoked token is refused."""
        token = self.authenticate(secret)
        if token is None:
            raise Unauthorized(
                "That token is unknown or revoked.",
                hint="Paste a token from `shipyard token create NAME --role ROLE`.",
            )
        cookie = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = utcnow() + timedelta(hours=SESSION_HOURS)
        with self.store.session() as s:
            row = s.scalar(select(Token).where(Token.name == token.name))
            assert row is not None  # authenticated a moment ago; tokens are never deleted
            csrf = secrets.token_urlsafe(32)
            s.add(
                BrowserSession(
                    digest=digest(cookie), token_id=row.id, csrf=csrf, expires_at=expires
                )
            )
            self.store.record(s, "session.opened", token.name, actor=token.name)
        return SessionView(token=token, csrf=csrf, expires_at=expires), cookie

    def session(self, cookie: str) -> SessionView | None:
        """The live session this cookie names: None when unknown, signed out, expired, or its
        token revoked. Kept until the store changes, like ``authenticate``."""
        wanted = digest(cookie)
        found = self.views.get(("session", wanted), lambda: self._session(wanted))
        if found is None or found.expires_at <= utcnow():
            return None
        return found

    def _session(self, wanted: str) -> SessionView | None:
        with self.store.reading() as s:
            row = s.scalar(select(BrowserSession).where(BrowserSession.digest == wanted))
            if row is None or row.closed_at is not None or row.token.revoked_at is not None:
                return None
            return SessionView(
                token=TokenView.of(row.token), csrf=row.csrf, expires_at=row.expires_at
            )

    def sign_out(self, cookie: str) -> None:
        with self.store.session() as s:
            row = s.scalar(select(BrowserSession).where(BrowserSession.digest == digest(cookie)))
            if row is not None and row.closed_at is None:
                row.closed_at = utcnow()
                self.store.record(s, "session.closed", row.token.name, actor=row.token.name)


def _actor() -> str:
    from shipyard.store import current_actor

    return current_actor()
