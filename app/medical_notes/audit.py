"""The audit trail: who read or changed which note, when, with what result. Never content.

Writes store their row in the transaction that changes the note. Reads are buffered per worker and
written with COPY every AUDIT_FLUSH_MS or AUDIT_FLUSH_ROWS rows, and on a clean shutdown; a crash
(SIGKILL, power loss) loses at most the reads of the last flush interval. Rows older than
AUDIT_RETENTION_DAYS are deleted at start and hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg

from medical_notes.config import Settings
from medical_notes.db import CONNECTION_ERRORS, Database, DatabaseUnavailable

log = logging.getLogger(__name__)

COLUMNS = ("at", "client", "action", "document_id", "status", "request_id")
PURGE_INTERVAL_SECONDS = 3600.0
# Reads kept in memory while PostgreSQL is down; beyond this the oldest are dropped (and counted).
MAX_PENDING_ROWS = 100_000

AuditRow = tuple[datetime, str, str, int | None, int, str]


async def insert(
    connection: asyncpg.Connection,
    *,
    client: str,
    action: str,
    document_id: int | None,
    status: int,
    request_id: str,
) -> None:
    await connection.execute(
        """
        INSERT INTO audit_log (client, action, document_id, status, request_id)
        VALUES ($1, $2, $3, $4, $5)
        """,
        client,
        action,
        document_id,
        status,
        request_id,
    )


async def query(
    connection: asyncpg.Pool | asyncpg.Connection,
    *,
    document_id: int | None = None,
    client: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Matching rows, oldest first."""
    rows = await connection.fetch(
        """
        SELECT at, client, action, document_id, status, request_id FROM audit_log
        WHERE ($1::bigint IS NULL OR document_id = $1)
          AND ($2::text IS NULL OR client = $2)
          AND ($3::timestamptz IS NULL OR at >= $3)
        ORDER BY at, id
        LIMIT $4
        """,
        document_id,
        client,
        since,
        limit,
    )
    return [{**dict(row), "at": row["at"].isoformat()} for row in rows]


async def purge(connection: asyncpg.Pool | asyncpg.Connection, retention_days: int) -> int:
    result = await connection.execute(
        "DELETE FROM audit_log WHERE at < now() - make_interval(days => $1)", retention_days
    )
    return int(result.split()[-1])


class AuditTrail:
    """The worker's side of the audit trail: the read buffer, its flusher and the retention purge."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.enabled = settings.audit_enabled
        self._database = database
        self._retention_days = settings.audit_retention_days
        self._flush_seconds = settings.audit_flush_ms / 1000
        self._flush_rows = settings.audit_flush_rows
        self._pending: list[AuditRow] = []
        self._dropped = 0
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.enabled:
            log.warning("AUDIT_ENABLED=false: reads and changes of notes are not recorded")
        await self.purge()
        self._task = asyncio.create_task(self._run(), name="audit-flusher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._pending:
            log.error("audit: %d read events could not be written before shutdown", len(self._pending))

    def record(
        self, *, client: str, action: str, document_id: int | None, status: int, request_id: str
    ) -> None:
        """Queue one event (a read, or a write that changed nothing); written by the next flush."""
        if not self.enabled:
            return
        self._pending.append((datetime.now(UTC), client, action, document_id, status, request_id))
        if len(self._pending) >= self._flush_rows:
            self._wake.set()

    async def write(
        self,
        connection: asyncpg.Connection,
        *,
        client: str,
        action: str,
        document_id: int | None,
        status: int,
        request_id: str,
    ) -> None:
        """Store one event now, on the caller's connection (inside its transaction)."""
        if self.enabled:
            await insert(
                connection,
                client=client,
                action=action,
                document_id=document_id,
                status=status,
                request_id=request_id,
            )

    async def flush(self) -> None:
        async with self._flush_lock:
            if not self._pending:
                return
            rows, self._pending = self._pending, []
            try:
                pool = await self._database.pool()
                await pool.copy_records_to_table("audit_log", records=rows, columns=COLUMNS)
            except (DatabaseUnavailable, *CONNECTION_ERRORS) as error:
                if not isinstance(error, DatabaseUnavailable):
                    await self._database.connection_lost()
                self._pending[:0] = rows
                overflow = len(self._pending) - MAX_PENDING_ROWS
                if overflow > 0:
                    del self._pending[:overflow]
                    self._dropped += overflow
                    log.error("audit: dropped %d read events (database down too long)", self._dropped)
                log.warning("audit: %d read events wait for the database", len(self._pending))
            except asyncpg.PostgresError as error:
                # Not an outage (a damaged schema): retrying cannot help, and the flusher must live on.
                log.error("audit: could not write %d events: %s", len(rows), type(error).__name__)

    async def purge(self) -> None:
        try:
            pool = await self._database.pool()
            deleted = await purge(pool, self._retention_days)
        except (DatabaseUnavailable, *CONNECTION_ERRORS) as error:
            log.warning("audit retention purge skipped: %s", type(error).__name__)
            return
        if deleted:
            log.info("audit: deleted %d rows older than %d days", deleted, self._retention_days)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + PURGE_INTERVAL_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._flush_seconds)
            self._wake.clear()
            await self.flush()
            if loop.time() >= next_purge:
                next_purge = loop.time() + PURGE_INTERVAL_SECONDS
                await self.purge()
