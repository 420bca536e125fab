"""Queries on the documents table (parameterized SQL, one statement per operation: no partial rows)."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg

# Reads and single-statement writes run on the pool; audited writes on a connection in a transaction.
Executor = asyncpg.Pool | asyncpg.Connection

_COLUMNS = "id, title, content, doc_type, metadata, source_key, content_hash, created_at, updated_at"

# Columns a partial update may change; the keys are the only names ever put into SQL text.
UPDATABLE_COLUMNS = ("title", "content", "doc_type", "metadata")


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def row_to_dict(row: asyncpg.Record) -> dict[str, Any]:
    document = dict(row)
    document["created_at"] = document["created_at"].isoformat()
    document["updated_at"] = document["updated_at"].isoformat()
    return document


async def list_ids(pool: Executor) -> list[int]:
    rows = await pool.fetch("SELECT id FROM documents ORDER BY id")
    return [row[0] for row in rows]


async def get(pool: Executor, document_id: int) -> asyncpg.Record | None:
    return await pool.fetchrow(f"SELECT {_COLUMNS} FROM documents WHERE id = $1", document_id)  # noqa: S608


async def get_content(pool: Executor, document_id: int) -> str | None:
    return await pool.fetchval("SELECT content FROM documents WHERE id = $1", document_id)


async def create(
    pool: Executor, *, title: str, content: str, doc_type: str, metadata: dict[str, Any]
) -> asyncpg.Record:
    return await pool.fetchrow(
        f"""
        INSERT INTO documents (title, content, doc_type, metadata, content_hash)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING {_COLUMNS}
        """,  # noqa: S608
        title,
        content,
        doc_type,
        metadata,
        content_hash(content),
    )


async def update(pool: Executor, document_id: int, changes: dict[str, Any]) -> asyncpg.Record | None:
    """Change only the given columns; None when the id does not exist."""
    assignments: list[str] = []
    values: list[Any] = [document_id]
    for column in UPDATABLE_COLUMNS:
        if column in changes:
            values.append(changes[column])
            assignments.append(f"{column} = ${len(values)}")
    if "content" in changes:
        values.append(content_hash(changes["content"]))
        assignments.append(f"content_hash = ${len(values)}")
    assignments.append("updated_at = now()")
    return await pool.fetchrow(
        f"UPDATE documents SET {', '.join(assignments)} WHERE id = $1 RETURNING {_COLUMNS}",  # noqa: S608
        *values,
    )


async def delete(pool: Executor, document_id: int) -> bool:
    deleted = await pool.fetchval("DELETE FROM documents WHERE id = $1 RETURNING id", document_id)
    return deleted is not None
