"""What each endpoint does, independent of how the request arrived (FastAPI route or the fast lane).

Every method returns the JSON-ready body, or raises: HTTPException (404), RequestValidationError (a
setting-dependent limit), DatabaseUnavailable, ProviderError, IndexUnavailable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from medical_notes import __version__, documents
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
from medical_notes.cache import input_hash
from medical_notes.db import CONNECTION_ERRORS, DatabaseUnavailable, describe_connection_error
from medical_notes.extraction.terminology import TerminologyUnavailable
from medical_notes.fhir import build_bundle

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
        self.max_note_chars = services.settings.max_note_chars

    async def _query(self, query: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run one documents query on the pool; a lost connection becomes DatabaseUnavailable (503)."""
        pool = await self.database.pool()
        try:
            return await query(pool, *args, **kwargs)
        except CONNECTION_ERRORS as error:
            await self.database.connection_lost()
            raise DatabaseUnavailable(describe_connection_error(error)) from error

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
        return await self._query(documents.list_ids)

    async def get_document(self, document_id: int) -> dict[str, Any]:
        row = await self._query(documents.get, document_id)
        if row is None:
            raise not_found(document_id)
        return documents.row_to_dict(row)

    async def create_document(self, body: DocumentCreate) -> dict[str, Any]:
        if len(body.content) > self.max_note_chars:
            raise too_long("content", self.max_note_chars)
        row = await self._query(
            documents.create,
            title=body.title,
            content=body.content,
            doc_type=body.doc_type,
            metadata=body.metadata,
        )
        return documents.row_to_dict(row)

    async def update_document(self, document_id: int, body: DocumentUpdate) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        if "content" in changes and len(changes["content"]) > self.max_note_chars:
            raise too_long("content", self.max_note_chars)
        row = await self._query(documents.update, document_id, changes)
        if row is None:
            raise not_found(document_id)
        return documents.row_to_dict(row)

    async def delete_document(self, document_id: int) -> None:
        if not await self._query(documents.delete, document_id):
            raise not_found(document_id)

    async def _note_text(self, body: NoteInput) -> str:
        if body.text is not None:
            if len(body.text) > self.max_note_chars:
                raise too_long("text", self.max_note_chars)
            return body.text
        assert body.document_id is not None
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
        note = await self._note_text(body)
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
        note = await self._note_text(body)
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

    async def extract_structured(self, body: ExtractRequest) -> dict[str, Any]:
        note = await self._note_text(body)
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
            source_text = await self._note_text(ExtractRequest(document_id=body.document_id, text=body.text))
            extraction, _ = await self.services.extraction.extract(source_text, body.document_id)
        # pydantic validation of the whole bundle is CPU work: off the event loop
        result = await asyncio.to_thread(
            build_bundle, extraction, bundle_type=body.bundle_type, source_text=source_text
        )
        return {"extraction_id": extraction["extraction_id"], **result.model_dump()}
