"""No input produces a 500: document ids of any length and shape, any header, any body (property tests
with hypothesis against the real app and database), and a client that disconnects mid-request is
logged and counted as a disconnect."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from conftest import make_settings, running_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from served_api import served_api

from medical_notes.config import Settings

TOKEN = "robustness-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HUGE_NUMBER = "9" * 4301  # int() refuses more than 4300 digits


class AppInLoop:
    """The real app on an event loop of its own, so that hypothesis (synchronous) can drive it."""

    def __init__(self, runner: asyncio.Runner, client: httpx.AsyncClient) -> None:
        self.runner = runner
        self.client = client

    def request(self, method: str, path: str, **options: object) -> httpx.Response:
        return self.runner.run(self.client.request(method, path, **options))  # type: ignore[arg-type]


@pytest.fixture
def app_in_loop(database_url: str, index_dir: Path) -> Iterator[AppInLoop]:
    app = running_app(make_settings(database_url, index_dir, api_token=TOKEN))
    with asyncio.Runner() as runner:
        client = runner.run(app.__aenter__())
        try:
            api = AppInLoop(runner, client)
            created = api.request("POST", "/documents", json={"title": "t", "content": "c"}, headers=AUTH)
            assert created.status_code == 201
            yield api
        finally:
            runner.run(app.__aexit__(None, None, None))


# No example database: nothing is written into the work tree, every run draws afresh.
PROPERTY_SETTINGS = settings(
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

DOCUMENT_IDS = st.one_of(
    st.integers().map(str),
    st.text(alphabet="0123456789", min_size=1, max_size=6000),
    st.text(max_size=40),
    st.sampled_from(["0", "-1", "00000000000000000000001", "9223372036854775808", "1e3", "1.0", " 1"]),
)


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(raw_id=DOCUMENT_IDS, method=st.sampled_from(["GET", "PUT", "DELETE"]))
def test_any_document_id_is_answered_without_a_server_error(
    app_in_loop: AppInLoop, raw_id: str, method: str
) -> None:
    body = {"title": "renamed"} if method == "PUT" else None
    response = app_in_loop.request(method, "/documents/" + quote(raw_id, safe=""), json=body, headers=AUTH)
    assert response.status_code < 500, (raw_id, response.text)
    if raw_id.isascii() and raw_id.isdigit():
        assert response.status_code in {200, 204, 404, 422}


HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "content-type",
            "content-length",
            "authorization",
            "accept",
            "accept-encoding",
            "expect",
            "connection",
            "x-forwarded-for",
            "cookie",
        ]
    ),
    st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"),
)
HEADER_VALUES = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
).map(lambda value: value.encode("latin-1"))


@settings(PROPERTY_SETTINGS, max_examples=120)
@given(
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
    target=st.sampled_from([("POST", "/documents"), ("GET", "/documents/1"), ("GET", "/metrics")]),
)
def test_any_header_is_answered_without_a_server_error(
    app_in_loop: AppInLoop, headers: dict[str, bytes], target: tuple[str, str]
) -> None:
    method, path = target
    content = json.dumps({"title": "t", "content": "c"}).encode() if method == "POST" else None
    merged = {"authorization": AUTH["Authorization"].encode(), "content-type": b"application/json"}
    merged.update(headers)
    response = app_in_loop.request(method, path, content=content, headers=merged)
    assert response.status_code < 500, (headers, response.text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["title", "content", "doc_type", "metadata", "document_id", "text", "query", "question", "top_k"]
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5).map(
        lambda value: json.dumps(value).encode()
    ),
)


@settings(PROPERTY_SETTINGS, max_examples=200)
@given(
    body=BODIES,
    target=st.sampled_from(
        [
            ("POST", "/documents"),
            ("PUT", "/documents/1"),
            ("POST", "/summarize_note"),
            ("POST", "/query_note"),
            ("POST", "/answer_question"),
        ]
    ),
    content_type=st.sampled_from([b"application/json", b"application/json; charset=utf-8", b"text/plain"]),
)
def test_any_body_is_answered_without_a_server_error(
    app_in_loop: AppInLoop, body: bytes, target: tuple[str, str], content_type: bytes
) -> None:
    method, path = target
    headers = {"authorization": AUTH["Authorization"].encode(), "content-type": content_type}
    response = app_in_loop.request(method, path, content=body, headers=headers)
    assert response.status_code < 500, (body, response.text)
    assert "detail" in response.json() or response.status_code < 300


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_ids_too_long_for_int_are_422(client: httpx.AsyncClient, method: str) -> None:
    body = {"title": "x"} if method == "PUT" else None
    response = await client.request(method, f"/documents/{HUGE_NUMBER}", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "document_id"]


async def test_huge_numbers_in_bodies_are_4xx(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    for path, body in [
        ("/summarize_note", '{"document_id": NUMBER}'),
        ("/documents", '{"title": "t", "content": "c", "metadata": {"n": NUMBER}}'),
        ("/answer_question", '{"question": "LDL goal?", "top_k": NUMBER}'),
    ]:
        response = await client.post(path, content=body.replace("NUMBER", HUGE_NUMBER), headers=headers)
        assert 400 <= response.status_code < 500, (path, response.text)


def _wait_for(pattern: str, read_log: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, read_log()):  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{pattern!r} not in the log"
        time.sleep(0.1)


def test_client_that_disconnects_mid_request_is_logged_as_a_disconnect(
    app_settings: Settings, tmp_path: Path
) -> None:
    partial_requests = {
        # served by the fast lane, and by FastAPI's routing
        "POST /documents": b"POST /documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"title": "half a note',
        "PUT /documents/1": b"PUT /documents/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"title": "half',
    }
    with served_api(app_settings, tmp_path / "serve.log") as api:
        for request_line, partial in partial_requests.items():
            with socket.create_connection(("127.0.0.1", api.port), timeout=5) as connection:
                connection.sendall(partial)
                time.sleep(0.2)
            _wait_for(rf"{re.escape(request_line)} 499 [\d.]+ms .*client disconnected", api.log)
        metrics = httpx.get(f"{api.base_url}/metrics").text
    requests = "medical_notes_http_request_duration_seconds_count"
    assert f'{requests}{{method="POST",route="/documents",status="499"}} 1.0' in metrics
    assert f'{requests}{{method="PUT",route="/documents/{{document_id}}",status="499"}} 1.0' in metrics
    log = api.log()
    assert " 500 " not in log
    assert "medical_notes.api: unexpected" not in log
    assert "Exception in ASGI application" not in log
    assert "half a note" not in log
