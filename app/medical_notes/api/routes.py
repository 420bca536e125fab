"""The FastAPI routes: request validation and OpenAPI documentation around Handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from medical_notes.api.handlers import Handlers
from medical_notes.api.models import (
    MAX_DOCUMENT_ID,
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
    SummarizeRequest,
    SummaryResponse,
    ToFhirRequest,
    ToFhirResponse,
)
from medical_notes.api.responses import FastJSONResponse

DocumentIdPath = Annotated[int, Path(ge=1, le=MAX_DOCUMENT_ID, description="document id")]

NOT_FOUND = {404: {"model": ErrorResponse, "description": "no document with this id"}}
UNAVAILABLE = {503: {"model": ErrorResponse, "description": "database unavailable"}}
PROVIDER_FAILED = {
    404: {"model": ErrorResponse, "description": "no document with this id"},
    502: {"model": ErrorResponse, "description": "the LLM provider failed or rejected the key"},
    503: {"model": ErrorResponse, "description": "provider rate limit or unreachable, or database down"},
    504: {"model": ErrorResponse, "description": "the LLM provider timed out"},
}


def build_router(handlers: Handlers) -> APIRouter:
    router = APIRouter()

    @router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> Response:
        """Database and index state, provider and version; 503 with a reason when not ready. No token."""
        status, body = await handlers.health()
        return FastJSONResponse(body, status_code=status)

    @router.get("/documents", response_model=list[int], responses=UNAVAILABLE)
    async def list_documents() -> Response:
        """Ids of all documents, ascending."""
        return FastJSONResponse(await handlers.list_documents())

    @router.get("/documents/{document_id}", response_model=Document, responses={**NOT_FOUND, **UNAVAILABLE})
    async def get_document(document_id: DocumentIdPath) -> Response:
        return FastJSONResponse(await handlers.get_document(document_id))

    @router.post("/documents", status_code=201, response_model=Document, responses=UNAVAILABLE)
    async def create_document(body: DocumentCreate) -> Response:
        return FastJSONResponse(await handlers.create_document(body), status_code=201)

    @router.put("/documents/{document_id}", response_model=Document, responses={**NOT_FOUND, **UNAVAILABLE})
    async def update_document(document_id: DocumentIdPath, body: DocumentUpdate) -> Response:
        """Partial update: fields left out keep their value."""
        return FastJSONResponse(await handlers.update_document(document_id, body))

    @router.delete(
        "/documents/{document_id}",
        status_code=204,
        response_class=Response,
        responses={**NOT_FOUND, **UNAVAILABLE},
    )
    async def delete_document(document_id: DocumentIdPath) -> Response:
        await handlers.delete_document(document_id)
        return Response(status_code=204)

    @router.post("/summarize_note", response_model=SummaryResponse, responses=PROVIDER_FAILED)
    async def summarize_note(body: SummarizeRequest) -> Response:
        """Summary of a stored document (document_id) or of pasted text; cached per exact note text."""
        return FastJSONResponse(await handlers.summarize_note(body))

    @router.post("/query_note", response_model=NoteAnswerResponse, responses=PROVIDER_FAILED)
    async def query_note(body: QueryNoteRequest) -> Response:
        """Answer a question about one note from the note itself."""
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
        """Answer a clinical question from the guideline index; [n] in the answer cites sources[n-1]."""
        return FastJSONResponse(await handlers.answer_question(body))

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
        """The extraction as a validated FHIR R4 Bundle (collection, or transaction on request)."""
        return FastJSONResponse(await handlers.to_fhir(body))

    return router
