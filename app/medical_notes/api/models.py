"""Request and response bodies. Requests are validated here; responses are built as plain dicts on the
hot paths and these models document them in OpenAPI."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_QUESTION_CHARS = 2000
MAX_TOP_K = 20
DEFAULT_TOP_K = 5
MAX_DOCUMENT_ID = 2**63 - 1  # documents.id is a PostgreSQL bigint


def _storable_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded as UTF-8.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


MAX_METADATA_DEPTH = 32


def _storable_json(value: Any, depth: int = 0) -> Any:
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"must not nest deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        _storable_text(value)
    elif isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise ValueError("numbers must fit in 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable_text(key)
            _storable_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable_json(item, depth + 1)
    return value


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_storable_text),
]
DocType = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_storable_text)
]
# The upper bound on note size is MAX_NOTE_CHARS, checked by the routes (it is a setting).
NoteText = Annotated[
    str, StringConstraints(min_length=1), AfterValidator(_not_blank), AfterValidator(_storable_text)
]
Metadata = Annotated[dict[str, Any], AfterValidator(_storable_json)]
Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS),
    AfterValidator(_storable_text),
]
DocumentId = Annotated[int, Field(ge=1, le=MAX_DOCUMENT_ID)]


class DocumentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    content: NoteText
    doc_type: DocType = "soap_note"
    metadata: Metadata = Field(default_factory=dict)


class DocumentUpdate(BaseModel):
    """Partial update: only the fields present change. Omit a field to keep it; null is not a value."""

    model_config = ConfigDict(extra="forbid")

    # Defaults are not validated, so an omitted field stays None while an explicit null is a 422.
    title: Title = None  # type: ignore[assignment]
    content: NoteText = None  # type: ignore[assignment]
    doc_type: DocType = None  # type: ignore[assignment]
    metadata: Metadata = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _something_to_change(self) -> DocumentUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, content, doc_type, metadata")
        return self


class Document(BaseModel):
    id: int
    title: str
    content: str
    doc_type: str
    metadata: dict[str, Any]
    source_key: str | None = Field(description="file stem of a shipped note; null for user documents")
    content_hash: str = Field(description="sha256 of content, hex")
    created_at: str
    updated_at: str


class NoteInput(BaseModel):
    """Exactly one of document_id (a stored document) or text (a note pasted into the request)."""

    model_config = ConfigDict(extra="forbid")

    document_id: DocumentId | None = None
    text: NoteText | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> NoteInput:
        if (self.document_id is None) == (self.text is None):
            raise ValueError("give exactly one of document_id or text")
        return self


class SummarizeRequest(NoteInput):
    pass


class QueryNoteRequest(NoteInput):
    query: Question


class ExtractRequest(NoteInput):
    pass


ExtractionId = Annotated[str, StringConstraints(pattern=r"^ext-[0-9a-f]{32}$")]


class ToFhirRequest(BaseModel):
    """Exactly one of extraction_id (a result /extract_structured returned), document_id or text."""

    model_config = ConfigDict(extra="forbid")

    extraction_id: ExtractionId | None = None
    document_id: DocumentId | None = None
    text: NoteText | None = None
    bundle_type: Literal["collection", "transaction"] = "collection"

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ToFhirRequest:
        given = [self.extraction_id, self.document_id, self.text]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of extraction_id, document_id or text")
        return self


class CodedValue(BaseModel):
    system: str
    code: str
    display: str


class ExtractionResponse(BaseModel):
    """Every item carries `span` [start, end]: text[start:end] of the note is its evidence."""

    extraction_id: str = Field(description="deterministic: pipeline version, provider, model and source hash")
    source_sha256: str
    pipeline_version: str
    terminology: dict[str, str] = Field(description="version of every table used")
    provider: str
    model: str
    cached: bool
    conditions: list[dict[str, Any]] = Field(
        description="{text, span, code: {system, code, display} | null, candidates, assertion, confidence, "
        "source}"
    )
    medications: list[dict[str, Any]] = Field(
        description="one record per drug: {text, span, name, brand, rxnorm, codings, dose, route, frequency, "
        "as_needed, duration, status, mentions: [{span, text, status}]}"
    )
    medications_not_taken: list[dict[str, Any]] = Field(
        default_factory=list,
        description="{text, span, name, rxnorm, codings, reason}: refused, hypothetical, other_person, "
        "susceptibility, do_not_give, not_to_take or allergen; never in medications",
    )
    detected_issues: list[dict[str, Any]] = Field(
        default_factory=list, description="{kind: drug-allergy, medication, allergy, span, detail}"
    )
    vital_signs: list[dict[str, Any]] = Field(
        description="{kind, loinc, value | systolic+diastolic, unit, span}"
    )
    lab_results: list[dict[str, Any]] = Field(
        description="{name, loinc, value, unit, reference_range, flag, span}"
    )
    allergies: list[dict[str, Any]]
    procedures: list[dict[str, Any]]
    family_history: list[dict[str, Any]]
    plan: list[dict[str, Any]]
    patient: dict[str, Any]
    encounter: dict[str, Any]
    warnings: list[str]


class FhirValidation(BaseModel):
    valid: bool
    errors: list[str]
    warnings: list[str]


class ToFhirResponse(BaseModel):
    extraction_id: str
    bundle: dict[str, Any] = Field(description="FHIR R4 Bundle (collection or transaction)")
    validation: FhirValidation
    resource_counts: dict[str, int]


class QuestionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    top_k: int = Field(default=DEFAULT_TOP_K, ge=1, le=MAX_TOP_K)


class SummaryResponse(BaseModel):
    summary: str
    provider: str
    model: str
    cached: bool


class NoteAnswerResponse(BaseModel):
    answer: str
    provider: str
    model: str
    cached: bool


class Source(BaseModel):
    id: int = Field(description="citation number used as [id] in the answer")
    document: str
    section: str
    text: str
    score: float


class QuestionResponse(BaseModel):
    answer: str
    sources: list[Source]
    confidence: float = Field(description="similarity of the best passage, 0 to 1 (0 without sources)")
    retrieved_count: int
    provider: str
    model: str
    cached: bool


class HealthResponse(BaseModel):
    status: str = Field(description='"ok", or "unavailable" with a reason')
    reason: str | None
    version: str
    database: dict[str, Any]
    index: dict[str, Any]
    provider: dict[str, Any]
    maintenance: dict[str, Any] = Field(
        description="last_backup_at, last_backup_attempt_at, last_backup_error from BACKUP_STATUS_FILE "
        "(all null when it is not set or not written yet); never makes /health fail"
    )


class StatusResponse(BaseModel):
    """What `python -m medical_notes status` prints; the deployment seeds and indexes from it."""

    version: str
    database_ok: bool = Field(description="a query round trip worked")
    database_error: str | None = Field(description="why not, when database_ok is false")
    schema_version: int | None = Field(description="applied schema migration; null before the first start")
    documents: int = Field(description="rows in documents (0 when the database is not readable)")
    shipped_notes: int = Field(description="note files in SOAP_NOTES_DIR")
    shipped_notes_present: int = Field(description="of those, how many have a row")
    index_present: bool = Field(description="index files exist in FAISS_INDEX_DIR")
    index_valid: bool = Field(
        description="the files load, match each other, the guideline sources and the embedding settings"
    )
    index_reason: str | None = Field(description="why the index is not valid")
    index_chunks: int
    index_documents: int
    embedding: dict[str, Any] = Field(description="provider, model, dim: of the index, else of the settings")


class ErrorResponse(BaseModel):
    detail: str


class AuditEntry(BaseModel):
    at: str = Field(description="ISO 8601 time of the request")
    client: str = Field(description="client name; 'bootstrap' for API_TOKEN, 'anonymous' without auth")
    action: str = Field(description="document.read|list|create|update|delete, note.summarize, note.query")
    document_id: int | None
    status: int = Field(description="HTTP status of the answer")
    request_id: str = Field(description="the X-Request-ID of the request")
