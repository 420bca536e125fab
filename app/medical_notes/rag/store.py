"""The index as the API serves it: loaded lazily, verified, and reloaded when a rebuild lands."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from medical_notes.config import Settings
from medical_notes.providers.base import Passage
from medical_notes.rag.embeddings import Embedder
from medical_notes.rag.index import (
    IndexStatus,
    LoadedIndex,
    check_index,
    current_sources_checksum,
    embedding_mismatch,
    index_paths,
)

REBUILD_GRACE_SECONDS = 5.0


class IndexUnavailable(Exception):
    """No usable index; `reason` is safe to show to API clients (it becomes an HTTP 503)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IndexStore:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self._settings = settings
        self._embedder = embedder
        self._lock = threading.Lock()
        self._fingerprint: tuple[Any, ...] | None = None
        self._status = IndexStatus(present=False, valid=False, reason="index not loaded yet")
        self._loaded: LoadedIndex | None = None
        self._sources_fingerprint: tuple[Any, ...] | None = None
        self._sources_checksum: str | None = None
        self._mismatch_since: float | None = None

    def status(self) -> IndexStatus:
        """Costs a few stat() calls when nothing changed; verifies and reloads when something did."""
        fingerprint = self._current_fingerprint()
        if fingerprint == self._fingerprint:
            return self._status
        with self._lock:
            if fingerprint != self._fingerprint:
                self._reload(fingerprint)
            return self._status

    async def search(self, question: str, top_k: int) -> list[Passage]:
        status = self.status()
        loaded = self._loaded
        if not status.valid or loaded is None:
            raise IndexUnavailable(status.reason or "index not loaded")
        vectors = await self._embedder.embed([question])
        if vectors.shape[1] != loaded.index.d:
            # A remote model reveals its dimension only with its first answer.
            configured = {"provider": self._embedder.provider, "model": self._embedder.model}
            raise IndexUnavailable(
                embedding_mismatch(loaded.meta["embedding"], {**configured, "dim": int(vectors.shape[1])})
                or "embedding dimension does not match the index"
            )
        count = min(max(top_k, 1), loaded.index.ntotal)
        if count == 0:
            return []
        scores, positions = loaded.index.search(vectors, count)
        passages: list[Passage] = []
        for score, position in zip(scores[0], positions[0], strict=True):
            if position < 0:
                continue
            chunk = loaded.chunks[position]
            passages.append(
                Passage(
                    id=len(passages) + 1,
                    document=chunk["document"],
                    section=chunk["section"],
                    text=chunk["text"],
                    score=round(float(score), 4),
                )
            )
        return passages

    def _reload(self, fingerprint: tuple[Any, ...]) -> None:
        embedding = {
            "provider": self._embedder.provider,
            "model": self._embedder.model,
            "dim": self._embedder.dim,
        }
        check = check_index(self._settings, embedding, current_checksum=self._checksum())
        if check.pair_mismatch and self._loaded is not None:
            # Usually a rebuild between its two renames: keep serving the previous pair for a
            # moment and look again on the next call, but do not hide a corrupt file for long.
            now = time.monotonic()
            self._mismatch_since = self._mismatch_since or now
            if now - self._mismatch_since < REBUILD_GRACE_SECONDS:
                return
        self._mismatch_since = None
        self._status, self._loaded, self._fingerprint = check.status, check.loaded, fingerprint

    def _checksum(self) -> str:
        """The guideline checksum, recomputed only when a guideline file's stat changes."""
        fingerprint = self._guidelines_fingerprint()
        if fingerprint != self._sources_fingerprint or self._sources_checksum is None:
            self._sources_checksum = current_sources_checksum(self._settings)
            self._sources_fingerprint = fingerprint
        return self._sources_checksum

    def _current_fingerprint(self) -> tuple[Any, ...]:
        index_path, meta_path = index_paths(self._settings)
        return (
            _stat_key(index_path),
            _stat_key(meta_path),
            self._guidelines_fingerprint(),
            self._embedder.dim,
        )

    def _guidelines_fingerprint(self) -> tuple[Any, ...]:
        try:
            entries = sorted(os.scandir(self._settings.guidelines_dir), key=lambda entry: entry.name)
        except OSError:
            return ()
        return tuple((entry.name, _stat_key(entry.path)) for entry in entries if entry.name.endswith(".md"))


def _stat_key(path: os.PathLike[str] | str) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
