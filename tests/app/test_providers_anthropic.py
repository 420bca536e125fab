"""The anthropic provider: the official SDK over real HTTP against the local fake Messages API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from fakes import FakeLLMServer, free_port_url
from medical_notes.config import ConfigurationError, Settings
from medical_notes.providers import LLMProvider, Passage, ProviderError, create_provider
from medical_notes.providers.anthropic_provider import MAX_OUTPUT_TOKENS, AnthropicProvider

API_KEY = "sk-ant-test-k3y-never-shown"
MODEL = "claude-test-haiku"
TIMEOUT = 0.5
MAX_RETRIES = 1
NOTE = (
    "## Subjective\nChief complaint: fatigue.\n## Assessment\nType 2 diabetes, HbA1c 8.4%.\n"
    "## Plan\nMetformin 1000 mg twice daily."
)
MESSAGES_PATH = "/v1/messages"


def anthropic_settings(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "llm_provider": "anthropic",
        "llm_model": MODEL,
        "llm_api_key": API_KEY,
        "llm_base_url": base_url,
        "llm_timeout": TIMEOUT,
        "llm_max_retries": MAX_RETRIES,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
async def provider(server: FakeLLMServer) -> AsyncIterator[LLMProvider]:
    llm = create_provider(anthropic_settings(server.anthropic_base_url))
    yield llm
    await llm.aclose()


def sent_key(headers: dict[str, str]) -> str | None:
    """The key as the SDK sent it: the pinned SDK uses a Bearer token, older ones x-api-key."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    return headers.get("authorization", "").removeprefix("Bearer ") or None


def assert_key_not_leaked(error: ProviderError) -> None:
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert API_KEY not in error.message
    # Raised "from None", so a logged traceback does not show the SDK's exception (which echoes the key)
    assert error.__cause__ is None
    assert error.__suppress_context__


async def test_create_provider_builds_the_anthropic_provider(provider: LLMProvider) -> None:
    assert isinstance(provider, AnthropicProvider)
    assert isinstance(provider, LLMProvider)
    assert provider.name == "anthropic"
    assert provider.model == MODEL


def test_missing_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="LLM_API_KEY") as caught:
        create_provider(anthropic_settings("http://127.0.0.1:9", llm_api_key=None))
    assert "\n" not in str(caught.value)


async def test_summarize_sends_model_key_and_note(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.reply = "Chief complaint: fatigue. Plan: metformin 1000 mg twice daily."

    summary = await provider.summarize(NOTE)

    assert summary == "Chief complaint: fatigue. Plan: metformin 1000 mg twice daily."
    [request] = server.requests
    assert request.path == MESSAGES_PATH
    assert sent_key(request.headers) == API_KEY
    assert request.headers["anthropic-version"]
    assert request.body["model"] == MODEL
    assert request.body["max_tokens"] == MAX_OUTPUT_TOKENS
    assert "Do not add facts" in request.body["system"]
    [user] = request.body["messages"]
    assert user["role"] == "user"
    assert f"<note>\n{NOTE}\n</note>" in user["content"]
    assert "Medications" in user["content"]


async def test_query_note_sends_note_and_question(server: FakeLLMServer, provider: LLMProvider) -> None:
    answer = await provider.query_note(NOTE, "What is the HbA1c?")

    assert answer == f"Fake answer from {MODEL}."
    user = server.requests_to(MESSAGES_PATH)[0].body["messages"][0]["content"]
    assert NOTE in user
    assert "<question>\nWhat is the HbA1c?\n</question>" in user
    assert "Not found in the note" in user


async def test_answer_question_numbers_the_passages_for_citations(
    server: FakeLLMServer, provider: LLMProvider
) -> None:
    server.reply = "Metformin is first-line [1]; aim for an HbA1c near 7% [2]."
    passages = [
        Passage(1, "Type 2 Diabetes in Adults", "First-line therapy", "Metformin is first-line.", 0.82),
        Passage(2, "Type 2 Diabetes in Adults", "Glycaemic Targets", "Most adults aim for 7%.", 0.61),
    ]

    answer = await provider.answer_question("What is first-line therapy?", passages)

    assert answer == "Metformin is first-line [1]; aim for an HbA1c near 7% [2]."
    user = server.requests[0].body["messages"][0]["content"]
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


async def test_rate_limit_is_503_after_bounded_retries(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.fail(429, retry_after=0.05)

    with pytest.raises(ProviderError) as caught:
        await provider.summarize(NOTE)

    assert caught.value.status_code == 503
    assert "rate limit" in caught.value.message
    assert_key_not_leaked(caught.value)
    attempts = server.requests_to(MESSAGES_PATH)
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


async def test_unreachable_base_url_is_503_without_credentials_in_the_message() -> None:
    closed = free_port_url()
    base_url = closed.replace("http://", "http://someone:url-password@") + "?api-key=query-secret"
    llm = create_provider(anthropic_settings(base_url))
    try:
        with pytest.raises(ProviderError) as caught:
            await llm.summarize(NOTE)
    finally:
        await llm.aclose()

    assert caught.value.status_code == 503
    assert caught.value.message == f"cannot reach the anthropic API at {closed}"
    assert "url-password" not in caught.value.message
    assert "query-secret" not in caught.value.message
    assert_key_not_leaked(caught.value)


async def test_empty_answer_is_502(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.reply = "   "
    with pytest.raises(ProviderError, match="empty answer") as caught:
        await provider.summarize(NOTE)
    assert caught.value.status_code == 502


async def test_overloaded_is_503(server: FakeLLMServer, provider: LLMProvider) -> None:
    server.fail(529, retry_after=0.05)
    with pytest.raises(ProviderError, match=r"HTTP 529") as caught:
        await provider.summarize(NOTE)
    assert caught.value.status_code == 503
    assert len(server.requests) == MAX_RETRIES + 1
