"""Anthropic models through the official SDK (Messages API)."""

from __future__ import annotations

from collections.abc import Sequence

import anthropic

from medical_notes.config import Settings
from medical_notes.providers.base import Passage, ProviderError, api_key, public_endpoint
from medical_notes.providers.prompting import (
    Prompt,
    answer_question_prompt,
    query_note_prompt,
    summarize_prompt,
)

# The Messages API requires an output limit; summaries and cited answers fit well within it
MAX_OUTPUT_TOKENS = 1024


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, settings: Settings) -> None:
        self.model = settings.llm_model
        self._timeout = settings.llm_timeout
        self._endpoint = public_endpoint(settings.llm_base_url, "https://api.anthropic.com")
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key(settings),
            base_url=settings.llm_base_url or None,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )

    async def summarize(self, note: str) -> str:
        return await self._complete(summarize_prompt(note))

    async def query_note(self, note: str, query: str) -> str:
        return await self._complete(query_note_prompt(note, query))

    async def answer_question(self, question: str, passages: Sequence[Passage]) -> str:
        return await self._complete(answer_question_prompt(question, passages))

    async def aclose(self) -> None:
        await self._client.close()

    async def _complete(self, prompt: Prompt) -> str:
        try:
            response = await self._client.messages.create(
                model=self.model,
                max_tokens=MAX_OUTPUT_TOKENS,
                system=prompt.system,
                messages=[{"role": "user", "content": prompt.user}],
            )
        except anthropic.AnthropicError as error:
            # "from None": the SDK's exception text may echo part of the key back
            raise self._provider_error(error) from None
        text = "".join(block.text for block in response.content if block.type == "text").strip()
        if not text:
            raise ProviderError(f"anthropic model {self.model} returned an empty answer", 502)
        return text

    def _provider_error(self, error: anthropic.AnthropicError) -> ProviderError:
        if isinstance(error, anthropic.APITimeoutError):
            return ProviderError(
                f"anthropic did not answer within {self._timeout:g} s ({self._endpoint})", 504
            )
        if isinstance(error, anthropic.APIConnectionError):
            return ProviderError(f"cannot reach the anthropic API at {self._endpoint}", 503)
        if isinstance(error, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
            return ProviderError(
                f"anthropic provider rejected the API key (HTTP {error.status_code}); check LLM_API_KEY",
                502,
            )
        if isinstance(error, anthropic.RateLimitError):
            return ProviderError("anthropic rate limit reached (HTTP 429); try again later", 503)
        if isinstance(error, anthropic.NotFoundError):
            return ProviderError(
                f"anthropic answered HTTP 404: unknown model {self.model!r} or wrong LLM_BASE_URL", 502
            )
        if isinstance(error, anthropic.APIStatusError):
            # 529 is Anthropic's "overloaded": temporary, like a rate limit
            status = 503 if error.status_code in (502, 503, 529) else 502
            return ProviderError(f"anthropic API error (HTTP {error.status_code})", status)
        return ProviderError("anthropic returned a response the service could not use", 502)
