"""Client keys and scopes, the audit trail, request ids, fail-closed start and secrets from files,
against the real app, the real command line and a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import httpx
import pytest
from conftest import cli_env, fetch, make_settings, run_cli, running_app
from postgres_server import free_port

from medical_notes.api import create_app
from medical_notes.config import ConfigurationError, Settings

BOOTSTRAP = "bootstrap-token-for-tests-7d1e"
NOTE_TEXT = (
    "## Subjective\nconfidential-note-marker-3307 reports chest tightness.\n## Plan\nStart aspirin 81 mg."
)
NOTE = {"title": "confidential-title-marker-8820", "content": NOTE_TEXT}
QUESTION = "confidential-question-marker-6615 what dose?"


def bearer(token: str, request_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return headers


def create_client(settings: Settings, name: str, scope: str) -> str:
    result = run_cli(settings, "clients", "create", name, "--scope", scope)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    created = json.loads(lines[0])
    assert set(created) == {"name", "scope", "token"}
    assert (created["name"], created["scope"]) == (name, scope)
    return created["token"]


@pytest.fixture
def auth_settings(database_url: str, index_dir: Path) -> Settings:
    return make_settings(database_url, index_dir, api_token=BOOTSTRAP)


# ---- scopes --------------------------------------------------------------------------------------


async def test_scopes_read_write_admin(auth_settings: Settings) -> None:
    reader = create_client(auth_settings, "reporting", "read")
    writer = create_client(auth_settings, "ehr-sync", "write")
    admin = create_client(auth_settings, "security-team", "admin")
    async with running_app(auth_settings) as client:
        created = await client.post("/documents", json=NOTE, headers=bearer(writer))
        assert created.status_code == 201
        path = f"/documents/{created.json()['id']}"

        assert (await client.get(path, headers=bearer(reader))).status_code == 200
        assert (await client.get("/documents", headers=bearer(reader))).status_code == 200
        summary = await client.post(
            "/summarize_note", json={"document_id": created.json()["id"]}, headers=bearer(reader)
        )
        assert summary.status_code == 200
        question = await client.post(
            "/answer_question", json={"question": "LDL goal?"}, headers=bearer(reader)
        )
        assert question.status_code == 200
        # Both the fast lane (application/json) and FastAPI's routing refuse a read client's writes.
        for response in (
            await client.post("/documents", json=NOTE, headers=bearer(reader)),
            await client.post(
                "/documents",
                content=json.dumps(NOTE),
                headers={**bearer(reader), "Content-Type": "application/json; charset=utf-8"},
            ),
            await client.put(path, json={"title": "changed"}, headers=bearer(reader)),
            await client.delete(path, headers=bearer(reader)),
            await client.get("/audit", headers=bearer(reader)),
            await client.get("/audit", headers=bearer(writer)),
        ):
            assert response.status_code == 403, response.text
            assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert await fetch(auth_settings, "SELECT title FROM documents") == [
            ("confidential-title-marker-8820",)
        ]

        assert (await client.put(path, json={"title": "changed"}, headers=bearer(writer))).status_code == 200
        assert (await client.get("/audit", headers=bearer(admin))).status_code == 200
        assert (await client.get("/audit", headers=bearer(BOOTSTRAP))).status_code == 200
        assert (await client.delete(path, headers=bearer(admin))).status_code == 204

        unknown = await client.get("/documents", headers=bearer("mn_" + "A" * 43))
        assert unknown.status_code == 401
        assert 'error="invalid_token"' in unknown.headers["www-authenticate"]


async def test_revoke_is_401_at_once_in_every_worker(auth_settings: Settings) -> None:
    token = create_client(auth_settings, "departing-vendor", "read")
    async with running_app(auth_settings) as worker_a, running_app(auth_settings) as worker_b:
        for worker in (worker_a, worker_b):
            # Twice: the second answer comes from the worker's cache of clients.
            for _ in range(2):
                assert (await worker.get("/documents", headers=bearer(token))).status_code == 200
        revoked = run_cli(auth_settings, "clients", "revoke", "departing-vendor")
        assert revoked.returncode == 0, revoked.stderr
        assert json.loads(revoked.stdout) == {"name": "departing-vendor", "revoked": True}
        # The NOTIFY is delivered with the commit; give each worker's event loop one turn to read it.
        await asyncio.sleep(0.05)
        for worker in (worker_a, worker_b):
            response = await worker.get("/documents", headers=bearer(token))
            assert response.status_code == 401
    again = run_cli(auth_settings, "clients", "revoke", "departing-vendor")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == ["error: no active client 'departing-vendor'"]


async def test_cache_is_not_trusted_while_the_listener_is_down(auth_settings: Settings) -> None:
    token = create_client(auth_settings, "listener-check", "read")
    async with running_app(auth_settings) as client:
        assert (await client.get("/documents", headers=bearer(token))).status_code == 200
        # Kill the worker's LISTEN connection; the revoke below sends a notification nobody hears.
        await fetch(
            auth_settings,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%' AND datname = current_database()",
        )
        assert run_cli(auth_settings, "clients", "revoke", "listener-check").returncode == 0
        assert (await client.get("/documents", headers=bearer(token))).status_code == 401


async def test_rotate_replaces_the_token_and_keeps_the_scope(auth_settings: Settings) -> None:
    old = create_client(auth_settings, "lab-feed", "write")
    async with running_app(auth_settings) as client:
        assert (await client.get("/documents", headers=bearer(old))).status_code == 200
        rotated = run_cli(auth_settings, "clients", "rotate", "lab-feed")
        assert rotated.returncode == 0, rotated.stderr
        body = json.loads(rotated.stdout)
        assert body["name"] == "lab-feed"
        assert body["scope"] == "write"
        assert body["token"] != old
        await asyncio.sleep(0.05)
        assert (await client.get("/documents", headers=bearer(old))).status_code == 401
        new = await client.post("/documents", json=NOTE, headers=bearer(body["token"]))
        assert new.status_code == 201


async def test_clients_are_stored_as_hashes_and_listed_without_tokens(auth_settings: Settings) -> None:
    token = create_client(auth_settings, "billing", "read")
    assert token.startswith("mn_")
    assert len(token) >= 3 + 43  # 256 random bits, base64url
    rows = await fetch(auth_settings, "SELECT name, token_sha256 FROM api_clients")
    assert rows == [("billing", hashlib.sha256(token.encode()).digest())]
    assert run_cli(auth_settings, "clients", "revoke", "billing").returncode == 0
    create_client(auth_settings, "dashboard", "admin")
    listed = run_cli(auth_settings, "clients", "list")
    assert listed.returncode == 0
    clients = json.loads(listed.stdout)["clients"]
    assert [(c["name"], c["scope"], c["active"]) for c in clients] == [
        ("billing", "read", False),
        ("dashboard", "admin", True),
    ]
    assert token not in listed.stdout
    assert set(clients[0]) == {"name", "scope", "active", "created_at", "rotated_at", "revoked_at"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("create", "billing", "--scope", "read"),
            "error: client 'billing' already exists (rotate or revoke it)",
        ),
        (("create", "bootstrap", "--scope", "admin"), "error: 'bootstrap' is reserved for the audit trail"),
        (("create", "-x", "--scope", "read"), None),
        (("create", "bad name", "--scope", "read"), "error: invalid client name 'bad name'"),
        (("rotate", "nobody"), "error: no active client 'nobody'"),
    ],
)
async def test_client_commands_refuse_bad_input_with_one_line(
    auth_settings: Settings, args: tuple[str, ...], message: str | None
) -> None:
    create_client(auth_settings, "billing", "read")
    result = run_cli(auth_settings, "clients", *args)
    assert result.returncode != 0
    if message is not None:
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith(message)
    assert [row["name"] for row in await fetch(auth_settings, "SELECT name FROM api_clients")] == ["billing"]


async def test_client_keys_only_without_a_bootstrap_token(database_url: str, index_dir: Path) -> None:
    settings = make_settings(database_url, index_dir, api_auth="clients")
    token = create_client(settings, "only-client", "read")
    async with running_app(settings) as client:
        assert (await client.get("/documents", headers=bearer(token))).status_code == 200
        assert (await client.get("/documents")).status_code == 401


# ---- audit trail ---------------------------------------------------------------------------------


async def test_every_note_access_is_audited_with_client_status_and_request_id(
    auth_settings: Settings,
) -> None:
    writer = create_client(auth_settings, "ehr-sync", "write")
    async with running_app(auth_settings) as client:
        created = await client.post("/documents", json=NOTE, headers=bearer(writer, "req-create"))
        document_id = created.json()["id"]
        path = f"/documents/{document_id}"
        calls = [
            client.get(path, headers=bearer(writer, "req-read")),
            client.get("/documents", headers=bearer(writer, "req-list")),
            client.put(path, json={"content": NOTE_TEXT + " more"}, headers=bearer(writer, "req-update")),
            client.post(
                "/summarize_note", json={"document_id": document_id}, headers=bearer(writer, "req-sum")
            ),
            client.post(
                "/query_note",
                json={"document_id": document_id, "query": QUESTION},
                headers=bearer(writer, "req-query"),
            ),
            client.post("/summarize_note", json={"text": NOTE_TEXT}, headers=bearer(writer, "req-pasted")),
            client.delete(path, headers=bearer(writer, "req-delete")),
            client.get(path, headers=bearer(writer, "req-gone")),
            client.put(path, json={"title": "x"}, headers=bearer(BOOTSTRAP, "req-update-gone")),
        ]
        for call in calls:
            response = await call
            assert response.status_code < 500
        entries = await client.get("/audit", params={"document_id": document_id}, headers=bearer(BOOTSTRAP))
        assert entries.status_code == 200
    rows = entries.json()
    assert [(r["action"], r["client"], r["status"], r["request_id"]) for r in rows] == [
        ("document.create", "ehr-sync", 201, "req-create"),
        ("document.read", "ehr-sync", 200, "req-read"),
        ("document.update", "ehr-sync", 200, "req-update"),
        ("note.summarize", "ehr-sync", 200, "req-sum"),
        ("note.query", "ehr-sync", 200, "req-query"),
        ("document.delete", "ehr-sync", 204, "req-delete"),
        ("document.read", "ehr-sync", 404, "req-gone"),
        ("document.update", "bootstrap", 404, "req-update-gone"),
    ]
    everything = await fetch(auth_settings, "SELECT * FROM audit_log")
    assert [(r["action"], r["document_id"]) for r in everything if r["request_id"] == "req-list"] == [
        ("document.list", None)
    ]
    assert "req-pasted" not in {r["request_id"] for r in everything}
    dump = " ".join(str(tuple(row)) for row in everything)
    for secret in ("confidential-note-marker", "confidential-title-marker", "confidential-question", writer):
        assert secret not in dump

    cli = run_cli(auth_settings, "audit", "--document", str(document_id), "--client", "ehr-sync")
    assert cli.returncode == 0, cli.stderr
    lines = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [line["request_id"] for line in lines] == [
        r["request_id"] for r in rows if r["client"] == "ehr-sync"
    ]
    assert set(lines[0]) == {"at", "client", "action", "document_id", "status", "request_id"}
    future = run_cli(auth_settings, "audit", "--since", "2999-01-01T00:00:00")
    assert (future.returncode, future.stdout) == (0, "")
    assert run_cli(auth_settings, "audit", "--since", "yesterday").returncode == 2


async def test_a_write_and_its_audit_row_commit_together(auth_settings: Settings) -> None:
    async with running_app(auth_settings) as client:
        await fetch(
            auth_settings,
            "ALTER TABLE audit_log ADD CONSTRAINT no_creates "
            "CHECK (NOT (action = 'document.create' AND status = 201))",
        )
        response = await client.post("/documents", json=NOTE, headers=bearer(BOOTSTRAP))
        assert response.status_code == 500
    # The audit insert failed, so the note was not stored either; the failed attempt is audited.
    assert await fetch(auth_settings, "SELECT id FROM documents") == []
    rows = await fetch(auth_settings, "SELECT action, document_id, status FROM audit_log")
    assert [tuple(row) for row in rows] == [("document.create", None, 500)]


async def test_buffered_reads_are_written_on_clean_shutdown(database_url: str, index_dir: Path) -> None:
    settings = make_settings(
        database_url, index_dir, api_token=BOOTSTRAP, audit_flush_ms=60_000, audit_flush_rows=100_000
    )
    async with running_app(settings) as client:
        created = await client.post("/documents", json=NOTE, headers=bearer(BOOTSTRAP))
        for _ in range(25):
            await client.get(f"/documents/{created.json()['id']}", headers=bearer(BOOTSTRAP))
        before = await fetch(settings, "SELECT action FROM audit_log")
        assert [row["action"] for row in before] == ["document.create"]  # reads still in the buffer
    after = await fetch(settings, "SELECT action, count(*) FROM audit_log GROUP BY action ORDER BY action")
    assert [tuple(row) for row in after] == [("document.create", 1), ("document.read", 25)]


async def test_reads_are_flushed_when_the_buffer_fills(database_url: str, index_dir: Path) -> None:
    settings = make_settings(
        database_url, index_dir, api_token=BOOTSTRAP, audit_flush_ms=60_000, audit_flush_rows=5
    )
    async with running_app(settings) as client:
        for _ in range(5):
            await client.get("/documents", headers=bearer(BOOTSTRAP))
        for _ in range(50):
            if len(await fetch(settings, "SELECT 1 FROM audit_log")) == 5:
                break
            await asyncio.sleep(0.02)
        assert len(await fetch(settings, "SELECT 1 FROM audit_log")) == 5


async def test_rows_older_than_the_retention_are_purged_at_start(database_url: str, index_dir: Path) -> None:
    settings = make_settings(database_url, index_dir, api_token=BOOTSTRAP, audit_retention_days=30)
    async with running_app(settings):
        pass  # creates the tables
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """
            INSERT INTO audit_log (at, client, action, document_id, status, request_id) VALUES
            (now() - interval '31 days', 'old', 'document.read', 1, 200, 'r-old'),
            (now() - interval '29 days', 'recent', 'document.read', 1, 200, 'r-recent')
            """
        )
    finally:
        await connection.close()
    async with running_app(settings):
        rows = await fetch(settings, "SELECT request_id FROM audit_log")
    assert [row["request_id"] for row in rows] == ["r-recent"]


async def test_audit_query_parameters_are_validated(auth_settings: Settings) -> None:
    async with running_app(auth_settings) as client:
        for params in ({"limit": 0}, {"limit": 1001}, {"document_id": 0}, {"since": "yesterday"}):
            response = await client.get("/audit", params=params, headers=bearer(BOOTSTRAP))
            assert response.status_code == 422, params
        for _ in range(3):
            await client.get("/documents", headers=bearer(BOOTSTRAP))
        limited = await client.get(
            "/audit", params={"limit": 2, "client": "bootstrap"}, headers=bearer(BOOTSTRAP)
        )
        assert len(limited.json()) == 2


# ---- request ids ---------------------------------------------------------------------------------


async def test_request_id_is_echoed_when_valid_and_generated_otherwise(auth_settings: Settings) -> None:
    async with running_app(auth_settings) as client:
        echoed = await client.get("/health", headers={"X-Request-ID": "lb-4f2a.9_Z-1"})
        assert echoed.headers["x-request-id"] == "lb-4f2a.9_Z-1"
        generated = await client.get("/health")
        assert len(generated.headers["x-request-id"]) == 32
        assert generated.headers["x-request-id"] != (await client.get("/health")).headers["x-request-id"]
        for invalid in ("a" * 129, "with space", "new\\nline", "semi;colon", ""):
            response = await client.get("/health", headers={"X-Request-ID": invalid})
            assert response.headers["x-request-id"] != invalid
            assert len(response.headers["x-request-id"]) == 32
        assert (await client.get("/health", headers={"X-Request-ID": "b" * 128})).headers[
            "x-request-id"
        ] == "b" * 128
        # Also on refusals and errors.
        assert (await client.get("/documents", headers={"X-Request-ID": "r-401"})).headers[
            "x-request-id"
        ] == "r-401"
        missing = await client.get("/documents/999", headers=bearer(BOOTSTRAP, "r-404"))
        assert (missing.status_code, missing.headers["x-request-id"]) == (404, "r-404")


async def test_log_line_response_header_and_audit_row_share_the_generated_id(
    auth_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="medical_notes.access"):
        async with running_app(auth_settings) as client:
            created = await client.post("/documents", json=NOTE, headers=bearer(BOOTSTRAP))
            response = await client.get(f"/documents/{created.json()['id']}", headers=bearer(BOOTSTRAP))
    request_id = response.headers["x-request-id"]
    access = [r.getMessage() for r in caplog.records if r.name == "medical_notes.access"]
    assert [line for line in access if line.endswith(f" request_id={request_id}")] == [
        line for line in access if line.startswith("GET /documents/")
    ]
    rows = await fetch(auth_settings, "SELECT action FROM audit_log WHERE request_id = $1", request_id)
    assert [row["action"] for row in rows] == ["document.read"]


# ---- fail closed, configuration --------------------------------------------------------------------


def _serve(settings: Settings, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(settings, "serve", "--host", "127.0.0.1", "--port", str(free_port()), **env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "error: no API credential configured: set API_TOKEN"),
        ({"API_TOKEN": ""}, "error: invalid configuration"),
        ({"API_TOKEN": "  "}, "error: invalid configuration"),
        ({"API_TOKEN": "x", "API_AUTH": "disabled"}, "error: API_AUTH=disabled contradicts API_TOKEN"),
        ({"API_AUTH": "off"}, "error: invalid configuration"),
        ({"API_TOKEN_FILE": "/nonexistent/token"}, "error: API_TOKEN_FILE: cannot read /nonexistent/token"),
    ],
)
def test_serve_fails_closed_with_one_line(database_url: str, tmp_path: Path, env: dict, message: str) -> None:
    settings = make_settings(database_url, tmp_path, api_auth=None)
    result = _serve(settings, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)
    if "API_TOKEN" in env and not env["API_TOKEN"].strip():
        assert "API_TOKEN is set but empty" in lines[0]


def test_check_config_validates_without_starting(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, api_auth=None)
    token_file = tmp_path / "api_token"
    token_file.write_text("from-a-file\n")
    ok = run_cli(settings, "serve", "--check-config", API_TOKEN_FILE=str(token_file))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    refused = run_cli(settings, "serve", "--check-config")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: no API credential configured")


def test_create_app_refuses_to_start_without_a_credential(database_url: str, index_dir: Path) -> None:
    with pytest.raises(ConfigurationError, match="no API credential configured"):
        create_app(make_settings(database_url, index_dir, api_auth=None))
    with pytest.raises(ValueError, match="API_TOKEN is set but empty"):
        make_settings(database_url, index_dir, api_token="")


def test_secrets_are_read_from_files(database_url: str, index_dir: Path, tmp_path: Path) -> None:
    files = {}
    for name, value in {
        "api_token": "file-token-51",
        "llm_api_key": "sk-file-key",
        "embedding_api_key": "emb-file-key",
        "password": "p@ss/w:rd %1",
    }.items():
        files[name] = tmp_path / name
        files[name].write_text(value + "\n")
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        database_password_file=files["password"],
        api_token_file=files["api_token"],
        llm_api_key_file=files["llm_api_key"],
        embedding_api_key_file=files["embedding_api_key"],
    )
    assert settings.api_token.get_secret_value() == "file-token-51"
    assert settings.llm_api_key.get_secret_value() == "sk-file-key"
    assert settings.embedding_api_key.get_secret_value() == "emb-file-key"
    parsed = urlsplit(settings.database_url)
    assert unquote(parsed.password) == "p@ss/w:rd %1"
    assert (parsed.hostname, parsed.port, parsed.path) == (
        "127.0.0.1",
        urlsplit(database_url).port,
        urlsplit(database_url).path,
    )

    only_llm_key = Settings(_env_file=None, llm_api_key_file=files["llm_api_key"])
    assert only_llm_key.embedding_api_key.get_secret_value() == "sk-file-key"  # same default as the variable

    url_file = tmp_path / "database_url"
    url_file.write_text(database_url + "\n")
    env = cli_env(make_settings(database_url, index_dir), DATABASE_URL_FILE=str(url_file))
    del env["DATABASE_URL"]
    status = subprocess.run(
        [sys.executable, "-m", "medical_notes", "status"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["database_ok"] is True


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"api_token": "a", "api_token_file": "FILE"}, "set API_TOKEN or API_TOKEN_FILE, not both"),
        ({"llm_api_key_file": "MISSING"}, "LLM_API_KEY_FILE: cannot read"),
        ({"embedding_api_key_file": "EMPTY"}, "EMBEDDING_API_KEY_FILE: .* is empty"),
        ({"database_password_file": "FILE", "database_url_file": "FILE"}, "not both"),
        (
            {"database_url": "postgresql://u@h/db", "database_url_file": "FILE"},
            "DATABASE_URL or DATABASE_URL_FILE",
        ),
        (
            {"database_password_file": "FILE", "database_url": "postgresql://u:pw@h/db"},
            "already has a password",
        ),
        (
            {"database_password_file": "FILE", "database_url": "postgresql://h/db"},
            "needs DATABASE_URL with a user",
        ),
    ],
)
def test_bad_secret_files_are_configuration_errors(tmp_path: Path, settings: dict, message: str) -> None:
    (tmp_path / "FILE").write_text("value\n")
    (tmp_path / "EMPTY").write_text("\n")
    values = {key: tmp_path / value if key.endswith("_file") else value for key, value in settings.items()}
    with pytest.raises(ConfigurationError, match=message):
        Settings(_env_file=None, **values)


# ---- OpenAPI ---------------------------------------------------------------------------------------


async def test_openapi_declares_the_bearer_scheme_on_protected_operations(auth_settings: Settings) -> None:
    async with running_app(auth_settings) as client:
        schema = (await client.get("/openapi.json")).json()
        assert (await client.get("/docs")).status_code == 200
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["HTTPBearer"]["description"],
    }
    assert "security" not in schema["paths"]["/health"]["get"]
    for path, operations in schema["paths"].items():
        if path == "/health":
            continue
        for method, operation in operations.items():
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
    assert "/audit" in schema["paths"]


# ---- database outage -------------------------------------------------------------------------------


async def test_outage_gives_503_for_client_keys_and_keeps_buffered_reads(
    auth_settings: Settings, postgres_server
) -> None:
    token = create_client(auth_settings, "ward-display", "read")
    app = create_app(auth_settings)
    registry = app.state.services.clients
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        created = await client.post("/documents", json=NOTE, headers=bearer(BOOTSTRAP))
        path = f"/documents/{created.json()['id']}"
        assert (await client.get(path, headers=bearer(token))).status_code == 200
        postgres_server.stop()
        try:
            during = await client.get(path, headers=bearer(token, "r-outage-client"))
            assert during.status_code == 503, during.text
            assert during.headers["retry-after"]
            # The bootstrap token needs no database: authenticated, then 503 from the read itself.
            bootstrap = await client.get(path, headers=bearer(BOOTSTRAP, "r-outage-bootstrap"))
            assert bootstrap.status_code == 503
        finally:
            postgres_server.start()
        for _ in range(100):
            response = await client.get(path, headers=bearer(token))
            if response.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status_code == 200
        # The change listener reconnects by itself, and then clients are cached again.
        for _ in range(50):
            if registry.listening:
                break
            await asyncio.sleep(0.1)
        assert registry.listening
        assert run_cli(auth_settings, "clients", "revoke", "ward-display").returncode == 0
        await asyncio.sleep(0.05)
        assert (await client.get(path, headers=bearer(token))).status_code == 401
    rows = await fetch(
        auth_settings, "SELECT client, status FROM audit_log WHERE request_id = 'r-outage-bootstrap'"
    )
    assert [tuple(row) for row in rows] == [("bootstrap", 503)]
