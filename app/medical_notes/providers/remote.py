"""What the OpenAI and Anthropic providers share: prompts in, text out, SDK errors mapped to HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from medical_notes.config import Settings
from medical_notes.providers.base import Passage, ProviderError, api_key, public_endpoint
from medical_notes.providers.prompting import (
    Prompt,
    answer_question_prompt,
    extraction_prompt,
    query_note_prompt,
    summarize_prompt,
)

# 529 is Anthropic's "overloaded": temporary, like a rate limit
TEMPORARY_UPSTREAM_STATUSES = (502, 503, 529)


class RemoteProvider:
    """Subclasses set `name`, `sdk` (the SDK module), `default_endpoint` and implement `_complete`."""

    name: str
    sdk: ModuleType
    default_endpoint: str

    def __init__(self, settings: Settings) -> None:
        self.model = settings.llm_model
        self._timeout = settings.llm_timeout
        self._endpoint = public_endpoint(settings.llm_base_url, self.default_endpoint)
        self._client: Any = self._create_client(
            api_key=api_key(settings),
            base_url=settings.llm_base_url or None,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )

    def _create_client(self, **options: Any) -> Any:
        raise NotImplementedError

    async def _complete(self, prompt: Prompt) -> str:
        raise NotImplementedError

    async def summarize(self, note: str) -> str:
        return await self._complete(summarize_prompt(note))

    async def query_note(self, note: str, query: str) -> str:
        return await self._complete(query_note_prompt(note, query))

    async def answer_question(self, question: str, passages: Sequence[Passage]) -> str:
        return await self._complete(answer_question_prompt(question, passages))

    async def extract_structured(self, note: str, candidates: str) -> str:
        """The model's JSON answer completing the rule candidates (checked by extraction.llm)."""
        return await self._complete(extraction_prompt(note, candidates))

    async def aclose(self) -> None:
        await self._client.close()

    def _empty_answer(self) -> ProviderError:
        return ProviderError(f"{self.name} model {self.model} returned an empty answer", 502)

    def _provider_error(self, error: Exception) -> ProviderError:
        """The SDK's exception as a ProviderError; both SDKs name their exception classes alike."""
        sdk, name = self.sdk, self.name
        if isinstance(error, sdk.APITimeoutError):
            return ProviderError(f"{name} did not answer within {self._timeout:g} s ({self._endpoint})", 504)
        if isinstance(error, sdk.APIConnectionError):
            return ProviderError(f"cannot reach the {name} API at {self._endpoint}", 503)
        if isinstance(error, sdk.AuthenticationError | sdk.PermissionDeniedError):
            return ProviderError(
                f"{name} provider rejected the API key (HTTP {error.status_code}); check LLM_API_KEY", 502
            )
        if isinstance(error, sdk.RateLimitError):
            return ProviderError(f"{name} rate limit or quota reached (HTTP 429); try again later", 503)
        if isinstance(error, sdk.NotFoundError):
            return ProviderError(
                f"{name} answered HTTP 404: unknown model {self.model!r} or wrong LLM_BASE_URL", 502
            )
        if isinstance(error, sdk.APIStatusError):
            status = 503 if error.status_code in TEMPORARY_UPSTREAM_STATUSES else 502
            return ProviderError(f"{name} API error (HTTP {error.status_code})", status)
        return ProviderError(f"{name} returned a response the service could not use", 502)
