"""API clients: named keys with a scope, stored in PostgreSQL as SHA-256 hashes of random tokens.

A token is 256 random bits, so a plain SHA-256 is a safe verifier (no dictionary to attack) and the
lookup is an indexed equality on the hash. The token itself exists only in the output of `create` and
`rotate`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")  # each includes the ones before it
TOKEN_PREFIX = "mn_"  # noqa: S105 - a marker that makes leaked keys easy to search for, not a secret
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Names the audit trail uses for requests that are not made with a client key.
BOOTSTRAP_CLIENT = "bootstrap"
ANONYMOUS_CLIENT = "anonymous"
RESERVED_NAMES = frozenset({BOOTSTRAP_CLIENT, ANONYMOUS_CLIENT})


class ClientError(Exception):
    """A client command that cannot be done (unknown name, name taken, ...); the message is one line."""


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    scope: Scope

    def allows(self, required: Scope) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(required)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def check_name(name: str) -> str:
    if not CLIENT_NAME.fullmatch(name):
        raise ClientError(f"invalid client name {name!r}: 1-64 characters of A-Z a-z 0-9 . _ - (not first)")
    if name in RESERVED_NAMES:
        raise ClientError(f"{name!r} is reserved for the audit trail")
    return name


async def find(pool: asyncpg.Pool | asyncpg.Connection, digest: bytes) -> Client | None:
    """The active client holding this token hash, or None (unknown or revoked)."""
    row = await pool.fetchrow(
        "SELECT name, scope FROM api_clients WHERE token_sha256 = $1 AND revoked_at IS NULL", digest
    )
    return Client(row["name"], row["scope"]) if row is not None else None


async def create(connection: asyncpg.Connection, name: str, scope: Scope) -> str:
    """Add a client; returns its token (shown once)."""
    check_name(name)
    token = new_token()
    try:
        await connection.execute(
            "INSERT INTO api_clients (name, scope, token_sha256) VALUES ($1, $2, $3)",
            name,
            scope,
            token_digest(token.encode()),
        )
    except asyncpg.UniqueViolationError:
        raise ClientError(f"client {name!r} already exists (rotate or revoke it)") from None
    return token


async def rotate(connection: asyncpg.Connection, name: str) -> tuple[Scope, str]:
    """A new token for an active client; the old one stops working at once."""
    token = new_token()
    scope = await connection.fetchval(
        """
        UPDATE api_clients SET token_sha256 = $2, rotated_at = now()
        WHERE name = $1 AND revoked_at IS NULL RETURNING scope
        """,
        name,
        token_digest(token.encode()),
    )
    if scope is None:
        raise ClientError(f"no active client {name!r}")
    return scope, token


async def revoke(connection: asyncpg.Connection, name: str) -> None:
    """Stop a client's token for good; the row stays so the audit trail's names keep their meaning."""
    revoked = await connection.fetchval(
        "UPDATE api_clients SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id", name
    )
    if revoked is None:
        raise ClientError(f"no active client {name!r}")


async def list_all(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT name, scope, created_at, rotated_at, revoked_at FROM api_clients ORDER BY name"
    )
    return [
        {
            "name": row["name"],
            "scope": row["scope"],
            "active": row["revoked_at"] is None,
            **{
                key: row[key].isoformat() if row[key] is not None else None
                for key in ("created_at", "rotated_at", "revoked_at")
            },
        }
        for row in rows
    ]
