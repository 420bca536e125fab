"""Local fakes of external services, reached over real HTTP by the real client libraries."""

from fakes.llm_server import (
    DEFAULT_EMBEDDING_DIM,
    FakeLLMServer,
    RecordedRequest,
    fake_embedding,
    free_port_url,
)

__all__ = ["DEFAULT_EMBEDDING_DIM", "FakeLLMServer", "RecordedRequest", "fake_embedding", "free_port_url"]
