"""Console sign-ins kept server-side in PostgreSQL: the browser holds only a random session id.

Only hashes are stored (of the session id and of the API token that signed in), so a copy of the
table lets nobody act as a signed-in user. A session ends on "Sign out", after the idle timeout, or
as soon as the token that opened it stops being valid.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

import asyncpg


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who signed in and what they may do: scope is read, write or admin (as for the API)."""

    name: str
    scope: str

    @property
    def can_write(self) -> bool:
        return self.scope in ("write", "admin")


class Credentials(Protocol):
    """Resolves API tokens the same way the API does."""

    def by_token(self, token: str) -> Principal | None: ...

    def by_token_hash(self, token_hash: str) -> Principal | None: ...


class BootstrapTokenCredentials:
    """The single API_TOKEN is an admin credential; without one the API is open, and so is the console."""

    def __init__(self, api_token: str | None) -> None:
        self._token_hash = sha256_hex(api_token) if api_token else None

    def by_token(self, token: str) -> Principal | None:
        return self.by_token_hash(sha256_hex(token))

    def by_token_hash(self, token_hash: str) -> Principal | None:
        if self._token_hash is None:
            return Principal(name="anonymous", scope="admin")
        if hmac.compare_digest(token_hash, self._token_hash):
            return Principal(name="api-token", scope="admin")
        return None


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str


class SessionStore:
    def __init__(self, credentials: Credentials, idle_minutes: int) -> None:
        self.credentials = credentials
        self.idle_minutes = idle_minutes

    async def open(self, connection: asyncpg.Connection, token: str) -> tuple[str, Session] | None:
        """A new session id and its session, or None when the token is not valid."""
        principal = self.credentials.by_token(token)
        if principal is None:
            return None
        session_id = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        async with connection.transaction():
            await connection.execute(
                "DELETE FROM ui_sessions WHERE last_seen_at < now() - make_interval(mins => $1)",
                self.idle_minutes,
            )
            await connection.execute(
                """
                INSERT INTO ui_sessions (id_hash, client_name, scope, token_hash, csrf_token)
                VALUES ($1, $2, $3, $4, $5)
                """,
                sha256_hex(session_id),
                principal.name,
                principal.scope,
                sha256_hex(token),
                csrf_token,
            )
        return session_id, Session(principal, csrf_token)

    async def resume(self, connection: asyncpg.Connection, session_id: str) -> Session | None:
        """The live session for this id (its idle clock restarted), or None."""
        row = await connection.fetchrow(
            """
            UPDATE ui_sessions SET last_seen_at = now()
            WHERE id_hash = $1 AND last_seen_at >= now() - make_interval(mins => $2)
            RETURNING token_hash, csrf_token
            """,
            sha256_hex(session_id),
            self.idle_minutes,
        )
        if row is None:
            return None
        principal = self.credentials.by_token_hash(row["token_hash"])
        if principal is None:
            await self.close(connection, session_id)
            return None
        return Session(principal, row["csrf_token"])

    async def close(self, connection: asyncpg.Connection, session_id: str) -> None:
        await connection.execute("DELETE FROM ui_sessions WHERE id_hash = $1", sha256_hex(session_id))
