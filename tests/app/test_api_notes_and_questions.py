"""Summaries, note questions and guideline answers through the API, the LLM cache, and the token."""

from __future__ import annotations

import json
import re

import asyncpg
import httpx
import pytest
from conftest import make_settings, running_app

from medical_notes.config import Settings

NOTE_TEXT = (
    "## Subjective\nChief complaint: chest tightness on exertion for two weeks.\n"
    "## Objective\nBP 152/94 mmHg, HR 88 bpm. LDL cholesterol 4.1 mmol/L.\n"
    "## Assessment\nStable angina, likely; uncontrolled hypertension.\n"
    "## Plan\nStart atorvastatin 40 mg nightly and amlodipine 5 mg daily. Exercise stress test.\n"
    "Medications:\n- atorvastatin 40 mg nightly\n- amlodipine 5 mg daily\n"
)


async def create_note(client: httpx.AsyncClient, content: str = NOTE_TEXT) -> int:
    response = await client.post("/documents", json={"title": "Chest pain visit", "content": content})
    assert response.status_code == 201
    return response.json()["id"]


async def test_summary_of_stored_note_is_cached_until_the_note_changes(client: httpx.AsyncClient) -> None:
    document_id = await create_note(client)
    first = await client.post("/summarize_note", json={"document_id": document_id})
    assert first.status_code == 200
    body = first.json()
    assert body["provider"] == "offline"
    assert body["model"] == "offline-extractive-v1"
    assert body["cached"] is False
    assert "atorvastatin" in body["summary"]

    again = await client.post("/summarize_note", json={"document_id": document_id})
    assert again.json() == {**body, "cached": True}

    # Same text pasted in: same input, so the same cache entry.
    pasted = await client.post("/summarize_note", json={"text": NOTE_TEXT})
    assert pasted.json()["cached"] is True

    changed = NOTE_TEXT.replace("atorvastatin 40 mg", "rosuvastatin 20 mg")
    assert (await client.put(f"/documents/{document_id}", json={"content": changed})).status_code == 200
    after_edit = await client.post("/summarize_note", json={"document_id": document_id})
    assert after_edit.json()["cached"] is False
    assert "rosuvastatin" in after_edit.json()["summary"]
    assert "atorvastatin" not in after_edit.json()["summary"]

    # A title change does not change the input, so the cached summary stays valid.
    assert (await client.put(f"/documents/{document_id}", json={"title": "Renamed"})).status_code == 200
    assert (await client.post("/summarize_note", json={"document_id": document_id})).json()["cached"] is True


async def test_query_note_answers_from_the_note_and_caches_per_question(client: httpx.AsyncClient) -> None:
    document_id = await create_note(client)
    first = await client.post(
        "/query_note", json={"document_id": document_id, "query": "What is the blood pressure?"}
    )
    assert first.status_code == 200
    assert first.json()["cached"] is False
    assert "152/94" in first.json()["answer"]
    repeat = await client.post(
        "/query_note", json={"document_id": document_id, "query": "What is the blood pressure?"}
    )
    assert repeat.json()["cached"] is True
    other = await client.post("/query_note", json={"document_id": document_id, "query": "Which statin dose?"})
    assert other.json()["cached"] is False
    pasted = await client.post("/query_note", json={"text": NOTE_TEXT, "query": "Which statin dose?"})
    assert pasted.json()["cached"] is True


