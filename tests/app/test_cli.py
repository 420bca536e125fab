"""`python -m medical_notes seed|index|status|serve` run as the image and Ansible run them: subprocesses."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest
from conftest import APP_DIR, REPO_ROOT, cli_env, fetch, make_settings, run_cli
from postgres_server import free_port

from medical_notes import db
from medical_notes.config import PACKAGE_DATA_DIR, Settings

SHIPPED_NOTES = sorted((PACKAGE_DATA_DIR / "soap_notes").glob("*.md"))
STATUS_KEYS = {
    "version",
    "database_ok",
    "database_error",
    "schema_version",
    "documents",
    "shipped_notes",
    "shipped_notes_present",
    "index_present",
    "index_valid",
    "index_reason",
    "index_chunks",
    "index_documents",
    "embedding",
}


@pytest.fixture
def fresh_settings(database_url: str, tmp_path: Path) -> Settings:
    """A database and an index directory that are both still empty."""
    return make_settings(database_url, tmp_path / "faiss_db")


def one_json_line(result: subprocess.CompletedProcess[str]) -> dict:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def test_shipped_notes_exist() -> None:
    assert len(SHIPPED_NOTES) >= 8


async def test_seed_is_idempotent(fresh_settings: Settings) -> None:
    first = run_cli(fresh_settings, "seed")
    assert first.returncode == 0, first.stderr
    count = len(SHIPPED_NOTES)
    assert one_json_line(first) == {"inserted": count, "updated": 0, "unchanged": 0}
    assert f"{count}/{count} notes" in first.stderr

    second = run_cli(fresh_settings, "seed")
    assert one_json_line(second) == {"inserted": 0, "updated": 0, "unchanged": count}

    rows = await fetch(fresh_settings, "SELECT source_key, title, doc_type, metadata, content FROM documents")
    assert len(rows) == count
    by_key = {row["source_key"]: row for row in rows}
    assert set(by_key) == {path.stem for path in SHIPPED_NOTES}
    diabetes = by_key["01-type-2-diabetes"]
    assert diabetes["doc_type"] == "soap_note"
    assert diabetes["title"]
    assert "---" not in diabetes["content"].splitlines()[0]
    assert "## Subjective" in diabetes["content"]
    assert "title" not in diabetes["metadata"]
    assert diabetes["metadata"]


async def test_seed_force_refreshes_shipped_notes_and_keeps_user_documents(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    notes_dir = tmp_path / "notes"
    shutil.copytree(PACKAGE_DATA_DIR / "soap_notes", notes_dir)
    settings = fresh_settings.model_copy(update={"soap_notes_dir": notes_dir})
    assert run_cli(settings, "seed").returncode == 0

    connection = await asyncpg.connect(settings.database_url)
    try:
        user_id = await connection.fetchval(
            "INSERT INTO documents (title, content, doc_type, metadata, content_hash) "
            "VALUES ('Mine', 'User text', 'soap_note', '{}', repeat('0', 64)) RETURNING id"
        )
        # A user edited a shipped note in the database, and the shipped file changed too.
        await connection.execute("UPDATE documents SET title = 'Edited' WHERE source_key = '02-hypertension'")
    finally:
        await connection.close()
    first_file = sorted(notes_dir.glob("*.md"))[0]
    first_file.write_text(first_file.read_text() + "\nAddendum: follow-up call arranged.\n")

    without_force = one_json_line(run_cli(settings, "seed"))
    assert without_force == {"inserted": 0, "updated": 0, "unchanged": len(SHIPPED_NOTES)}

    forced = run_cli(settings, "seed", "--force")
    assert forced.returncode == 0, forced.stderr
    assert one_json_line(forced) == {"inserted": 0, "updated": 2, "unchanged": len(SHIPPED_NOTES) - 2}

    rows = await fetch(settings, "SELECT id, title, content, source_key FROM documents ORDER BY id")
    user_rows = [row for row in rows if row["source_key"] is None]
    assert [(row["id"], row["title"], row["content"]) for row in user_rows] == [
        (user_id, "Mine", "User text")
    ]
    by_key = {row["source_key"]: row for row in rows}
    assert by_key["02-hypertension"]["title"] != "Edited"
    assert "Addendum" in by_key[first_file.stem]["content"]
    assert one_json_line(run_cli(settings, "seed", "--force"))["updated"] == 0


async def test_seed_restores_a_deleted_shipped_note(fresh_settings: Settings) -> None:
    run_cli(fresh_settings, "seed")
    connection = await asyncpg.connect(fresh_settings.database_url)
    try:
        await connection.execute("DELETE FROM documents WHERE source_key = '01-type-2-diabetes'")
    finally:
        await connection.close()
    assert one_json_line(run_cli(fresh_settings, "seed"))["inserted"] == 1


def test_seed_reports_a_broken_note_file(fresh_settings: Settings, tmp_path: Path) -> None:
    notes_dir = tmp_path / "broken_notes"
    notes_dir.mkdir()
    (notes_dir / "01-broken.md").write_text("no front matter here\n")
    result = run_cli(fresh_settings.model_copy(update={"soap_notes_dir": notes_dir}), "seed")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "01-broken.md" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_seed_without_database_fails_with_one_line(tmp_path: Path) -> None:
    settings = make_settings(f"postgresql://postgres:pw-not-shown@127.0.0.1:{free_port()}/x", tmp_path)
    result = run_cli(settings, "seed")
    assert result.returncode == 1
    assert result.stderr.startswith("error: database unavailable")
    assert "pw-not-shown" not in result.stderr


def test_index_builds_once_then_is_a_no_op(fresh_settings: Settings) -> None:
    first = run_cli(fresh_settings, "index")
    assert first.returncode == 0, first.stderr
    built = one_json_line(first)
    assert set(built) == {"built", "chunks", "documents", "seconds", "reason"}
    assert built["built"] is True
    assert built["documents"] >= 5
    assert built["chunks"] >= built["documents"]
    assert first.stderr.strip(), "progress goes to stderr"
    assert (fresh_settings.faiss_index_dir / "index.faiss").exists()

    again = one_json_line(run_cli(fresh_settings, "index"))
    assert again["built"] is False
    assert again["chunks"] == built["chunks"]
    forced = one_json_line(run_cli(fresh_settings, "index", "--force"))
    assert forced["built"] is True


def test_index_with_missing_key_fails_with_one_line(fresh_settings: Settings) -> None:
    result = run_cli(fresh_settings, "index", EMBEDDING_PROVIDER="openai")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: EMBEDDING_PROVIDER=openai needs EMBEDDING_API_KEY (or LLM_API_KEY); "
        "set it or use EMBEDDING_PROVIDER=local"
    ]


def test_status_before_and_after_init(fresh_settings: Settings) -> None:
    before = run_cli(fresh_settings, "status")
    assert before.returncode == 0, before.stderr
    state = one_json_line(before)
    assert set(state) == STATUS_KEYS
    assert state["database_ok"] is True
    assert state["schema_version"] is None
    assert state["documents"] == 0
    assert state["shipped_notes"] == len(SHIPPED_NOTES)
    assert state["shipped_notes_present"] == 0
    assert state["index_present"] is False
    assert state["index_valid"] is False
    assert state["index_reason"]
    assert state["embedding"] == {"provider": "local", "model": "hashed-ngrams-v1", "dim": 1024}

    run_cli(fresh_settings, "seed")
    run_cli(fresh_settings, "index")
    after = one_json_line(run_cli(fresh_settings, "status"))
    assert set(after) == STATUS_KEYS
    assert after["schema_version"] == db.SCHEMA_VERSION
    assert after["documents"] == len(SHIPPED_NOTES)
    assert after["shipped_notes_present"] == len(SHIPPED_NOTES)
    assert after["index_present"] is True
    assert after["index_valid"] is True
    assert after["index_reason"] is None
    assert after["index_documents"] >= 5
    assert after["index_chunks"] >= after["index_documents"]
    assert after["version"] == "0.1.0"


def test_status_without_database_exits_1_with_json(tmp_path: Path) -> None:
    settings = make_settings(f"postgresql://postgres:pw-not-shown@127.0.0.1:{free_port()}/x", tmp_path)
    result = run_cli(settings, "status")
    assert result.returncode == 1
    state = one_json_line(result)
    assert set(state) == STATUS_KEYS
    assert state["database_ok"] is False
    assert state["database_error"].startswith("database unavailable")
    assert "pw-not-shown" not in result.stdout + result.stderr


def test_invalid_setting_is_one_line(fresh_settings: Settings) -> None:
    result = run_cli(fresh_settings, "status", DB_POOL_MIN_SIZE="zero")
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid configuration")
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_without_key_fails_at_start_with_one_line(fresh_settings: Settings) -> None:
    result = run_cli(fresh_settings, "serve", "--port", str(free_port()), LLM_PROVIDER="openai")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: LLM_PROVIDER=openai needs LLM_API_KEY; set it or use LLM_PROVIDER=offline"
    ]


def test_serve_with_invalid_server_options_fails_with_one_line(fresh_settings: Settings) -> None:
    result = run_cli(fresh_settings, "serve", API_PORT="http", API_WORKERS="0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: invalid server configuration")
    assert "port" in lines[0]
    assert "workers" in lines[0]


def _raw_http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _serve(settings: Settings, port: int, log_file: IO[bytes], **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "medical_notes", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=cli_env(settings, **env),
        cwd=REPO_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )


def _wait_for_answer(
    server: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    headers: dict[str, str] | None = None,
    status: int | None = None,
) -> None:
    """Wait until `url` answers (with `status`, if given); fail with the log on exit or after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = httpx.get(url, headers=headers, timeout=2)
            if status is None or answer.status_code == status:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)


