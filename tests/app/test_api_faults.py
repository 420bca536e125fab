"""Faults: PostgreSQL stopping and coming back, a server started before its database, a damaged
schema, concurrent migrations; and what the logs may (not) contain."""

from __future__ import annotations

import asyncio
import logging
import re

import asyncpg
import httpx
import pytest
from conftest import make_settings, running_app
from postgres_server import PostgresServer, free_port

from medical_notes import db
from medical_notes.config import Settings

SECRET_CONTENT = "Patient Zebulon Quartermaine reports secret-marker-7731 chest pain."


async def test_database_outage_gives_503_then_recovers_without_restart(
    client: httpx.AsyncClient, postgres_server: PostgresServer
) -> None:
    created = await client.post("/documents", json={"title": "Before outage", "content": "Stable."})
    assert created.status_code == 201
    document_id = created.json()["id"]

    postgres_server.stop()
    try:
        for method, path, body in [
            ("GET", f"/documents/{document_id}", None),
            ("GET", "/documents", None),
            ("POST", "/documents", {"title": "During outage", "content": "Lost?"}),
            ("PUT", f"/documents/{document_id}", {"title": "Changed during outage"}),
            ("DELETE", f"/documents/{document_id}", None),
            ("POST", "/summarize_note", {"document_id": document_id}),
        ]:
            response = await client.request(method, path, json=body)
            assert response.status_code == 503, (method, path, response.text)
            assert response.json()["detail"].startswith("database unavailable")
            assert response.headers["retry-after"]
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["database"]["ok"] is False
        assert health.json()["reason"].startswith("database unavailable")
        # Pasted notes need no database: answered, just not cached.
        pasted = await client.post("/summarize_note", json={"text": "Chief complaint: cough."})
        assert pasted.status_code == 200
        assert pasted.json()["cached"] is False
    finally:
        postgres_server.start()

    recovered = await client.get(f"/documents/{document_id}")
    assert recovered.status_code == 200
    assert recovered.json()["title"] == "Before outage"
    assert (await client.get("/health")).status_code == 200
    # Nothing from the failed requests was written.
    assert (await client.get("/documents")).json() == [document_id]


async def test_service_starts_before_its_database_and_connects_later(tmp_path, index_dir) -> None:
    port = free_port()
    settings = make_settings(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", index_dir, db_connect_timeout=2
    )
    async with running_app(settings) as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["database"]["ok"] is False
        assert (await client.get("/documents")).status_code == 503
        with PostgresServer(port=port) as late_server:
            if late_server.user != "postgres":
                pytest.skip("needs the postgres role name in the DSN")
            await asyncio.sleep(db.RECONNECT_BACKOFF_SECONDS)
            health = await client.get("/health")
            assert health.status_code == 200, health.text
            assert health.json()["database"]["schema_version"] == db.SCHEMA_VERSION
            created = await client.post("/documents", json={"title": "Late", "content": "Database came up."})
            assert created.status_code == 201


async def test_unexpected_error_is_500_without_details(
    client: httpx.AsyncClient, app_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    created = await client.post("/documents", json={"title": "t", "content": SECRET_CONTENT})
    document_id = created.json()["id"]
    # Damage the schema behind the service's back: a real failure that is neither input nor outage.
    connection = await asyncpg.connect(app_settings.database_url)
    try:
        await connection.execute("ALTER TABLE documents RENAME COLUMN content TO body")
    finally:
        await connection.close()
    with caplog.at_level(logging.INFO):
        response = await client.get(f"/documents/{document_id}")
        summary = await client.post("/summarize_note", json={"document_id": document_id})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert summary.status_code == 500
    assert "Traceback" not in response.text
    assert "unexpected UndefinedColumnError" in caplog.text
    assert SECRET_CONTENT not in caplog.text


async def test_logs_carry_method_path_status_duration_but_no_content(
    database_url: str, index_dir, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, index_dir, api_token="token-not-for-logs")
    headers = {"Authorization": "Bearer token-not-for-logs"}
    question = "secret-question-marker-5512 what is the LDL goal?"
    with caplog.at_level(logging.DEBUG):
        async with running_app(settings) as client:
            created = await client.post(
                "/documents", json={"title": "Private title 9931", "content": SECRET_CONTENT}, headers=headers
            )
            document_id = created.json()["id"]
            await client.get(f"/documents/{document_id}", headers=headers)
            await client.post("/summarize_note", json={"document_id": document_id}, headers=headers)
            await client.post(
                "/query_note", json={"text": SECRET_CONTENT, "query": "what marker?"}, headers=headers
            )
            await client.post("/answer_question", json={"question": question}, headers=headers)
            await client.post("/documents", json={"title": "", "content": SECRET_CONTENT}, headers=headers)
            await client.post("/documents", json={"title": "x", "content": SECRET_CONTENT})
    access = [record.getMessage() for record in caplog.records if record.name == "medical_notes.access"]
    assert "POST /documents 201" in access[0]
    assert any(
        re.fullmatch(
            rf"GET /documents/{document_id} 200 [\d.]+ms client=bootstrap addr=\S+ request_id=\w+", line
        )
        for line in access
    )
    assert any(line.startswith("POST /documents 422 ") for line in access)
    assert any(line.startswith("POST /documents 401 ") for line in access)
    for forbidden in (
        "secret-marker-7731",
        "Zebulon",
        "Private title 9931",
        "secret-question-marker",
        "token-not-for-logs",
    ):
        assert forbidden not in caplog.text


async def test_failed_request_leaves_no_partial_rows(
    client: httpx.AsyncClient, app_settings: Settings
) -> None:
    bad_requests = [
        {"title": "ok", "content": "ok", "metadata": {"nested": {"bad": "\u0000"}}},
        {"title": "ok", "content": "ok", "doc_type": ""},
        {"title": "ok" * 200, "content": "ok"},
    ]
    for body in bad_requests:
        assert (await client.post("/documents", json=body)).status_code == 422
    connection = await asyncpg.connect(app_settings.database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM documents") == 0
        assert await connection.fetchval("SELECT count(*) FROM llm_cache") == 0
    finally:
        await connection.close()


async def test_concurrent_migrations_apply_once(database_url: str) -> None:
    connections = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        versions = await asyncio.gather(*(db.migrate(connection) for connection in connections))
        assert versions == [db.SCHEMA_VERSION] * 4
        rows = await connections[0].fetch("SELECT version FROM schema_version ORDER BY version")
        assert [row["version"] for row in rows] == [version for version, _ in db.MIGRATIONS]
        assert await db.migrate(connections[0]) == db.SCHEMA_VERSION
        assert await db.read_schema_version(connections[0]) == db.SCHEMA_VERSION
    finally:
        for connection in connections:
            await connection.close()


async def test_schema_version_is_none_before_first_migration(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        assert await db.read_schema_version(connection) is None
    finally:
        await connection.close()


async def test_missing_database_is_503_with_the_servers_reason(
    postgres_server: PostgresServer, index_dir
) -> None:
    settings = make_settings(postgres_server.dsn("no_such_database"), index_dir)
    async with running_app(settings) as client:
        health = await client.get("/health")
        documents = await client.get("/documents/1")
    assert health.status_code == 503
    assert 'database "no_such_database" does not exist' in health.json()["reason"]
    assert documents.status_code == 503
