"""The long-lived objects the API serves with, created by the app factory and opened by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime

from medical_notes.api.auth import ClientRegistry
from medical_notes.audit import AuditTrail
from medical_notes.backup_status import BackupStatus, BackupStatusReader
from medical_notes.cache import LLMCache
from medical_notes.config import Settings
from medical_notes.db import Database
from medical_notes.extraction.service import ExtractionService
from medical_notes.metrics import Metrics
from medical_notes.providers import create_provider
from medical_notes.rag import IndexStore, create_embedder
from medical_notes.rag.index import IndexStatus

# /health may be polled hard (load balancers, benchmarks); a rebuilt index shows up within this time.
INDEX_STATUS_TTL_SECONDS = 1.0
# How often each worker publishes its pool's connection counts to /metrics.
POOL_SAMPLE_SECONDS = 1.0


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backup_status_reader = (
            BackupStatusReader(settings.backup_status_file) if settings.backup_status_file else None
        )
        self.metrics = Metrics(
            index_built_at=self.index_built_at,
            backup_status=self.backup_status if self.backup_status_reader else None,
        )
        self.database = Database(settings, observe_error=self.metrics.observe_database_error)
        self.cache = LLMCache(self.database, settings, self.metrics)
        self.audit = AuditTrail(settings, self.database)
        self.clients = ClientRegistry(settings, self.database) if settings.api_auth != "disabled" else None
        self.provider = create_provider(settings)
        self.extraction = ExtractionService(self.database, self.provider)
        self.embedder = create_embedder(settings)
        self.index_store = IndexStore(settings, self.embedder)
        self._index_status: IndexStatus | None = None
        self._index_checked_at = 0.0
        self._pool_sampler: asyncio.Task[None] | None = None

    def index_status(self) -> IndexStatus:
        now = time.monotonic()
        if self._index_status is None or now - self._index_checked_at >= INDEX_STATUS_TTL_SECONDS:
            self._index_status = self.index_store.status()
            self._index_checked_at = now
        return self._index_status

    def index_built_at(self) -> float | None:
        status = self.index_status()
        if not status.valid or status.built_at is None:
            return None
        try:
            return datetime.fromisoformat(status.built_at).timestamp()
        except ValueError:
            return None

    def backup_status(self) -> BackupStatus:
        return self.backup_status_reader.read() if self.backup_status_reader else BackupStatus()

    def sample_pool(self) -> None:
        self.metrics.set_pool_connections(*self.database.connections())

    async def _sample_pool_periodically(self) -> None:
        while True:
            self.sample_pool()
            await asyncio.sleep(POOL_SAMPLE_SECONDS)

    async def start(self) -> None:
        self.metrics.forget_dead_workers()
        await self.database.start()
        await self.audit.start()
        if self.clients is not None:
            await self.clients.start()
        self.index_status()  # loads the index now rather than on the first question
        await self.cache.start()
        self._pool_sampler = asyncio.create_task(self._sample_pool_periodically(), name="pool-sampler")
        await asyncio.to_thread(self.extraction.preload)

    async def close(self) -> None:
        if self._pool_sampler is not None:
            self._pool_sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pool_sampler
        await self.cache.close()
        if self.clients is not None:
            await self.clients.close()
        await self.audit.close()  # before the pool closes: the last buffered reads are written
        await self.provider.aclose()
        await self.embedder.aclose()
        await self.database.close()
        self.metrics.worker_stopped()
