"""Pytest fixtures for the fake LLM server.

Register them for a whole test directory by importing them into its conftest.py, e.g.
``from fakes.fixtures import fake_llm_server  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.llm_server import FakeLLMServer


@pytest.fixture
def fake_llm_server() -> Iterator[FakeLLMServer]:
    """A started fake that speaks OpenAI (chat, embeddings) and Anthropic (messages)."""
    with FakeLLMServer() as server:
        yield server
