"""The openai and anthropic providers: the official SDKs over real HTTP against the local fake
server. Most tests run for both: prompts sent, and how rejected keys, rate limits, upstream errors,
timeouts and unreachable servers reach the API (status and message, never the key)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import numpy as np
import openai
import pytest

from fakes import DEFAULT_EMBEDDING_DIM, FakeLLMServer, RecordedRequest, fake_embedding, free_port_url
from medical_notes.config import ConfigurationError, Settings
from medical_notes.providers import LLMProvider, Passage, ProviderError, create_provider
from medical_notes.providers.anthropic_provider import MAX_OUTPUT_TOKENS, AnthropicProvider
from medical_notes.providers.openai_provider import OpenAIProvider

API_KEY = "sk-test-r3mote-k3y-never-shown"
MODEL = "test-model-mini"
TIMEOUT = 0.5
MAX_RETRIES = 1
NOTE = (
    "## Subjective\nChief complaint: fatigue.\n## Assessment\nType 2 diabetes, HbA1c 8.4%.\n"
    "## Plan\nMetformin 1000 mg twice daily."
)


@dataclass(frozen=True)
class Vendor:
    name: str
    provider_class: type
    path: str  # where the SDK posts a completion request
    user_message: int  # position of the user message in the request's "messages"
    api_prefix: str  # what the base URL carries after host:port (the Anthropic SDK adds /v1 itself)

    def base_url(self, server_url: str) -> str:
        return server_url + self.api_prefix

    def settings(self, base_url: str, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "llm_provider": self.name,
            "llm_model": MODEL,
            "llm_api_key": API_KEY,
            "llm_base_url": base_url,
            "llm_timeout": TIMEOUT,
            "llm_max_retries": MAX_RETRIES,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)


VENDORS = [
    Vendor("openai", OpenAIProvider, "/v1/chat/completions", user_message=1, api_prefix="/v1"),
    Vendor("anthropic", AnthropicProvider, "/v1/messages", user_message=0, api_prefix=""),
]
OPENAI, ANTHROPIC = VENDORS


@pytest.fixture(params=VENDORS, ids=[vendor.name for vendor in VENDORS])
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return request.param


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
async def provider(vendor: Vendor, server: FakeLLMServer) -> AsyncIterator[LLMProvider]:
    llm = create_provider(vendor.settings(vendor.base_url(server.url)))
    yield llm
    await llm.aclose()


def assert_key_not_leaked(error: ProviderError) -> None:
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert API_KEY not in error.message
    # Raised "from None", so a logged traceback does not show the SDK's exception (which echoes the key)
    assert error.__cause__ is None
    assert error.__suppress_context__


def user_prompt(server: FakeLLMServer, vendor: Vendor) -> str:
    return server.requests_to(vendor.path)[0].body["messages"][vendor.user_message]["content"]


async def test_create_provider_builds_the_configured_provider(vendor: Vendor, provider: LLMProvider) -> None:
    assert isinstance(provider, vendor.provider_class)
    assert isinstance(provider, LLMProvider)
    assert provider.name == vendor.name
    assert provider.model == MODEL


def test_missing_key_is_a_configuration_error(vendor: Vendor) -> None:
    with pytest.raises(ConfigurationError, match="LLM_API_KEY") as caught:
        create_provider(vendor.settings("http://127.0.0.1:9", llm_api_key=None))
    assert "\n" not in str(caught.value)


async def test_query_note_sends_note_and_question(
    vendor: Vendor, server: FakeLLMServer, provider: LLMProvider
) -> None:
    answer = await provider.query_note(NOTE, "What is the HbA1c?")

    assert answer == f"Fake answer from {MODEL}."
    user = user_prompt(server, vendor)
    assert NOTE in user
    assert "<question>\nWhat is the HbA1c?\n</question>" in user
    assert "Not found in the note" in user


async def test_answer_question_numbers_the_passages_for_citations(
    vendor: Vendor, server: FakeLLMServer, provider: LLMProvider
) -> None:
    server.reply = "Metformin is first-line [1]; aim for an HbA1c near 7% [2]."
    passages = [
        Passage(1, "Type 2 Diabetes in Adults", "First-line therapy", "Metformin is first-line.", 0.82),
        Passage(2, "Type 2 Diabetes in Adults", "Glycaemic Targets", "Most adults aim for 7%.", 0.61),
    ]

    answer = await provider.answer_question("What is first-line therapy?", passages)

    assert answer == "Metformin is first-line [1]; aim for an HbA1c near 7% [2]."
    user = user_prompt(server, vendor)
    assert "[1] Type 2 Diabetes in Adults - First-line therapy\nMetformin is first-line." in user
    assert "[2] Type 2 Diabetes in Adults - Glycaemic Targets\nMost adults aim for 7%." in user
    assert "square brackets" in user
    assert user.index("[1]") < user.index("[2]") < user.index("What is first-line therapy?")


async def test_rejected_key_is_502_without_retries_and_without_the_key(
    server: FakeLLMServer, provider: LLMProvider
) -> None:
    server.fail(401)

    with pytest.raises(ProviderError) as caught:
        await provider.summarize(NOTE)

    assert caught.value.status_code == 502
    assert "provider rejected the API key" in caught.value.message
    assert_key_not_leaked(caught.value)
    assert len(server.requests) == 1  # the fake echoed the key in its error body; we did not


async def test_forbidden_is_reported_as_a_rejected_key(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.fail(403)
    with pytest.raises(ProviderError, match="rejected the API key") as caught:
        await provider.query_note(NOTE, "plan?")
    assert caught.value.status_code == 502


async def test_rate_limit_is_503_after_bounded_retries(
    vendor: Vendor, server: FakeLLMServer, provider: LLMProvider
) -> None:
    server.fail(429, retry_after=0.05)

    with pytest.raises(ProviderError) as caught:
        await provider.summarize(NOTE)

    assert caught.value.status_code == 503
    assert "rate limit" in caught.value.message
    assert_key_not_leaked(caught.value)
    attempts = server.requests_to(vendor.path)
    assert len(attempts) == MAX_RETRIES + 1
    assert [request.headers["x-stainless-retry-count"] for request in attempts] == ["0", "1"]


async def test_rate_limit_then_success_is_retried_transparently(
    server: FakeLLMServer, provider: LLMProvider
) -> None:
    server.fail(429, times=1, retry_after=0.05)
    assert await provider.summarize(NOTE) == f"Fake answer from {MODEL}."
    assert len(server.requests) == 2


async def test_upstream_server_error_is_502(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.fail(500)
    with pytest.raises(ProviderError, match=r"HTTP 500") as caught:
        await provider.summarize(NOTE)
    assert caught.value.status_code == 502
    assert len(server.requests) == MAX_RETRIES + 1


async def test_unknown_model_is_502_naming_the_model(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.fail(404)
    with pytest.raises(ProviderError, match=MODEL) as caught:
        await provider.summarize(NOTE)
    assert caught.value.status_code == 502


async def test_timeout_is_504_after_bounded_retries(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.stall(10)

    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        await provider.summarize(NOTE)
    elapsed = time.monotonic() - started

    assert caught.value.status_code == 504
    assert f"within {TIMEOUT:g} s" in caught.value.message
    assert_key_not_leaked(caught.value)
    assert len(server.requests) == MAX_RETRIES + 1
    assert elapsed < 5  # two attempts of 0.5 s plus the SDK's back-off, not the stall


async def test_unreachable_base_url_is_503_without_credentials_in_the_message(vendor: Vendor) -> None:
    closed = vendor.base_url(free_port_url())
    base_url = closed.replace("http://", "http://someone:url-password@") + "?api-key=query-secret"
    llm = create_provider(vendor.settings(base_url))
    try:
        with pytest.raises(ProviderError) as caught:
            await llm.summarize(NOTE)
    finally:
        await llm.aclose()

    assert caught.value.status_code == 503
    assert caught.value.message == f"cannot reach the {vendor.name} API at {closed}"
    assert "url-password" not in caught.value.message
    assert "query-secret" not in caught.value.message
    assert_key_not_leaked(caught.value)


async def test_empty_answer_is_502(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.reply = "   "
    with pytest.raises(ProviderError, match="empty answer") as caught:
        await provider.summarize(NOTE)
    assert caught.value.status_code == 502


# ---- what differs between the two wire formats ----------------------------------------------------


async def summarize_once(server: FakeLLMServer, provider: LLMProvider) -> RecordedRequest:
    """Summarise NOTE, check the reply comes back as the summary, and return the one request sent."""
    server.reply = "Chief complaint: fatigue. Plan: metformin 1000 mg twice daily."
    assert await provider.summarize(NOTE) == server.reply
    [request] = server.requests
    return request


@pytest.mark.parametrize("vendor", [OPENAI], ids=["openai"])
async def test_openai_summarize_sends_model_key_and_note(
    server: FakeLLMServer, provider: LLMProvider
) -> None:
    request = await summarize_once(server, provider)
    assert request.path == OPENAI.path
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == MODEL
    system, user = request.body["messages"]
    assert system["role"] == "system"
    assert "Do not add facts" in system["content"]
    assert user["role"] == "user"
    assert f"<note>\n{NOTE}\n</note>" in user["content"]
    assert "Medications" in user["content"]


def sent_anthropic_key(headers: dict[str, str]) -> str | None:
    """The key as the SDK sent it: the pinned SDK uses a Bearer token, older ones x-api-key."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    return headers.get("authorization", "").removeprefix("Bearer ") or None


