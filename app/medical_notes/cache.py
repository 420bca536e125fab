"""LLM results cached in PostgreSQL (shared by workers and restarts) behind a small LRU in each worker.

Key: the operation, a hash of the exact input the model saw (note text, question, retrieved
passages) and a hash of everything else that shapes the answer: provider, model, base URL, the
prompt templates and the service version. Changing any of them never returns an old answer.

A result computed from a note records the note's content hash. Deleting the note or changing its
text removes those results in the same transaction (a trigger, see db.py migration 2), and the
trigger's NOTIFY makes every worker drop them from its LRU. A worker uses its LRU only while it is
listening for those notifications, and empties it whenever it starts listening again, so a
notification missed during an outage cannot leave a deleted note's summary in memory.

Entries older than LLM_CACHE_MAX_AGE are neither served nor kept: lookups ignore them and each
worker deletes them periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from medical_notes import __version__
from medical_notes.config import Settings
from medical_notes.db import (
    CACHE_EVICTION_CHANNEL,
    CONNECTION_ERRORS,
    UNAVAILABLE_ERRORS,
    Database,
    DatabaseTimeout,
    DatabaseUnavailable,
    describe_connection_error,
)
from medical_notes.extraction.store import purge_expired_pasted_text
from medical_notes.providers.prompting import PROMPTS_DIR

log = logging.getLogger(__name__)

# Responses are a few kB; this bounds the in-process copy to a few MB per worker.
MEMORY_ENTRIES = 1024
# The eviction listener checks its connection this often (a silently dropped network sends no reset).
LISTENER_KEEPALIVE_SECONDS = 10.0
LISTENER_RETRY_SECONDS = (0.5, 5.0)  # first and longest wait between reconnection attempts
MAX_PURGE_INTERVAL_SECONDS = 3600.0


class CacheObserver(Protocol):
    def cache_hit(self, operation: str, layer: str) -> None: ...

    def cache_miss(self, operation: str) -> None: ...

    def cache_invalidated(self) -> None: ...


def input_hash(*parts: str) -> str:
    """sha256 over length-prefixed parts, so ("ab", "c") and ("a", "bc") differ."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def note_hash(note: str) -> str:
    """The same value as documents.content_hash for a document with this text."""
    return hashlib.sha256(note.encode()).hexdigest()


def config_fingerprint(settings: Settings, prompts_dir: Path = PROMPTS_DIR) -> str:
    """Everything besides the input that decides what the provider answers."""
    parts = [__version__, settings.llm_provider, settings.llm_model, settings.llm_base_url or ""]
    for template in sorted(prompts_dir.glob("*.j2")):
        parts += [template.name, template.read_text(encoding="utf-8")]
    return input_hash(*parts)


@dataclass(frozen=True)
class CachedResult:
    response: Any
    note_hash: str | None
    created_at: float  # Unix time


async def lookup(
    connection: asyncpg.Connection, operation: str, config_hash: str, key: str, max_age_seconds: float
) -> CachedResult | None:
    row = await connection.fetchrow(
        """
        SELECT response, note_hash, extract(epoch FROM created_at)::float8 AS created_at
        FROM llm_cache
        WHERE operation = $1 AND config_hash = $2 AND input_hash = $3
          AND created_at > now() - make_interval(secs => $4)
        """,
        operation,
        config_hash,
        key,
        max_age_seconds,
    )
    if row is None:
        return None
    return CachedResult(row["response"], row["note_hash"], row["created_at"])


async def store(
    connection: asyncpg.Connection,
    *,
    operation: str,
    config_hash: str,
    key: str,
    note_hash: str | None,
    from_document: bool,
    provider: str,
    model: str,
    response: Any,
) -> bool:
    """Insert or refresh a result; False when it was computed from a document that is gone by now.

    FOR SHARE makes this wait for a concurrent delete or edit of that document and then see its
    outcome, so a result can never be stored after the trigger removed the note's results."""
    stored = await connection.fetchval(
        """
        INSERT INTO llm_cache (operation, config_hash, input_hash, note_hash, provider, model, response)
        SELECT $1, $2, $3, $4, $5, $6, $7
        WHERE NOT $8::boolean OR EXISTS (SELECT 1 FROM documents WHERE content_hash = $4 FOR SHARE)
        ON CONFLICT (operation, config_hash, input_hash)
        DO UPDATE SET response = EXCLUDED.response, note_hash = EXCLUDED.note_hash, created_at = now()
        RETURNING true
        """,
        operation,
        config_hash,
        key,
        note_hash,
        provider,
        model,
        response,
        from_document,
    )
    return bool(stored)


async def purge_expired(connection: asyncpg.Connection, max_age_seconds: float) -> int:
    status = await connection.execute(
        "DELETE FROM llm_cache WHERE created_at <= now() - make_interval(secs => $1)", max_age_seconds
    )
    return int(status.split()[-1])


