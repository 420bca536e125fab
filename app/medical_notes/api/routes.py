"""The FastAPI routes: request validation and OpenAPI documentation around Handlers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Security
from fastapi.security import HTTPBearer
from starlette.responses import Response

from medical_notes.api.handlers import Handlers
from medical_notes.api.models import (
    MAX_DOCUMENT_ID,
    AuditEntry,
    Document,
    DocumentCreate,
    DocumentUpdate,
    ErrorResponse,
    ExtractionResponse,
    ExtractRequest,
    HealthResponse,
    NoteAnswerResponse,
    QueryNoteRequest,
    QuestionRequest,
    QuestionResponse,
    StatusResponse,
    SummarizeRequest,
    SummaryResponse,
    ToFhirRequest,
    ToFhirResponse,
)
from medical_notes.api.responses import FastJSONResponse
from medical_notes.metrics import CONTENT_TYPE_LATEST

# Declares the scheme in OpenAPI (Swagger UI's Authorize button); AuthMiddleware does the checking.
BEARER = HTTPBearer(
    auto_error=False,
    description="API_TOKEN (bootstrap admin) or a client key from `python -m medical_notes clients create`",
)
SECURED: list[Any] = [Security(BEARER)]
DENIED = {
    401: {"model": ErrorResponse, "description": "missing, unknown or revoked token"},
    403: {"model": ErrorResponse, "description": "the client's scope does not allow this"},
}

DEFAULT_AUDIT_LIMIT = 100
MAX_AUDIT_LIMIT = 1000

DocumentIdPath = Annotated[int, Path(ge=1, le=MAX_DOCUMENT_ID, description="document id")]

NOT_FOUND = {404: {"model": ErrorResponse, "description": "no document with this id"}}
UNAVAILABLE = {
    503: {"model": ErrorResponse, "description": "database unavailable or busy (Retry-After)"},
    504: {"model": ErrorResponse, "description": "database statement or lock timeout (Retry-After)"},
}
PROVIDER_FAILED = {
    404: {"model": ErrorResponse, "description": "no document with this id"},
    502: {"model": ErrorResponse, "description": "the LLM provider failed or rejected the key"},
    503: {"model": ErrorResponse, "description": "provider rate limit or unreachable, or database down"},
    504: {"model": ErrorResponse, "description": "the LLM provider or a database statement timed out"},
}


def build_router(handlers: Handlers) -> APIRouter:
    public = APIRouter()

    @public.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> Response:
        """Database and index state, provider and version; 503 with a reason when not ready. No token."""
        status, body = await handlers.health()
        return FastJSONResponse(body, status_code=status)

    router = APIRouter(dependencies=SECURED, responses=DENIED)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    )
    async def metrics() -> Response:
        """Request, latency, database pool, cache, index and backup metrics (see docs/reliability.md)."""
        return Response(handlers.metrics(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/status", response_model=StatusResponse, responses={503: {"model": StatusResponse}})
    async def status() -> Response:
        """Documents in the database and the state of this instance's index files, as the `status`
        command prints them (the deployment seeds and indexes from it); 503 when the database does
        not answer. Scope: admin."""
        code, body = await handlers.status()
        return FastJSONResponse(body, status_code=code)

    @router.get("/documents", response_model=list[int], responses=UNAVAILABLE)
    async def list_documents() -> Response:
        """Ids of all documents, ascending. Scope: read."""
        return FastJSONResponse(await handlers.list_documents())

    @router.get("/documents/{document_id}", response_model=Document, responses={**NOT_FOUND, **UNAVAILABLE})
    async def get_document(document_id: DocumentIdPath) -> Response:
        """One document. Scope: read."""
        return FastJSONResponse(await handlers.get_document(document_id))

    @router.post("/documents", status_code=201, response_model=Document, responses=UNAVAILABLE)
    async def create_document(body: DocumentCreate) -> Response:
        """Store a note. Scope: write."""
        return FastJSONResponse(await handlers.create_document(body), status_code=201)

    @router.put("/documents/{document_id}", response_model=Document, responses={**NOT_FOUND, **UNAVAILABLE})
    async def update_document(document_id: DocumentIdPath, body: DocumentUpdate) -> Response:
        """Partial update: fields left out keep their value. Scope: write."""
        return FastJSONResponse(await handlers.update_document(document_id, body))

    @router.delete(
        "/documents/{document_id}",
        status_code=204,
        response_class=Response,
        responses={**NOT_FOUND, **UNAVAILABLE},
    )
    async def delete_document(document_id: DocumentIdPath) -> Response:
        """Delete a note. Scope: write."""
        await handlers.delete_document(document_id)
        return Response(status_code=204)

    @router.post("/summarize_note", response_model=SummaryResponse, responses=PROVIDER_FAILED)
    async def summarize_note(body: SummarizeRequest) -> Response:
        """Summary of a stored document (document_id) or of pasted text; cached per exact note text.
        Scope: read."""
        return FastJSONResponse(await handlers.summarize_note(body))

    @router.post("/query_note", response_model=NoteAnswerResponse, responses=PROVIDER_FAILED)
    async def query_note(body: QueryNoteRequest) -> Response:
        """Answer a question about one note from the note itself. Scope: read."""
        return FastJSONResponse(await handlers.query_note(body))

    @router.post(
        "/answer_question",
        response_model=QuestionResponse,
        responses={
            502: {"model": ErrorResponse, "description": "the LLM provider failed"},
            503: {"model": ErrorResponse, "description": "guideline index unavailable, or provider down"},
            504: {"model": ErrorResponse, "description": "the LLM provider timed out"},
        },
    )
    async def answer_question(body: QuestionRequest) -> Response:
        """Answer a clinical question from the guideline index; [n] in the answer cites sources[n-1].
        Scope: read."""
        return FastJSONResponse(await handlers.answer_question(body))

    @router.get("/audit", response_model=list[AuditEntry], responses=UNAVAILABLE)
    async def audit_log(
        document_id: Annotated[int | None, Query(ge=1, le=MAX_DOCUMENT_ID)] = None,
        client: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        since: Annotated[datetime | None, Query(description="ISO 8601 time; with a zone, or UTC")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_LIMIT)] = DEFAULT_AUDIT_LIMIT,
    ) -> Response:
        """Who read or changed which note, oldest first. Scope: admin."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        entries = await handlers.audit_log(document_id=document_id, client=client, since=since, limit=limit)
        return FastJSONResponse(entries)

    @router.post(
        "/extract_structured",
        response_model=ExtractionResponse,
        responses={**NOT_FOUND, **UNAVAILABLE},
    )
    async def extract_structured(body: ExtractRequest) -> Response:
        """Conditions (ICD-10-CM), medications (RxNorm), vitals and labs (LOINC, UCUM), allergies, family
        history, plan, patient and encounter from one note, offline and deterministic; every value with
        its character span. Cached per exact text; a document's results go when it changes."""
        return FastJSONResponse(await handlers.extract_structured(body))

    @router.post(
        "/to_fhir",
        response_model=ToFhirResponse,
        responses={
            404: {"model": ErrorResponse, "description": "no document or extraction with this id"},
            **UNAVAILABLE,
        },
    )
    async def to_fhir(body: ToFhirRequest) -> Response:
        """The extraction as a validated FHIR R4 Bundle (collection or transaction). Scope: read."""
        return FastJSONResponse(await handlers.to_fhir(body))

    public.include_router(router)
    return public
