"""Extraction results in PostgreSQL (table `extractions`, schema migration 4).

Rows are keyed by the deterministic extraction_id (pipeline version, provider, model and the hash of
the exact text). A row made from a stored document carries its id: the row goes when the document is
deleted (foreign key) or its content changes (trigger), so no copy of an old note outlives it. A row
made from pasted text belongs to no document: it is kept for LLM_CACHE_MAX_AGE, like the LLM cache.
"""

from __future__ import annotations

from typing import Any

import asyncpg


async def fetch(connection: asyncpg.Connection, extraction_id: str) -> dict[str, Any] | None:
    row = await connection.fetchrow(
        "SELECT result, document_id FROM extractions WHERE extraction_id = $1", extraction_id
    )
    if row is None:
        return None
    return {"result": row["result"], "document_id": row["document_id"]}


async def store(connection: asyncpg.Connection, result: dict[str, Any], document_id: int | None) -> bool:
    """Insert or refresh, linked to the document it was made from. Nothing is stored when that document
    was deleted or changed while the extraction ran (the result describes text that is gone)."""
    async with connection.transaction():
        if document_id is not None:
            current_hash = await connection.fetchval(
                "SELECT content_hash FROM documents WHERE id = $1 FOR SHARE", document_id
            )
            if current_hash != result["source_sha256"]:
                return False
        await connection.execute(
            """
            INSERT INTO extractions
                (extraction_id, document_id, source_sha256, pipeline_version, provider, model, result)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (extraction_id) DO UPDATE
                SET document_id = coalesce(EXCLUDED.document_id, extractions.document_id),
                    result = EXCLUDED.result
            """,
            result["extraction_id"],
            document_id,
            result["source_sha256"],
            result["pipeline_version"],
            result["provider"],
            result["model"],
            result,
        )
    return True


async def purge_expired_pasted_text(connection: asyncpg.Connection, max_age_seconds: float) -> int:
    """Delete results of pasted text older than the cache age bound; a document's rows go with it."""
    status = await connection.execute(
        """
        DELETE FROM extractions
         WHERE document_id IS NULL AND created_at <= now() - make_interval(secs => $1)
        """,
        max_age_seconds,
    )
    return int(status.split()[-1])
