"""Anthropic models through the official SDK (Messages API)."""

from __future__ import annotations

from typing import Any

import anthropic

from medical_notes.providers.prompting import Prompt
from medical_notes.providers.remote import RemoteProvider

# The Messages API requires an output limit; summaries and cited answers fit well within it
MAX_OUTPUT_TOKENS = 1024


class AnthropicProvider(RemoteProvider):
    name = "anthropic"
    sdk = anthropic
    default_endpoint = "https://api.anthropic.com"

    def _create_client(self, **options: Any) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(**options)

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
            raise self._empty_answer()
        return text
