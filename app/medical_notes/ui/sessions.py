"""Console sign-ins kept server-side in PostgreSQL: the browser holds only a random session id.

Only hashes are stored (of the session id and of the API token that signed in), so a copy of the
table lets nobody act as a signed-in user. A session ends on "Sign out", after the idle timeout, or
as soon as the token that opened it stops being valid (a revoked or rotated client key).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import asyncpg
from pydantic import SecretStr

from medical_notes.api.auth import ClientRegistry
from medical_notes.clients import ANONYMOUS_CLIENT, BOOTSTRAP_CLIENT, Client, token_digest
from medical_notes.db import Database


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    client: Client
    csrf_token: str

    @property
    def can_write(self) -> bool:
        return self.client.allows("write")


class TokenCredentials:
    """Resolves API tokens exactly as the API does: the bootstrap API_TOKEN (admin) or a client key."""

    def __init__(self, registry: ClientRegistry | None, bootstrap_token: SecretStr | None) -> None:
        self._registry = registry
        self._bootstrap_digest = (
            token_digest(bootstrap_token.get_secret_value().encode()) if bootstrap_token is not None else None
        )

    async def by_digest(self, digest: bytes) -> Client | None:
        if self._registry is None:
            # API_AUTH=disabled: the API is open, and so is the console.
            return Client(ANONYMOUS_CLIENT, "admin")
        if self._bootstrap_digest is not None and hmac.compare_digest(digest, self._bootstrap_digest):
            return Client(BOOTSTRAP_CLIENT, "admin")
        return await self._registry.authenticate(digest)


class SessionStore:
    def __init__(self, database: Database, credentials: TokenCredentials, idle_minutes: int) -> None:
        self.database = database
        self.credentials = credentials
        self.idle_minutes = idle_minutes

    async def open(self, token: str) -> tuple[str, Session] | None:
        """A new session id and its session, or None when the token is not valid."""
        digest = token_digest(token.encode())
        client = await self.credentials.by_digest(digest)
        if client is None:
            return None
        session_id = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)

        async def insert(connection: asyncpg.Connection) -> None:
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
                    client.name,
                    client.scope,
                    digest.hex(),
                    csrf_token,
                )

        await self.database.run(insert)
        return session_id, Session(client, csrf_token)

    async def resume(self, session_id: str) -> Session | None:
        """The live session for this id (its idle clock restarted), or None."""

        async def touch(connection: asyncpg.Connection) -> asyncpg.Record | None:
            return await connection.fetchrow(
                """
                UPDATE ui_sessions SET last_seen_at = now()
                WHERE id_hash = $1 AND last_seen_at >= now() - make_interval(mins => $2)
                RETURNING token_hash, csrf_token
                """,
                sha256_hex(session_id),
                self.idle_minutes,
            )

        row = await self.database.run(touch)
        if row is None:
            return None
        client = await self.credentials.by_digest(bytes.fromhex(row["token_hash"]))
        if client is None:
            await self.close(session_id)
            return None
        return Session(client, row["csrf_token"])

    async def close(self, session_id: str) -> None:
        async def delete(connection: asyncpg.Connection) -> None:
            await connection.execute("DELETE FROM ui_sessions WHERE id_hash = $1", sha256_hex(session_id))

        await self.database.run(delete)
