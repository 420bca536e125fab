"""OpenAI and OpenAI-compatible servers (vLLM, Ollama, llama.cpp) through the official SDK."""

from __future__ import annotations

from typing import Any

import openai

from medical_notes.providers.prompting import Prompt
from medical_notes.providers.remote import RemoteProvider


class OpenAIProvider(RemoteProvider):
    name = "openai"
    sdk = openai
    default_endpoint = "https://api.openai.com/v1"

    def _create_client(self, **options: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(**options)

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
            raise self._empty_answer()
        return content.strip()