async def test_cache_rows_are_keyed_by_operation_provider_model_and_hash(
    client: httpx.AsyncClient, app_settings: Settings
) -> None:
    await client.post("/summarize_note", json={"text": NOTE_TEXT})
    await client.post("/query_note", json={"text": NOTE_TEXT, "query": "dose?"})
    connection = await asyncpg.connect(app_settings.database_url)
    try:
        rows = await connection.fetch(
            "SELECT operation, provider, model, input_hash FROM llm_cache ORDER BY 1"
        )
    finally:
        await connection.close()
    assert [(row["operation"], row["provider"], row["model"]) for row in rows] == [
        ("query_note", "offline", "offline-extractive-v1"),
        ("summarize", "offline", "offline-extractive-v1"),
    ]
    assert all(re.fullmatch(r"[0-9a-f]{64}", row["input_hash"]) for row in rows)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/summarize_note", {}),
        ("/summarize_note", {"document_id": 1, "text": "both"}),
        ("/summarize_note", {"document_id": None, "text": None}),
        ("/summarize_note", {"text": ""}),
        ("/summarize_note", {"text": "   "}),
        ("/summarize_note", {"document_id": "one"}),
        ("/summarize_note", {"document_id": 0}),
        ("/query_note", {"text": "note"}),
        ("/query_note", {"text": "note", "query": ""}),
        ("/query_note", {"text": "note", "query": "q" * 2001}),
        ("/answer_question", {}),
        ("/answer_question", {"question": ""}),
        ("/answer_question", {"question": "   "}),
        ("/answer_question", {"question": "q" * 2001}),
        ("/answer_question", {"question": "HbA1c target?", "top_k": 0}),
        ("/answer_question", {"question": "HbA1c target?", "top_k": 21}),
        ("/answer_question", {"question": "HbA1c target?", "top_k": "five"}),
        ("/answer_question", {"question": "HbA1c target?", "top_k": 2.5}),
        ("/answer_question", {"question": "HbA1c target?", "extra": True}),
        ("/answer_question", {"question": ["HbA1c target?"]}),
    ],
)
async def test_invalid_llm_requests_are_422(client: httpx.AsyncClient, path: str, body: dict) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_answer_question_cites_sources(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/answer_question",
        json={
            "question": "What HbA1c target is recommended for most adults with type 2 diabetes?",
            "top_k": 3,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"answer", "sources", "confidence", "retrieved_count"}
    assert body["retrieved_count"] == len(body["sources"]) == 3
    assert [source["id"] for source in body["sources"]] == [1, 2, 3]
    for source in body["sources"]:
        assert set(source) == {"id", "document", "section", "text", "score"}
        assert source["text"]
    assert "diabetes" in body["sources"][0]["document"].lower()
    cited = {int(number) for number in re.findall(r"\[(\d+)\]", body["answer"])}
    assert cited
    assert cited <= {1, 2, 3}
    assert 0 < body["confidence"] <= 1
    assert body["confidence"] == round(body["sources"][0]["score"], 4)
    assert body["cached"] is False

    again = await client.post(
        "/answer_question",
        json={
            "question": "What HbA1c target is recommended for most adults with type 2 diabetes?",
            "top_k": 3,
        },
    )
    assert again.json() == {**body, "cached": True}


async def test_answer_question_default_top_k(client: httpx.AsyncClient) -> None:
    response = await client.post("/answer_question", json={"question": "blood pressure target with CKD"})
    assert response.status_code == 200
    assert response.json()["retrieved_count"] == 5


async def test_answer_question_without_index_is_503_with_reason(app_settings: Settings, tmp_path) -> None:
    settings = app_settings.model_copy(update={"faiss_index_dir": tmp_path / "no_index"})
    async with running_app(settings) as client:
        response = await client.post("/answer_question", json={"question": "HbA1c target?"})
        assert response.status_code == 503
        assert response.json()["detail"].startswith("guideline index unavailable: index not built")
        # The rest of the service works without the index.
        assert (await client.post("/summarize_note", json={"text": NOTE_TEXT})).status_code == 200


async def test_index_built_with_other_embedding_is_503(database_url: str, index_dir) -> None:
    # An index recorded as built by another embedding model than the service is configured for.
    meta_path = index_dir / "index_meta.json"
    meta = json.loads(meta_path.read_text())
    meta["embedding"]["model"] = "hashed-ngrams-v0"
    meta_path.write_text(json.dumps(meta))
    settings = make_settings(database_url, index_dir)
    async with running_app(settings) as client:
        response = await client.post("/answer_question", json={"question": "HbA1c target?"})
        health = await client.get("/health")
    assert response.status_code == 503
    assert "hashed-ngrams-v0" in response.json()["detail"]
    assert health.status_code == 503
    assert "index built with" in health.json()["reason"]


# ---- bearer token ------------------------------------------------------------------------------


@pytest.fixture
async def token_client(database_url: str, index_dir):
    settings = make_settings(database_url, index_dir, api_token="s3cret-token")
    async with running_app(settings) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/documents", None),
        ("GET", "/documents/1", None),
        ("POST", "/documents", {"title": "x", "content": "y"}),
        ("PUT", "/documents/1", {"title": "x"}),
        ("DELETE", "/documents/1", None),
        ("POST", "/summarize_note", {"text": "note"}),
        ("POST", "/query_note", {"text": "note", "query": "q"}),
        ("POST", "/answer_question", {"question": "q"}),
    ],
)
async def test_token_required_everywhere_but_health(
    token_client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    missing = await token_client.request(method, path, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json() == {"detail": "missing bearer token"}
    wrong = await token_client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    basic = await token_client.request(method, path, json=body, headers={"Authorization": "Basic czNjcmV0"})
    assert basic.status_code == 401


async def test_token_accepted_and_health_open(
    token_client: httpx.AsyncClient, app_settings: Settings
) -> None:
    assert (await token_client.get("/health")).status_code == 200
    headers = {"Authorization": "Bearer s3cret-token"}
    created = await token_client.post("/documents", json={"title": "x", "content": "y"}, headers=headers)
    assert created.status_code == 201
    lower = await token_client.get(
        f"/documents/{created.json()['id']}", headers={"Authorization": "bearer s3cret-token"}
    )
    assert lower.status_code == 200
    assert (await token_client.get("/documents", headers=headers)).json() == [created.json()["id"]]


async def test_no_token_needed_when_auth_is_disabled(client: httpx.AsyncClient) -> None:
    assert (await client.get("/documents")).status_code == 200
    assert (await client.get("/documents", headers={"Authorization": "Bearer anything"})).status_code == 200
