"""The contract every language-model provider fulfils, and the error type the API maps to HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from medical_notes.config import Settings


class ProviderError(Exception):
    """An upstream provider failed; ``status_code`` is the HTTP status the API answers with.

    502 for a bad upstream answer or a rejected key, 503 for rate limits and unreachable servers,
    504 for timeouts. The message is shown to API clients, so it never contains a key.
    """

    def __init__(self, message: str, status_code: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True)
class Passage:
    """One retrieved guideline chunk, numbered so that an answer can cite it."""

    id: int  # 1-based citation number: the answer's [1] refers to the passage with id 1
    document: str  # guideline title
    section: str  # section heading
    text: str
    score: float  # cosine similarity to the question


@runtime_checkable
class LLMProvider(Protocol):
    name: str  # "offline" | "openai" | "anthropic"
    model: str

    async def summarize(self, note: str) -> str: ...

    async def query_note(self, note: str, query: str) -> str: ...

    async def answer_question(self, question: str, passages: Sequence[Passage]) -> str:
        """Answer from the passages only, citing them inline as [n] with n = Passage.id."""
        ...

    async def aclose(self) -> None: ...


def public_endpoint(url: str | None, default: str) -> str:
    """A base URL fit for error messages: scheme, host, port and path, without credentials or query."""
    if not url:
        return default
    parts = urlsplit(url)
    if not parts.hostname:
        return "the configured LLM_BASE_URL"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}".rstrip("/")


def api_key(settings: Settings) -> str:
    """The configured key; a remote provider without one is a configuration error, not a request error."""
    settings.check_llm_credentials()
    assert settings.llm_api_key is not None
    return settings.llm_api_key.get_secret_value()
