"""Guideline retrieval: chunking, embeddings, the FAISS index on disk and the store the API serves."""

from medical_notes.rag.embeddings import Embedder, create_embedder
from medical_notes.rag.index import IndexBuildResult, IndexStatus, build_index, inspect_index
from medical_notes.rag.store import IndexStore, IndexUnavailable

__all__ = [
    "Embedder",
    "IndexBuildResult",
    "IndexStatus",
    "IndexStore",
    "IndexUnavailable",
    "build_index",
    "create_embedder",
    "inspect_index",
]
