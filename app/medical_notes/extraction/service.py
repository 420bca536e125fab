"""The API's extraction service: cached results, the offline pipeline, and the optional LLM step."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from medical_notes.db import Database, DatabaseTimeout, DatabaseUnavailable
from medical_notes.extraction import llm, store
from medical_notes.extraction.pipeline import extract_structured, extraction_id, source_sha256
from medical_notes.extraction.terminology import Terminology, TerminologyUnavailable, terminology
from medical_notes.providers import LLMProvider, ProviderError

log = logging.getLogger(__name__)


class ExtractionService:
    def __init__(self, database: Database, provider: LLMProvider) -> None:
        self._database = database
        self._provider = provider

    @property
    def uses_llm(self) -> bool:
        return self._provider.name != "offline" and hasattr(self._provider, "extract_structured")

    def preload(self) -> Terminology | None:
        """Load the tables and the code search index now rather than on the first request. Missing tables
        are logged, not fatal: the other endpoints still work and extraction answers 503."""
        try:
            terms = terminology()
        except TerminologyUnavailable as error:
            log.error("structured extraction unavailable: %s", error)
            return None
        terms.search_icd10cm("warm up")
        return terms

    async def extract(self, text: str, document_id: int | None) -> tuple[dict[str, Any], bool]:
        """The result for this exact text, from the cache or computed (then cached); and whether cached."""
        source_hash = source_sha256(text)
        provider, model = ("offline", "rules")
        if self.uses_llm:
            provider, model = self._provider.name, self._provider.model
        key = extraction_id(source_hash, provider, model)
        cached = await self._cached(key)
        if cached is not None:
            return cached, True
        result = await asyncio.to_thread(extract_structured, text)
        if self.uses_llm:
            result = await self._augment(text, result)
        if result["provider"] == provider:  # an LLM failure is answered but not cached
            await self._store(result, document_id)
        return result, False

    async def fetch(self, key: str) -> dict[str, Any] | None:
        """A stored result by extraction_id; DatabaseUnavailable when PostgreSQL is down."""
        row = await self._database.run(store.fetch, key)
        return row["result"] if row else None

    async def _augment(self, text: str, result: dict[str, Any]) -> dict[str, Any]:
        provider = self._provider
        try:
            answer = await provider.extract_structured(text, llm.candidates_for_prompt(result))  # type: ignore[attr-defined]
            parsed = llm.parse_answer(answer)
            return llm.merge(result, parsed, text, terminology(), provider.name, provider.model)
        except ProviderError as error:
            reason = error.message
        except (ValueError, TypeError) as error:
            reason = f"unusable answer ({type(error).__name__})"
        log.warning("LLM extraction step skipped: %s", reason)
        fallback = dict(result)
        fallback["warnings"] = [*result["warnings"], f"LLM step skipped, offline result only: {reason}"]
        return fallback

    async def _cached(self, key: str) -> dict[str, Any] | None:
        try:
            return await self.fetch(key)
        except (DatabaseUnavailable, DatabaseTimeout):
            return None

    async def _store(self, result: dict[str, Any], document_id: int | None) -> None:
        """Best effort: a result is still answered while PostgreSQL is down, just not cached."""
        try:
            await self._database.run(store.store, result, document_id)
        except (DatabaseUnavailable, DatabaseTimeout) as error:
            log.warning("extraction cache write skipped: %s", type(error).__name__)