def test_serve_runs_uvicorn_logs_requests_and_stops_on_sigterm(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    run_cli(fresh_settings, "seed")
    run_cli(fresh_settings, "index")
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        server = _serve(fresh_settings, port, log_file, API_TOKEN="serve-token-123")
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_for_answer(server, f"{base_url}/health", log_path, status=200)
            headers = {"Authorization": "Bearer serve-token-123"}
            assert httpx.get(f"{base_url}/documents", headers=headers).status_code == 200
            # No trusted proxy configured: a forged X-Forwarded-For does not change the logged address.
            httpx.get(f"{base_url}/health", headers={"X-Forwarded-For": "203.0.113.66"})
            assert httpx.get(f"{base_url}/documents").status_code == 401
            created = httpx.post(
                f"{base_url}/documents",
                json={"title": "Served", "content": "served-content-marker-4410"},
                headers=headers,
            )
            assert created.status_code == 201
            # An honest Content-Length over the limit is refused before the body is read.
            response = _raw_http(
                port,
                b"POST /documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer serve-token-123\r\n"
                b"Content-Type: application/json\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n{",
            )
            assert response.startswith(b"HTTP/1.1 413 ")
        finally:
            server.send_signal(signal.SIGTERM)
            exit_code = server.wait(timeout=20)
    log = log_path.read_text()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says how it ended.
    assert exit_code in (0, -signal.SIGTERM), log
    assert "GET /health 200" in log
    assert "addr=127.0.0.1" in log
    assert "203.0.113.66" not in log
    assert "POST /documents 201" in log
    assert "POST /documents 413" in log
    assert "served-content-marker-4410" not in log
    assert "serve-token-123" not in log
    assert "Finished server process" in log or "Shutting down" in log


def test_serve_logs_the_client_address_a_trusted_proxy_forwards(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        server = _serve(
            fresh_settings, port, log_file, API_TOKEN="serve-token-123", API_FORWARDED_ALLOW_IPS="127.0.0.0/8"
        )
        try:
            forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
            # Without an index /health answers 503: any answer will do here.
            _wait_for_answer(server, f"http://127.0.0.1:{port}/health", log_path, headers=forwarded)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
    assert "GET /health " in (log := log_path.read_text())
    assert "addr=203.0.113.9" in log


def test_module_runs_from_the_app_directory(fresh_settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "medical_notes", "--help"],
        capture_output=True,
        text=True,
        cwd=APP_DIR,
        env=cli_env(fresh_settings),
        check=False,
    )
    assert result.returncode == 0
    for command in ("seed", "index", "status", "serve"):
        assert command in result.stdout
