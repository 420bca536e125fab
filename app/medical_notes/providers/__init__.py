"""Language-model providers: offline (extractive, the default), OpenAI-compatible and Anthropic."""

from __future__ import annotations

from medical_notes.config import Settings
from medical_notes.providers.base import LLMProvider, Passage, ProviderError

__all__ = ["LLMProvider", "Passage", "ProviderError", "create_provider"]


def create_provider(settings: Settings) -> LLMProvider:
    """Build the provider that ``LLM_PROVIDER`` selects.

    The SDK modules are imported only when selected, so the offline default starts without them.
    """
    if settings.llm_provider == "openai":
        from medical_notes.providers.openai_provider import OpenAIProvider

        return OpenAIProvider(settings)
    if settings.llm_provider == "anthropic":
        from medical_notes.providers.anthropic_provider import AnthropicProvider

        return AnthropicProvider(settings)
    from medical_notes.providers.offline import OfflineProvider

    return OfflineProvider(settings)
