"""The long-lived objects the API serves with, created by the app factory and opened by its lifespan."""

from __future__ import annotations

import asyncio
import time

from medical_notes.cache import LLMCache
from medical_notes.config import Settings
from medical_notes.db import Database
from medical_notes.extraction.service import ExtractionService
from medical_notes.providers import create_provider
from medical_notes.rag import IndexStore, create_embedder
from medical_notes.rag.index import IndexStatus

# /health may be polled hard (load balancers, benchmarks); a rebuilt index shows up within this time.
INDEX_STATUS_TTL_SECONDS = 1.0


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings)
        self.cache = LLMCache(self.database)
        self.provider = create_provider(settings)
        self.extraction = ExtractionService(self.database, self.provider)
        self.embedder = create_embedder(settings)
        self.index_store = IndexStore(settings, self.embedder)
        self._index_status: IndexStatus | None = None
        self._index_checked_at = 0.0

    def index_status(self) -> IndexStatus:
        now = time.monotonic()
        if self._index_status is None or now - self._index_checked_at >= INDEX_STATUS_TTL_SECONDS:
            self._index_status = self.index_store.status()
            self._index_checked_at = now
        return self._index_status

    async def start(self) -> None:
        await self.database.start()
        self.index_status()  # loads the index now rather than on the first question
        await asyncio.to_thread(self.extraction.preload)

    async def close(self) -> None:
        await self.provider.aclose()
        await self.embedder.aclose()
        await self.database.close()