@pytest.mark.parametrize("vendor", [ANTHROPIC], ids=["anthropic"])
async def test_anthropic_summarize_sends_model_key_and_note(
    server: FakeLLMServer, provider: LLMProvider
) -> None:
    request = await summarize_once(server, provider)
    assert request.path == ANTHROPIC.path
    assert sent_anthropic_key(request.headers) == API_KEY
    assert request.headers["anthropic-version"]
    assert request.body["model"] == MODEL
    assert request.body["max_tokens"] == MAX_OUTPUT_TOKENS
    assert "Do not add facts" in request.body["system"]
    [user] = request.body["messages"]
    assert user["role"] == "user"
    assert f"<note>\n{NOTE}\n</note>" in user["content"]
    assert "Medications" in user["content"]


@pytest.mark.parametrize("vendor", [ANTHROPIC], ids=["anthropic"])
async def test_anthropic_overloaded_is_503(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.fail(529, retry_after=0.05)
    with pytest.raises(ProviderError, match=r"HTTP 529") as caught:
        await provider.summarize(NOTE)
    assert caught.value.status_code == 503
    assert len(server.requests) == MAX_RETRIES + 1


async def test_fake_embeddings_endpoint_speaks_the_openai_wire_format(server: FakeLLMServer) -> None:
    """The rag tests build on this endpoint, so check it with the official SDK in both encodings."""
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=server.openai_base_url, max_retries=0)
    try:
        default = await client.embeddings.create(model="embed-test", input=["metformin dose", "asthma"])
        as_floats = await client.embeddings.create(
            model="embed-test", input="metformin dose", dimensions=8, encoding_format="float"
        )
    finally:
        await client.close()

    first, second = (np.asarray(item.embedding) for item in default.data)
    assert first.shape == (DEFAULT_EMBEDDING_DIM,)
    assert np.isclose(np.linalg.norm(first), 1.0)
    assert np.allclose(first, fake_embedding("metformin dose", DEFAULT_EMBEDDING_DIM), atol=1e-6)
    assert not np.allclose(first, second)
    assert len(as_floats.data[0].embedding) == 8
    assert server.requests[0].body["encoding_format"] == "base64"  # the SDK's default
    assert server.requests[1].body["dimensions"] == 8
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
