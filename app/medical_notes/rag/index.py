"""Build, verify and describe the FAISS index of guideline chunks stored in FAISS_INDEX_DIR."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from medical_notes.config import ConfigurationError, Settings
from medical_notes.rag.chunking import CHUNKING_VERSION, chunk_sources, load_sources, sources_checksum
from medical_notes.rag.embeddings import LOCAL_DIM, LOCAL_PROVIDER, Embedder, create_embedder

INDEX_FILE = "index.faiss"
META_FILE = "index_meta.json"
LOCK_FILE = ".index.lock"
META_FORMAT_VERSION = 1
EMBED_BATCH_SIZE = 32

_BUILD_REASONS = {
    "missing": "no index yet",
    "damaged": "previous index unusable",
    "embedding": "embedding configuration changed",
    "sources": "guideline sources changed",
}
_CHUNK_FIELDS = ("document", "section", "source", "text")


@dataclass(frozen=True)
class IndexBuildResult:
    built: bool
    chunks: int
    documents: int
    seconds: float
    reason: str


@dataclass(frozen=True)
class IndexStatus:
    present: bool
    valid: bool
    reason: str | None
    chunks: int = 0
    documents: int = 0
    embedding: dict[str, Any] = field(default_factory=dict)  # {"provider", "model", "dim"} of the index
    sources_checksum: str | None = None
    built_at: str | None = None  # ISO 8601 time of the build, from the metadata


@dataclass(frozen=True)
class LoadedIndex:
    """A verified pair of index.faiss and index_meta.json, ready to search."""

    index: faiss.Index
    chunks: list[dict[str, Any]]
    meta: dict[str, Any]


class IndexFormatError(Exception):
    """The index files are unreadable or inconsistent; the message says which and why."""


class IndexPairMismatch(IndexFormatError):
    """index.faiss is not the file index_meta.json describes: corrupt, or a rebuild is half-way."""


@dataclass(frozen=True)
class IndexCheck:
    status: IndexStatus
    loaded: LoadedIndex | None = None  # set only when the status is valid
    problem: str | None = None  # "missing" | "damaged" | "embedding" | "sources"
    pair_mismatch: bool = False


def index_paths(settings: Settings) -> tuple[Path, Path]:
    return settings.faiss_index_dir / INDEX_FILE, settings.faiss_index_dir / META_FILE


def configured_embedding(settings: Settings) -> dict[str, Any]:
    """What the settings ask for; the dimension of a remote model is unknown until it answers."""
    dim = LOCAL_DIM if settings.embedding_provider == LOCAL_PROVIDER else 0
    return {"provider": settings.embedding_provider, "model": settings.embedding_model, "dim": dim}


def embedding_mismatch(recorded: dict[str, Any], configured: dict[str, Any]) -> str | None:
    same = recorded.get("provider") == configured["provider"] and recorded.get("model") == configured["model"]
    if same and (not configured["dim"] or recorded.get("dim") == configured["dim"]):
        return None
    wanted = f"{configured['provider']}/{configured['model']}"
    if configured["dim"]:
        wanted += f"/{configured['dim']}"
    return (
        f"index built with {recorded.get('provider')}/{recorded.get('model')}/{recorded.get('dim')}, "
        f"service configured for {wanted}; rebuild with `python -m medical_notes index --force`"
    )


def inspect_index(settings: Settings) -> IndexStatus:
    return check_index(settings, configured_embedding(settings)).status


def check_index(
    settings: Settings, embedding: dict[str, Any], *, current_checksum: str | None = None
) -> IndexCheck:
    """Verify the files on disk against each other, the guideline sources and the embedding config."""
    index_path, meta_path = index_paths(settings)
    if not index_path.exists() and not meta_path.exists():
        return IndexCheck(
            IndexStatus(present=False, valid=False, reason=f"index not built: {index_path} missing"),
            problem="missing",
        )
    if not meta_path.exists():
        return IndexCheck(
            IndexStatus(present=True, valid=False, reason=f"index metadata {meta_path} missing"),
            problem="damaged",
        )
    try:
        meta = _read_meta(meta_path)
    except IndexFormatError as error:
        return IndexCheck(IndexStatus(present=True, valid=False, reason=str(error)), problem="damaged")
    described = {
        "chunks": len(meta["chunks"]),
        "documents": len({chunk["source"] for chunk in meta["chunks"]}),
        "embedding": dict(meta["embedding"]),
        "sources_checksum": meta["sources_checksum"],
        "built_at": meta.get("built_at") if isinstance(meta.get("built_at"), str) else None,
    }
    if not index_path.exists():
        return IndexCheck(
            IndexStatus(present=False, valid=False, reason=f"index file {index_path} missing", **described),
            problem="damaged",
        )
    try:
        loaded = _load_index(index_path, meta)
    except IndexFormatError as error:
        status = IndexStatus(present=True, valid=False, reason=str(error), **described)
        return IndexCheck(status, problem="damaged", pair_mismatch=isinstance(error, IndexPairMismatch))
    mismatch = embedding_mismatch(meta["embedding"], embedding)
    if mismatch is not None:
        status = IndexStatus(present=True, valid=False, reason=mismatch, **described)
        return IndexCheck(status, problem="embedding")
    if current_checksum is None:
        current_checksum = current_sources_checksum(settings)
    if meta["sources_checksum"] != current_checksum:
        reason = (
            f"guideline sources in {settings.guidelines_dir} changed since the index was built; "
            "rebuild with `python -m medical_notes index`"
        )
        status = IndexStatus(present=True, valid=False, reason=reason, **described)
        return IndexCheck(status, problem="sources")
    return IndexCheck(IndexStatus(present=True, valid=True, reason=None, **described), loaded)


def current_sources_checksum(settings: Settings) -> str:
    return sources_checksum(load_sources(settings.guidelines_dir))


async def build_index(
    settings: Settings,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    embedder: Embedder | None = None,
) -> IndexBuildResult:
    """Chunk, embed and write the index; a no-op when the existing index still matches."""
    started = time.perf_counter()
    report = progress or (lambda message: None)
    own_embedder = embedder is None
    embedder = embedder or create_embedder(settings)
    try:
        settings.faiss_index_dir.mkdir(parents=True, exist_ok=True)
        async with _build_lock(settings.faiss_index_dir):
            return await _build_locked(settings, embedder, force=force, started=started, report=report)
    finally:
        if own_embedder:
            await embedder.aclose()


async def _build_locked(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool,
    started: float,
    report: Callable[[str], None],
) -> IndexBuildResult:
    sources = load_sources(settings.guidelines_dir)
    if not sources:
        raise ConfigurationError(f"no guideline documents (*.md) in GUIDELINES_DIR={settings.guidelines_dir}")
    checksum = sources_checksum(sources)
    wanted = {"provider": embedder.provider, "model": embedder.model, "dim": embedder.dim}
    check = check_index(settings, wanted, current_checksum=checksum)
    status = check.status
    if status.valid and not force:
        return IndexBuildResult(
            built=False,
            chunks=status.chunks,
            documents=status.documents,
            seconds=round(time.perf_counter() - started, 3),
            reason="index is up to date",
        )
    reason = "forced rebuild" if force else _BUILD_REASONS.get(check.problem or "", "index rebuilt")
    if check.problem == "damaged" and not force:
        reason += f" ({status.reason})"

    chunks = chunk_sources(sources)
    report(f"chunked {len(sources)} documents into {len(chunks)} chunks")
    batches: list[np.ndarray] = []
    for start in range(0, len(chunks), EMBED_BATCH_SIZE):
        batch = chunks[start : start + EMBED_BATCH_SIZE]
        batches.append(await embedder.embed([chunk.embedding_text() for chunk in batch]))
        done = min(start + EMBED_BATCH_SIZE, len(chunks))
        report(f"embedded {done}/{len(chunks)} chunks")
    vectors = np.ascontiguousarray(np.vstack(batches), dtype=np.float32)

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    index_bytes = faiss.serialize_index(index).tobytes()
    meta = {
        "format_version": META_FORMAT_VERSION,
        "build_id": uuid.uuid4().hex,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "embedding": {"provider": embedder.provider, "model": embedder.model, "dim": int(vectors.shape[1])},
        "chunking": CHUNKING_VERSION,
        "sources_checksum": checksum,
        "sources": [source.name for source in sources],
        "index_sha256": hashlib.sha256(index_bytes).hexdigest(),
        "index_bytes": len(index_bytes),
        "chunks": [
            {key: value for key, value in asdict(chunk).items() if key in (*_CHUNK_FIELDS, "tokens")}
            for chunk in chunks
        ],
    }
    index_path, meta_path = index_paths(settings)
    # The index goes first and the metadata last; readers verify index_sha256, so in the instant
    # between the two renames they see a mismatch and keep what they had instead of wrong chunks.
    _write_atomically(index_path, index_bytes)
    _write_atomically(meta_path, json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"))
    _fsync_directory(settings.faiss_index_dir)
    seconds = round(time.perf_counter() - started, 3)
    report(f"wrote {index_path} with {len(chunks)} chunks")
    return IndexBuildResult(
        built=True, chunks=len(chunks), documents=len(sources), seconds=seconds, reason=reason
    )


def _read_meta(meta_path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(meta_path.read_bytes())
    except (OSError, ValueError) as error:
        raise IndexFormatError(f"index metadata {meta_path} unreadable: {type(error).__name__}") from None
    if not isinstance(meta, dict) or meta.get("format_version") != META_FORMAT_VERSION:
        raise IndexFormatError(f"index metadata {meta_path} has an unknown format")
    try:
        embedding = meta["embedding"]
        valid = (
            isinstance(meta["chunks"], list)
            and all(
                isinstance(chunk, dict) and all(isinstance(chunk.get(key), str) for key in _CHUNK_FIELDS)
                for chunk in meta["chunks"]
            )
            and isinstance(embedding, dict)
            and isinstance(embedding["dim"], int)
            and isinstance(meta["sources_checksum"], str)
            and isinstance(meta["index_sha256"], str)
        )
    except (KeyError, TypeError):
        valid = False
    if not valid:
        raise IndexFormatError(f"index metadata {meta_path} is incomplete")
    return meta


def _load_index(index_path: Path, meta: dict[str, Any]) -> LoadedIndex:
    try:
        data = index_path.read_bytes()
    except OSError as error:
        raise IndexFormatError(f"index file {index_path} unreadable: {error.strerror}") from None
    if hashlib.sha256(data).hexdigest() != meta["index_sha256"]:
        raise IndexPairMismatch(
            f"index file {index_path} does not match {META_FILE} "
            "(corrupt, or replaced by a build in progress)"
        )
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError:
        raise IndexFormatError(f"index file {index_path} is corrupt") from None
    if index.ntotal != len(meta["chunks"]) or index.d != meta["embedding"]["dim"]:
        raise IndexFormatError(f"index file {index_path} disagrees with {META_FILE} on size or dimension")
    return LoadedIndex(index=index, chunks=meta["chunks"], meta=meta)


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.asynccontextmanager
async def _build_lock(directory: Path) -> AsyncIterator[None]:
    """Two builders (two containers sharing the volume) take turns instead of interleaving renames."""
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