class LLMCache:
    """Best effort: a question about pasted text still gets an answer while PostgreSQL is down, just
    uncached. start() launches the eviction listener and the periodic purge; close() stops them."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        observer: CacheObserver,
        *,
        memory_entries: int = MEMORY_ENTRIES,
        prompts_dir: Path = PROMPTS_DIR,
    ) -> None:
        self._database = database
        self._settings = settings
        self._observer = observer
        self._provider = settings.llm_provider
        self._model = settings.llm_model
        self.config_hash = config_fingerprint(settings, prompts_dir)
        self._max_age = settings.llm_cache_max_age.total_seconds()
        self._memory: OrderedDict[tuple[str, str], CachedResult] = OrderedDict()
        self._memory_entries = memory_entries
        self._memory_enabled = False
        # Bumped by every eviction and every change of listening state: a result read or written
        # while it changed may be stale and is not put into memory.
        self._generation = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def listening(self) -> bool:
        return self._memory_enabled

    async def get(self, operation: str, key: str) -> Any | None:
        memory_key = (operation, key)
        if self._memory_enabled:
            entry = self._memory.get(memory_key)
            if entry is not None:
                if self._fresh(entry):
                    self._memory.move_to_end(memory_key)
                    self._observer.cache_hit(operation, "memory")
                    return entry.response
                del self._memory[memory_key]
        generation = self._generation
        try:
            entry = await self._database.run(lookup, operation, self.config_hash, key, self._max_age)
        except DatabaseUnavailable:
            entry = None  # /health and the 503s of other requests say so already
        except DatabaseTimeout as error:
            log.warning("llm cache read skipped: %s", error.reason)
            entry = None
        if entry is None:
            self._observer.cache_miss(operation)
            return None
        self._observer.cache_hit(operation, "database")
        self._remember(memory_key, entry, generation)
        return entry.response

    async def put(
        self, operation: str, key: str, response: Any, *, note_hash: str | None, from_document: bool
    ) -> None:
        """Cache `response`; `note_hash` names the note it was computed from (None for none), and
        `from_document` says that note was read from the documents table for this request."""
        generation = self._generation
        try:
            stored = await self._database.run(
                store,
                operation=operation,
                config_hash=self.config_hash,
                key=key,
                note_hash=note_hash,
                from_document=from_document,
                provider=self._provider,
                model=self._model,
                response=response,
            )
        except DatabaseUnavailable:
            return
        except DatabaseTimeout as error:
            log.warning("llm cache write skipped: %s", error.reason)
            return
        if stored:
            self._remember((operation, key), CachedResult(response, note_hash, time.time()), generation)

    def _fresh(self, entry: CachedResult) -> bool:
        return time.time() - entry.created_at < self._max_age

    def _remember(self, memory_key: tuple[str, str], entry: CachedResult, generation: int) -> None:
        if not self._memory_enabled or generation != self._generation:
            return
        self._memory[memory_key] = entry
        self._memory.move_to_end(memory_key)
        while len(self._memory) > self._memory_entries:
            self._memory.popitem(last=False)

    def _set_memory_enabled(self, enabled: bool) -> None:
        self._generation += 1
        self._memory.clear()
        self._memory_enabled = enabled

    def _on_eviction(self, connection: object, pid: int, channel: str, payload: str) -> None:
        self._generation += 1
        for memory_key in [key for key, entry in self._memory.items() if entry.note_hash == payload]:
            del self._memory[memory_key]
        self._observer.cache_invalidated()

    # ---- background work, one of each per worker -----------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="llm-cache-listener"),
            asyncio.create_task(self._purge_periodically(), name="llm-cache-purge"),
        ]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        first_wait, longest_wait = LISTENER_RETRY_SECONDS
        wait = first_wait
        while True:
            try:
                await self._listen_once()
            except (*UNAVAILABLE_ERRORS, *CONNECTION_ERRORS) as error:
                if self._memory_enabled:
                    log.warning("llm cache: eviction listener lost: %s", describe_connection_error(error))
            if self._memory_enabled:
                log.warning("llm cache: in-memory cache off until the eviction listener is back")
                wait = first_wait
            self._set_memory_enabled(False)
            await asyncio.sleep(wait)
            wait = min(wait * 2, longest_wait)

    async def _listen_once(self) -> None:
        """LISTEN on a connection of its own; returns or raises when that connection is gone."""
        connection = await asyncpg.connect(
            self._settings.database_url,
            timeout=self._settings.db_connect_timeout,
            server_settings={"application_name": "medical-notes-cache-listener"},
        )
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(CACHE_EVICTION_CHANNEL, self._on_eviction)
            self._set_memory_enabled(True)
            log.info("llm cache: listening for evictions; in-memory cache on")
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), LISTENER_KEEPALIVE_SECONDS)
                except TimeoutError:
                    await connection.fetchval("SELECT 1", timeout=self._settings.db_connect_timeout)
        finally:
            connection.terminate()

    async def _purge_periodically(self) -> None:
        interval = min(self._max_age, MAX_PURGE_INTERVAL_SECONDS)
        while True:
            for memory_key in [key for key, entry in self._memory.items() if not self._fresh(entry)]:
                del self._memory[memory_key]
            try:
                removed = await self._database.run(purge_expired, self._max_age)
                removed_extractions = await self._database.run(purge_expired_pasted_text, self._max_age)
            except (DatabaseUnavailable, DatabaseTimeout):
                removed = removed_extractions = 0
            if removed:
                log.info("llm cache: removed %d results older than LLM_CACHE_MAX_AGE", removed)
            if removed_extractions:
                log.info(
                    "extractions: removed %d results of pasted text older than LLM_CACHE_MAX_AGE",
                    removed_extractions,
                )
            await asyncio.sleep(interval)
