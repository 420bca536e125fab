"""What each endpoint does, independent of how the request arrived (FastAPI route or the fast lane).

Every method returns the JSON-ready body, or raises: HTTPException (404), RequestValidationError (a
setting-dependent limit), DatabaseUnavailable, DatabaseTimeout, ProviderError, IndexUnavailable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from medical_notes import __version__, audit, documents
from medical_notes.api.context import AuditEvent, audit_event, current_request
from medical_notes.api.models import (
    DocumentCreate,
    DocumentUpdate,
    ExtractRequest,
    NoteInput,
    QueryNoteRequest,
    QuestionRequest,
    SummarizeRequest,
    ToFhirRequest,
)
from medical_notes.api.services import Services
from medical_notes.cache import input_hash, note_hash
from medical_notes.extraction.terminology import TerminologyUnavailable
from medical_notes.fhir import build_bundle
from medical_notes.status import collect_status


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
                "built_at": index.built_at,
            },
            "provider": {"name": self.provider.name, "model": self.provider.model},
            # Reported, never a reason for 503: the API serves fine while a backup is overdue.
            "maintenance": self.services.backup_status().as_health(),
        }
        return (503 if problems else 200), body

    async def status(self) -> tuple[int, dict[str, Any]]:
        body = await collect_status(self.services.settings)
        return (200 if body["database_ok"] else 503), body

    def metrics(self) -> bytes:
        self.services.sample_pool()
        return self.services.metrics.render()

    async def list_documents(self) -> list[int]:
        audit_event("document.list")
        return await self.database.run(documents.list_ids)

    async def list_note_titles(self, title_contains: str, limit: int) -> list[dict[str, Any]]:
        audit_event("document.list")
        rows = await self.database.run(documents.list_titles, title_contains, limit)
        return [dict(row) for row in rows]

    async def get_document(self, document_id: int) -> dict[str, Any]:
        audit_event("document.read", document_id)
        row = await self.database.run(documents.get, document_id)
        if row is None:
            raise not_found(document_id)
        return documents.row_to_dict(row)

    async def create_document(self, body: DocumentCreate) -> dict[str, Any]:
        event = audit_event("document.create")
        if len(body.content) > self.max_note_chars:
            raise too_long("content", self.max_note_chars)

        async def create(connection: asyncpg.Connection) -> asyncpg.Record:
            async with connection.transaction():
                row = await documents.create(
                    connection,
                    title=body.title,
                    content=body.content,
                    doc_type=body.doc_type,
                    metadata=body.metadata,
                )
                await self._record_write(connection, event, row["id"], 201)
            return row

        row = await self.database.run(create)
        if event is not None:
            event.document_id = row["id"]
            event.recorded = True
        return documents.row_to_dict(row)

    async def update_document(self, document_id: int, body: DocumentUpdate) -> dict[str, Any]:
        event = audit_event("document.update", document_id)
        changes = body.model_dump(exclude_unset=True)
        if "content" in changes and len(changes["content"]) > self.max_note_chars:
            raise too_long("content", self.max_note_chars)

        async def update(connection: asyncpg.Connection) -> asyncpg.Record:
            async with connection.transaction():
                row = await documents.update(connection, document_id, changes)
                if row is None:
                    raise not_found(document_id)
                await self._record_write(connection, event, document_id, 200)
            return row

        row = await self.database.run(update)
        if event is not None:
            event.recorded = True
        return documents.row_to_dict(row)

    async def delete_document(self, document_id: int) -> None:
        event = audit_event("document.delete", document_id)

        async def delete(connection: asyncpg.Connection) -> None:
            async with connection.transaction():
                if not await documents.delete(connection, document_id):
                    raise not_found(document_id)
                await self._record_write(connection, event, document_id, 204)

        await self.database.run(delete)
        if event is not None:
            event.recorded = True

    async def audit_log(
        self, *, document_id: int | None, client: str | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        await self.audit.flush()  # this worker's buffered reads first, so they show at once
        return await self.database.run(
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
        content = await self.database.run(documents.get_content, body.document_id)
        if content is None:
            raise not_found(body.document_id)
        return content

    async def _cached_completion(
        self,
        operation: str,
        field: str,
        key: str,
        complete: Callable[[], Awaitable[str]],
        *,
        note: tuple[NoteInput, str] | None = None,
    ) -> tuple[str, bool]:
        """The provider's text for this input from the cache, or fresh (then cached); and whether cached.

        `field` names the text in the stored JSON ({"summary": ...} or {"answer": ...}); `note` is
        the request's note and its text, whose results must go when a document with that text goes."""
        cached = await self.cache.get(operation, key)
        if cached is not None:
            return cached[field], True
        text = await complete()
        if note is None:
            await self.cache.put(operation, key, {field: text}, note_hash=None, from_document=False)
        else:
            request, note_text = note
            await self.cache.put(
                operation,
                key,
                {field: text},
                note_hash=note_hash(note_text),
                from_document=request.document_id is not None,
            )
        return text, False

    async def summarize_note(self, body: SummarizeRequest) -> dict[str, Any]:
        note = await self._note_text(body, "note.summarize")
        summary, cached = await self._cached_completion(
            "summarize",
            "summary",
            input_hash(note),
            lambda: self.provider.summarize(note),
            note=(body, note),
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
            note=(body, note),
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

    async def extract_structured(self, body: ExtractRequest) -> dict[str, Any]:
        note = await self._note_text(body, "note.extract")
        try:
            result, cached = await self.services.extraction.extract(note, body.document_id)
        except TerminologyUnavailable as error:
            raise HTTPException(503, str(error)) from None
        return {**result, "cached": cached}

    async def to_fhir(self, body: ToFhirRequest) -> dict[str, Any]:
        try:
            return await self._to_fhir(body)
        except TerminologyUnavailable as error:
            raise HTTPException(503, str(error)) from None

    async def _to_fhir(self, body: ToFhirRequest) -> dict[str, Any]:
        source_text: str | None = None
        if body.extraction_id is not None:
            extraction = await self.services.extraction.fetch(body.extraction_id)
            if extraction is None:
                raise HTTPException(404, f"extraction {body.extraction_id} not found")
        else:
            source_text = await self._note_text(
                ExtractRequest(document_id=body.document_id, text=body.text), "note.export"
            )
            extraction, _ = await self.services.extraction.extract(source_text, body.document_id)
        # pydantic validation of the whole bundle is CPU work: off the event loop
        result = await asyncio.to_thread(
            build_bundle, extraction, bundle_type=body.bundle_type, source_text=source_text
        )
        return {"extraction_id": extraction["extraction_id"], **result.model_dump()}
