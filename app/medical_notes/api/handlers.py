"""What each endpoint does, independent of how the request arrived (FastAPI route or the fast lane).

Every method returns the JSON-ready body, or raises: HTTPException (404), RequestValidationError (a
setting-dependent limit), DatabaseUnavailable, ProviderError, IndexUnavailable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from medical_notes import __version__, audit, documents
from medical_notes.api.context import AuditEvent, audit_event, current_request
from medical_notes.api.models import (
    DocumentCreate,
    DocumentUpdate,
    NoteInput,
    QueryNoteRequest,
    QuestionRequest,
    SummarizeRequest,
)
from medical_notes.api.services import Services
from medical_notes.cache import input_hash
from medical_notes.db import CONNECTION_ERRORS, DatabaseUnavailable, describe_connection_error

T = TypeVar("T")


def too_long(field: str, limit: int) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "string_too_long",
                "loc": ("body", field),
                "msg": f"String should have at most {limit} characters (MAX_NOTE_CHARS)",
            }
        ]
    )


def not_found(document_id: int) -> HTTPException:
    return HTTPException(404, f"document {document_id} not found")


class Handlers:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.database = services.database
        self.cache = services.cache
        self.provider = services.provider
        self.audit = services.audit
        self.max_note_chars = services.settings.max_note_chars

    async def _query(self, query: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run one documents query on the pool; a lost connection becomes DatabaseUnavailable (503)."""
        pool = await self.database.pool()
        try:
            return await query(pool, *args, **kwargs)
        except CONNECTION_ERRORS as error:
            await self.database.connection_lost()
            raise DatabaseUnavailable(describe_connection_error(error)) from error

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction; a lost connection becomes DatabaseUnavailable (503)."""
        pool = await self.database.pool()
        try:
            async with pool.acquire() as connection, connection.transaction():
                yield connection
        except CONNECTION_ERRORS as error:
            await self.database.connection_lost()
            raise DatabaseUnavailable(describe_connection_error(error)) from error

    async def _record_write(
        self, connection: asyncpg.Connection, event: AuditEvent | None, document_id: int, status: int
    ) -> None:
        """The audit row of a change, in the change's transaction (RequestContextMiddleware records
        the event instead when the change fails)."""
        context = current_request.get()
        if event is None or context is None:
            return
        await self.audit.write(
            connection,
            client=context.client,
            action=event.action,
            document_id=document_id,
            status=status,
            request_id=context.request_id,
        )

    async def health(self) -> tuple[int, dict[str, Any]]:
        database_problem = await self.database.ping()
        index = self.services.index_status()
        problems = []
        if database_problem:
            problems.append(database_problem)
        if not index.valid:
            problems.append(f"guideline index unavailable: {index.reason}")
        body = {
            "status": "unavailable" if problems else "ok",
            "reason": "; ".join(problems) or None,
            "version": __version__,
            "database": {
                "ok": database_problem is None,
                "reason": database_problem,
                "schema_version": self.database.schema_version,
            },
            "index": {
                "ok": index.valid,
                "present": index.present,
                "reason": index.reason,
                "documents": index.documents,
                "chunks": index.chunks,
                "embedding": index.embedding,
            },
            "provider": {"name": self.provider.name, "model": self.provider.model},
        }
        return (503 if problems else 200), body

    async def list_documents(self) -> list[int]:
        audit_event("document.list")
        return await self._query(documents.list_ids)

    async def get_document(self, document_id: int) -> dict[str, Any]:
        audit_event("document.read", document_id)
        row = await self._query(documents.get, document_id)
        if row is None:
            raise not_found(document_id)
        return documents.row_to_dict(row)

    async def create_document(self, body: DocumentCreate) -> dict[str, Any]:
        event = audit_event("document.create")
        if len(body.content) > self.max_note_chars:
            raise too_long("content", self.max_note_chars)
        async with self._transaction() as connection:
            row = await documents.create(
                connection,
                title=body.title,
                content=body.content,
                doc_type=body.doc_type,
                metadata=body.metadata,
            )
            await self._record_write(connection, event, row["id"], 201)
        if event is not None:
            event.document_id = row["id"]
            event.recorded = True
        return documents.row_to_dict(row)

    async def update_document(self, document_id: int, body: DocumentUpdate) -> dict[str, Any]:
        event = audit_event("document.update", document_id)
        changes = body.model_dump(exclude_unset=True)
        if "content" in changes and len(changes["content"]) > self.max_note_chars:
            raise too_long("content", self.max_note_chars)
        async with self._transaction() as connection:
            row = await documents.update(connection, document_id, changes)
            if row is None:
                raise not_found(document_id)
            await self._record_write(connection, event, document_id, 200)
        if event is not None:
            event.recorded = True
        return documents.row_to_dict(row)

    async def delete_document(self, document_id: int) -> None:
        event = audit_event("document.delete", document_id)
        async with self._transaction() as connection:
            if not await documents.delete(connection, document_id):
                raise not_found(document_id)
            await self._record_write(connection, event, document_id, 204)
        if event is not None:
            event.recorded = True

    async def audit_log(
        self, *, document_id: int | None, client: str | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        await self.audit.flush()  # this worker's buffered reads first, so they show at once
        return await self._query(
            audit.query, document_id=document_id, client=client, since=since, limit=limit
        )

    async def _note_text(self, body: NoteInput, action: str = "note.read") -> str:
        """The note a request is about: pasted text, or a stored document (an audited read)."""
        if body.text is not None:
            if len(body.text) > self.max_note_chars:
                raise too_long("text", self.max_note_chars)
            return body.text
        assert body.document_id is not None
        audit_event(action, body.document_id)
        content = await self._query(documents.get_content, body.document_id)
        if content is None:
            raise not_found(body.document_id)
        return content

    async def _cached_completion(
        self, operation: str, field: str, key: str, complete: Callable[[], Awaitable[str]]
    ) -> tuple[str, bool]:
        """The provider's text for this input from the cache, or fresh (then cached); and whether cached.

        `field` names the text in the stored JSON ({"summary": ...} or {"answer": ...}), the format
        existing cache rows have."""
        provider = self.provider
        cached = await self.cache.get(operation, provider.name, provider.model, key)
        if cached is not None:
            return cached[field], True
        text = await complete()
        await self.cache.put(operation, provider.name, provider.model, key, {field: text})
        return text, False

    async def summarize_note(self, body: SummarizeRequest) -> dict[str, Any]:
        note = await self._note_text(body, "note.summarize")
        summary, cached = await self._cached_completion(
            "summarize", "summary", input_hash(note), lambda: self.provider.summarize(note)
        )
        return {
            "summary": summary,
            "provider": self.provider.name,
            "model": self.provider.model,
            "cached": cached,
        }

    async def query_note(self, body: QueryNoteRequest) -> dict[str, Any]:
        note = await self._note_text(body, "note.query")
        answer, cached = await self._cached_completion(
            "query_note",
            "answer",
            input_hash(note, body.query),
            lambda: self.provider.query_note(note, body.query),
        )
        return {
            "answer": answer,
            "provider": self.provider.name,
            "model": self.provider.model,
            "cached": cached,
        }

    async def answer_question(self, body: QuestionRequest) -> dict[str, Any]:
        passages = await self.services.index_store.search(body.question, body.top_k)
        # Keyed by the passages too, so a rebuilt index never serves an answer that cites old text.
        key = input_hash(body.question, *(f"{p.document}\x1f{p.section}\x1f{p.text}" for p in passages))
        answer, cached = await self._cached_completion(
            "answer_question", "answer", key, lambda: self.provider.answer_question(body.question, passages)
        )
        sources = [
            {"id": p.id, "document": p.document, "section": p.section, "text": p.text, "score": p.score}
            for p in passages
        ]
        confidence = round(min(max(passages[0].score, 0.0), 1.0), 4) if passages else 0.0
        return {
            "answer": answer,
            "sources": sources,
            "confidence": confidence,
            "retrieved_count": len(passages),
            "provider": self.provider.name,
            "model": self.provider.model,
            "cached": cached,
        }
