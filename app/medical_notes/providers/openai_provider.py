"""OpenAI and OpenAI-compatible servers (vLLM, Ollama, llama.cpp) through the official SDK."""

from __future__ import annotations

from collections.abc import Sequence

import openai

from medical_notes.config import Settings
from medical_notes.providers.base import Passage, ProviderError, api_key, public_endpoint
from medical_notes.providers.prompting import (
    Prompt,
    answer_question_prompt,
    query_note_prompt,
    summarize_prompt,
)


class OpenAIProvider:
    name = "openai"

    def __init__(self, settings: Settings) -> None:
        self.model = settings.llm_model
        self._timeout = settings.llm_timeout
        self._endpoint = public_endpoint(settings.llm_base_url, "https://api.openai.com/v1")
        self._client = openai.AsyncOpenAI(
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
        # No temperature or token limit: reasoning models reject them, and the prompts ask for brevity
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": prompt.user},
                ],
            )
        except openai.OpenAIError as error:
            # "from None": the SDK's exception text may echo part of the key back
            raise self._provider_error(error) from None
        content = response.choices[0].message.content if response.choices else None
        if not content or not content.strip():
            raise ProviderError(f"openai model {self.model} returned an empty answer", 502)
        return content.strip()

    def _provider_error(self, error: openai.OpenAIError) -> ProviderError:
        if isinstance(error, openai.APITimeoutError):
            return ProviderError(f"openai did not answer within {self._timeout:g} s ({self._endpoint})", 504)
        if isinstance(error, openai.APIConnectionError):
            return ProviderError(f"cannot reach the openai API at {self._endpoint}", 503)
        if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
            return ProviderError(
                f"openai provider rejected the API key (HTTP {error.status_code}); check LLM_API_KEY", 502
            )
        if isinstance(error, openai.RateLimitError):
            return ProviderError("openai rate limit or quota reached (HTTP 429); try again later", 503)
        if isinstance(error, openai.NotFoundError):
            return ProviderError(
                f"openai answered HTTP 404: unknown model {self.model!r} or wrong LLM_BASE_URL", 502
            )
        if isinstance(error, openai.APIStatusError):
            status = 503 if error.status_code in (502, 503, 529) else 502
            return ProviderError(f"openai API error (HTTP {error.status_code})", status)
        return ProviderError("openai returned a response the service could not use", 502)
