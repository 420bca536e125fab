"""LLM results cached in PostgreSQL, keyed by operation, provider, model and a hash of the exact input.

The key hashes the text the model saw (for a stored document: its current content), never a document
id, so editing a document can never return an answer computed from its old text.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any

import asyncpg

from medical_notes.db import CONNECTION_ERRORS, Database, DatabaseUnavailable

log = logging.getLogger(__name__)

# Responses are a few kB; this bounds the in-process copy to a few MB per worker.
MEMORY_ENTRIES = 1024


def input_hash(*parts: str) -> str:
    """sha256 over length-prefixed parts, so ("ab", "c") and ("a", "bc") differ."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


async def lookup(pool: asyncpg.Pool, operation: str, provider: str, model: str, key: str) -> Any | None:
    return await pool.fetchval(
        """
        SELECT response FROM llm_cache
        WHERE operation = $1 AND provider = $2 AND model = $3 AND input_hash = $4
        """,
        operation,
        provider,
        model,
        key,
    )


async def store(
    pool: asyncpg.Pool, operation: str, provider: str, model: str, key: str, response: Any
) -> None:
    await pool.execute(
        """
        INSERT INTO llm_cache (operation, provider, model, input_hash, response)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (operation, provider, model, input_hash)
        DO UPDATE SET response = EXCLUDED.response, created_at = now()
        """,
        operation,
        provider,
        model,
        key,
        response,
    )


class LLMCache:
    """The API's view of the cache: PostgreSQL (shared by workers and restarts) behind a small
    in-process LRU that saves the round trip for repeated questions. Entries never go stale because
    the key is a hash of the exact input. Best effort: a question about pasted text still gets an
    answer while PostgreSQL is down, just uncached."""

    def __init__(self, database: Database, memory_entries: int = MEMORY_ENTRIES) -> None:
        self._database = database
        self._memory: OrderedDict[tuple[str, str, str, str], Any] = OrderedDict()
        self._memory_entries = memory_entries

    async def get(self, operation: str, provider: str, model: str, key: str) -> Any | None:
        memory_key = (operation, provider, model, key)
        response = self._memory.get(memory_key)
        if response is not None:
            self._memory.move_to_end(memory_key)
            return response
        try:
            pool = await self._database.pool()
            response = await lookup(pool, operation, provider, model, key)
        except DatabaseUnavailable:
            return None
        except CONNECTION_ERRORS as error:
            log.warning("llm cache read skipped: %s", type(error).__name__)
            await self._database.connection_lost()
            return None
        if response is not None:
            self._remember(memory_key, response)
        return response

    def _remember(self, memory_key: tuple[str, str, str, str], response: Any) -> None:
        self._memory[memory_key] = response
        self._memory.move_to_end(memory_key)
        while len(self._memory) > self._memory_entries:
            self._memory.popitem(last=False)

    async def put(self, operation: str, provider: str, model: str, key: str, response: Any) -> None:
        self._remember((operation, provider, model, key), response)
        try:
            pool = await self._database.pool()
            await store(pool, operation, provider, model, key, response)
        except DatabaseUnavailable:
            return
        except CONNECTION_ERRORS as error:
            log.warning("llm cache write skipped: %s", type(error).__name__)
            await self._database.connection_lost()
