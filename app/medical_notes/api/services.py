"""The long-lived objects the API serves with, created by the app factory and opened by its lifespan."""

from __future__ import annotations

import time

from medical_notes.api.auth import ClientRegistry
from medical_notes.audit import AuditTrail
from medical_notes.cache import LLMCache
from medical_notes.config import Settings
from medical_notes.db import Database
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
        self.audit = AuditTrail(settings, self.database)
        self.clients = ClientRegistry(settings, self.database) if settings.api_auth != "disabled" else None
        self.provider = create_provider(settings)
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
        await self.audit.start()
        if self.clients is not None:
            await self.clients.start()
        self.index_status()  # loads the index now rather than on the first question

    async def close(self) -> None:
        if self.clients is not None:
            await self.clients.close()
        await self.audit.close()  # before the pool closes: the last buffered reads are written
        await self.provider.aclose()
        await self.embedder.aclose()
        await self.database.close()
