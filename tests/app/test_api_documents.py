"""The documents endpoints and /health against the real app and a real PostgreSQL database."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from conftest import make_settings, running_app

from medical_notes import db
from medical_notes.config import Settings

NOTE = {
    "title": "Hypertension follow-up",
    "content": "## Subjective\nHeadaches in the morning.\n## Plan\nStart amlodipine 5 mg daily.",
    "doc_type": "soap_note",
    "metadata": {"specialty": "cardiology", "visit": 2},
}
DOCUMENT_KEYS = {
    "id",
    "title",
    "content",
    "doc_type",
    "metadata",
    "source_key",
    "content_hash",
    "created_at",
    "updated_at",
}


async def create(client: httpx.AsyncClient, **overrides: object) -> dict:
    response = await client.post("/documents", json={**NOTE, **overrides})
    assert response.status_code == 201, response.text
    return response.json()


async def count_rows(settings: Settings) -> int:
    connection = await asyncpg.connect(settings.database_url)
    try:
        return await connection.fetchval("SELECT count(*) FROM documents")
    finally:
        await connection.close()


async def test_health_reports_database_index_provider_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["reason"] is None
    assert body["version"] == "0.1.0"
    assert body["database"] == {"ok": True, "reason": None, "schema_version": db.SCHEMA_VERSION}
    assert body["index"]["ok"] is True
    assert body["index"]["documents"] >= 5
    assert body["index"]["chunks"] > body["index"]["documents"]
    assert body["index"]["embedding"]["provider"] == "local"
    assert body["provider"] == {"name": "offline", "model": "offline-extractive-v1"}


async def test_health_is_503_with_reason_when_index_missing(app_settings: Settings, tmp_path) -> None:
    settings = app_settings.model_copy(update={"faiss_index_dir": tmp_path / "empty_index"})
    async with running_app(settings) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "index not built" in body["reason"]
    assert body["database"]["ok"] is True


async def test_create_get_list_document(client: httpx.AsyncClient) -> None:
    created = await create(client)
    assert set(created) == DOCUMENT_KEYS
    assert created["title"] == NOTE["title"]
    assert created["metadata"] == NOTE["metadata"]
    assert created["source_key"] is None
    assert len(created["content_hash"]) == 64

    fetched = await client.get(f"/documents/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created

    second = await create(client, title="Second note")
    listed = await client.get("/documents")
    assert listed.status_code == 200
    assert listed.json() == [created["id"], second["id"]]


async def test_create_defaults_doc_type_and_metadata_and_strips_title(client: httpx.AsyncClient) -> None:
    response = await client.post("/documents", json={"title": "  Padded  ", "content": "Short note."})
    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "Padded"
    assert body["doc_type"] == "soap_note"
    assert body["metadata"] == {}


async def test_create_without_fast_lane_content_type_variants(client: httpx.AsyncClient) -> None:
    # A charset parameter still is JSON; both must create the same kind of row.
    response = await client.post(
        "/documents",
        content=httpx.Request("POST", "/", json=NOTE).content,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201
    response = await client.post(
        "/documents",
        content=httpx.Request("POST", "/", json=NOTE).content,
        headers={"content-type": "application/vnd.api+json"},
    )
    assert response.status_code == 201
    assert set(response.json()) == DOCUMENT_KEYS


async def test_partial_update_changes_only_given_fields(client: httpx.AsyncClient) -> None:
    created = await create(client)
    response = await client.put(f"/documents/{created['id']}", json={"title": "Renamed"})
    assert response.status_code == 200
    updated = response.json()
    assert updated["title"] == "Renamed"
    assert updated["content"] == created["content"]
    assert updated["metadata"] == created["metadata"]
    assert updated["content_hash"] == created["content_hash"]
    assert updated["updated_at"] > created["updated_at"]
    assert updated["created_at"] == created["created_at"]

    response = await client.put(
        f"/documents/{created['id']}", json={"content": "New text.", "metadata": {"a": [1, 2]}}
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["title"] == "Renamed"
    assert updated["content"] == "New text."
    assert updated["metadata"] == {"a": [1, 2]}
    assert updated["content_hash"] != created["content_hash"]


async def test_delete_then_gone(client: httpx.AsyncClient) -> None:
    created = await create(client)
    response = await client.delete(f"/documents/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/documents/{created['id']}")).status_code == 404
    assert (await client.delete(f"/documents/{created['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/documents/999999", None),
        ("PUT", "/documents/999999", {"title": "x"}),
        ("DELETE", "/documents/999999", None),
        ("POST", "/summarize_note", {"document_id": 999999}),
        ("POST", "/query_note", {"document_id": 999999, "query": "dose?"}),
    ],
)
async def test_unknown_ids_are_404(client: httpx.AsyncClient, method: str, path: str, body: object) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == 404
    assert response.json() == {"detail": "document 999999 not found"}


FULLWIDTH_DIGIT_ONE = "\uff11"


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "1.5", str(2**63), FULLWIDTH_DIGIT_ONE])
async def test_invalid_ids_are_422(client: httpx.AsyncClient, bad_id: str) -> None:
    response = await client.get(f"/documents/{bad_id}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "document_id"]


@pytest.mark.parametrize(
    ("body", "field", "error_type"),
    [
        ({"content": "x"}, "title", "missing"),
        ({"title": "x"}, "content", "missing"),
        ({"title": "", "content": "x"}, "title", "string_too_short"),
        ({"title": "   ", "content": "x"}, "title", "string_too_short"),
        ({"title": "t" * 256, "content": "x"}, "title", "string_too_long"),
        ({"title": "x", "content": ""}, "content", "string_too_short"),
        ({"title": "x", "content": "  \n "}, "content", "value_error"),
        ({"title": "x", "content": "nul \u0000 byte"}, "content", "value_error"),
        ({"title": "x", "content": "y", "metadata": {"k": "nul \u0000"}}, "metadata", "value_error"),
        ({"title": "x", "content": "y", "metadata": [1]}, "metadata", "dict_type"),
        ({"title": 5, "content": "y"}, "title", "string_type"),
        ({"title": "x", "content": "y", "doc_type": "d" * 65}, "doc_type", "string_too_long"),
        ({"title": "x", "content": "y", "owner": "someone"}, "owner", "extra_forbidden"),
    ],
)
async def test_invalid_document_fields_are_422(
    client: httpx.AsyncClient, app_settings: Settings, body: dict, field: str, error_type: str
) -> None:
    response = await client.post("/documents", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(error["loc"][:2] == ["body", field] and error["type"] == error_type for error in errors), (
        errors
    )
    assert all("input" not in error for error in errors)
    assert await count_rows(app_settings) == 0


async def test_lone_surrogate_is_422_not_500(client: httpx.AsyncClient, app_settings: Settings) -> None:
    raw = b'{"title": "x", "content": "lone \\ud800 surrogate"}'
    response = await client.post("/documents", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert await count_rows(app_settings) == 0


@pytest.mark.parametrize("number", [b"1" + b"0" * 30, b"-" + b"9" * 25, b"NaN", b"Infinity", b"1e400"])
async def test_unstorable_metadata_numbers_are_422(
    client: httpx.AsyncClient, app_settings: Settings, number: bytes
) -> None:
    raw = b'{"title": "x", "content": "y", "metadata": {"k": [' + number + b"]}}"
    response = await client.post("/documents", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert await count_rows(app_settings) == 0


@pytest.mark.parametrize("depth", [40, 300, 5000])
async def test_deeply_nested_metadata_is_4xx(
    client: httpx.AsyncClient, app_settings: Settings, depth: int
) -> None:
    raw = b'{"title": "x", "content": "y", "metadata": {"k": ' + b"[" * depth + b"]" * depth + b"}}"
    response = await client.post("/documents", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert await count_rows(app_settings) == 0


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b'{"title": "x", "content": ', "application/json"),
        (b"not json at all", "application/json"),
        (b"", "application/json"),
        (b'["title", "content"]', "application/json"),
        (b'{"title": "x", "content": "y"}', "text/plain"),
        (b'{"title": "x", "content": "y"}', None),
    ],
)
async def test_malformed_bodies_are_422(
    client: httpx.AsyncClient, raw: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/documents", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)


async def test_malformed_json_names_the_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/answer_question", content=b'{"question": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["type"] == "json_invalid"
    assert error["msg"].startswith("JSON decode error")


async def test_content_over_max_note_chars_is_422(database_url: str, index_dir) -> None:
    settings = make_settings(database_url, index_dir, max_note_chars=100)
    async with running_app(settings) as client:
        response = await client.post("/documents", json={"title": "x", "content": "y" * 101})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "content"]
        assert (await client.post("/documents", json={"title": "x", "content": "y" * 100})).status_code == 201
        response = await client.put("/documents/1", json={"content": "z" * 101})
        assert response.status_code == 422
        response = await client.post("/summarize_note", json={"text": "z" * 101})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "text"]
    assert await count_rows(settings) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": None},
        {"content": None},
        {"content": ""},
        {"title": "t" * 256},
        {"metadata": "not an object"},
        {"unknown": 1},
    ],
)
async def test_invalid_partial_updates_are_422_and_change_nothing(
    client: httpx.AsyncClient, body: dict
) -> None:
    created = await create(client)
    response = await client.put(f"/documents/{created['id']}", json=body)
    assert response.status_code == 422, response.text
    assert (await client.get(f"/documents/{created['id']}")).json() == created


async def test_update_with_one_bad_field_writes_nothing(client: httpx.AsyncClient) -> None:
    created = await create(client)
    response = await client.put(f"/documents/{created['id']}", json={"title": "Good title", "content": ""})
    assert response.status_code == 422
    assert (await client.get(f"/documents/{created['id']}")).json()["title"] == NOTE["title"]


async def test_body_over_limit_is_413_from_content_length(
    client: httpx.AsyncClient, app_settings: Settings
) -> None:
    big = {"title": "big", "content": "x" * (app_settings.max_body_bytes + 10)}
    response = await client.post("/documents", json=big)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]
    assert await count_rows(app_settings) == 0


@pytest.mark.parametrize("path", ["/documents", "/answer_question", "/summarize_note", "/documents/1"])
async def test_streamed_body_over_limit_is_413(
    client: httpx.AsyncClient, app_settings: Settings, path: str
) -> None:
    chunk = b"x" * 65536

    async def stream():  # no Content-Length: the size is only known while reading
        yield b'{"title": "big", "content": "'
        for _ in range(app_settings.max_body_bytes // len(chunk) + 2):
            yield chunk
        yield b'"}'

    method = "PUT" if path == "/documents/1" else "POST"
    response = await client.request(
        method, path, content=stream(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert await count_rows(app_settings) == 0


async def test_body_exactly_at_limit_is_accepted(database_url: str, index_dir) -> None:
    settings = make_settings(database_url, index_dir, max_body_bytes=4096, max_note_chars=10_000)
    overhead = len(b'{"title":"big","content":""}')
    body = b'{"title":"big","content":"' + b"x" * (settings.max_body_bytes - overhead) + b'"}'
    assert len(body) == settings.max_body_bytes
    async with running_app(settings) as client:
        response = await client.post("/documents", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 201
        response = await client.post(
            "/documents", content=body[:-2] + b'x"}', headers={"content-type": "application/json"}
        )
        assert response.status_code == 413


async def test_invalid_content_length_header_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/documents", content=b"{}", headers={"content-length": "abc"})
    assert response.status_code == 400


async def test_openapi_documents_every_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) >= {
        "/health",
        "/documents",
        "/documents/{document_id}",
        "/summarize_note",
        "/query_note",
        "/answer_question",
    }
    assert set(paths["/documents/{document_id}"]) == {"get", "put", "delete"}
    assert (await client.get("/docs")).status_code == 200
