"""PostgreSQL misbehaving under the API: killed under write load, a locked table, statements cancelled
or their connection terminated by an administrator, a backend that stops answering. Every request
gets its answer within the configured limits: 503 or 504 with Retry-After, never a 500 or a hang."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from conftest import make_settings, running_app
from postgres_server import PostgresServer
from served_api import served_api

from medical_notes.config import Settings
from medical_notes.logs import ExceptionAsOneLine

APPLICATION_NAME = "medical-notes-api"
# asyncio's unretrieved-future report, uvicorn's and our own record of an unhandled exception
UNRETRIEVED = (
    "exception was never retrieved",
    "Exception in ASGI application",
    "medical_notes.api: unexpected ",
)


@pytest.fixture
def durable_postgres() -> Iterator[PostgresServer]:
    """A server of its own, to be killed; commits are acknowledged only once written (as deployed),
    so a kill -9 of the server loses nothing that was acknowledged."""
    with PostgresServer(durable=True) as server:
        yield server


async def test_postgres_killed_under_write_load_loses_no_acknowledged_write(
    durable_postgres: PostgresServer, index_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(durable_postgres.create_database("crash"), index_dir)
    statuses: Counter[int] = Counter()
    acknowledged: dict[int, str] = {}
    missing_retry_after = 0
    with served_api(settings, tmp_path / "serve.log", workers=2) as api:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
            stop = asyncio.Event()

            async def write(writer: int) -> None:
                nonlocal missing_retry_after
                sequence = 0
                while not stop.is_set():
                    sequence += 1
                    title = f"writer {writer} note {sequence}"
                    response = await client.post("/documents", json={"title": title, "content": "BP 120/80."})
                    statuses[response.status_code] += 1
                    if response.status_code == 201:
                        acknowledged[response.json()["id"]] = title
                    elif response.status_code == 503:
                        missing_retry_after += "retry-after" not in response.headers
                        await asyncio.sleep(0.05)

            async def crash_and_restart() -> float:
                await asyncio.sleep(1.0)
                durable_postgres.crash()
                killed_at = time.monotonic()
                await asyncio.sleep(0.5)
                await asyncio.to_thread(durable_postgres.restart_after_crash)
                for _ in range(300):
                    if (await client.get("/health")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                recovered_after = time.monotonic() - killed_at
                writes_before = statuses[201]
                await asyncio.sleep(1.5)  # writes flow again through both workers
                assert statuses[201] > writes_before
                stop.set()
                return recovered_after

            recovered_after, *_ = await asyncio.gather(crash_and_restart(), *(write(n) for n in range(16)))

            assert set(statuses) <= {201, 503}, statuses
            assert statuses[503] > 0, "the crash was not noticed"
            assert missing_retry_after == 0
            assert recovered_after < 30
            readable = await asyncio.gather(*(client.get(f"/documents/{id_}") for id_ in acknowledged))
            titles = {response.json()["id"]: response.json()["title"] for response in readable}
            assert titles == acknowledged
        assert api.process.poll() is None, "the API restarted"
    log = api.log()
    for forbidden in UNRETRIEVED:
        assert forbidden not in log
    assert "Traceback" not in log
    assert not re.search(r"medical_notes.access: \S+ \S+ 500 ", log)
    assert "database unavailable" in log


# ---- timeouts and cancelled statements, in-process ----------------------------------------------


@asynccontextmanager
async def locked_documents(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another session holding ACCESS EXCLUSIVE on documents (as a long migration or VACUUM FULL)."""
    connection = await asyncpg.connect(database_url)
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


async def api_backends(database_url: str) -> dict[int, str]:
    """pid -> state of the API's pooled connections to this database."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT pid, wait_event_type FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
    finally:
        await connection.close()
    return {row["pid"]: row["wait_event_type"] or "" for row in rows}


async def backend_waiting_for_lock(database_url: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = [pid for pid, wait in (await api_backends(database_url)).items() if wait == "Lock"]
        if waiting:
            return waiting[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no API statement is waiting for the lock")


def assert_no_unretrieved_futures(caplog: pytest.LogCaptureFixture) -> None:
    gc.collect()
    for forbidden in UNRETRIEVED:
        assert forbidden not in caplog.text


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_locked_table_answers_504_within_lock_timeout_and_database_stays_up(
    database_url: str, index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        database_url, index_dir, db_lock_timeout=1.0, db_statement_timeout=3.0, db_acquire_timeout=2.0
    )
    async with running_app(settings) as client:
        document_id = (await client.post("/documents", json={"title": "t", "content": "c"})).json()["id"]
        backends_before = await api_backends(database_url)
        async with locked_documents(database_url):
            for method, path, body in [
                ("GET", f"/documents/{document_id}", None),
                ("GET", "/documents", None),
                ("POST", "/documents", {"title": "During lock", "content": "c"}),
                ("PUT", f"/documents/{document_id}", {"title": "changed"}),
                ("DELETE", f"/documents/{document_id}", None),
                ("POST", "/summarize_note", {"document_id": document_id}),
            ]:
                response, seconds = await timed(client.request(method, path, json=body))
                assert response.status_code == 504, (method, path, response.text)
                assert "DB_LOCK_TIMEOUT (1 s)" in response.json()["detail"]
                assert response.headers["retry-after"]
                assert 0.9 < seconds < 1.0 + 1.5, (method, path, seconds)
            health = await client.get("/health")
            assert health.status_code == 200
            assert health.json()["database"]["ok"] is True
        # The pooled connections were not thrown away as if the server had gone.
        assert set(backends_before) <= set(await api_backends(database_url))
        after = await client.get(f"/documents/{document_id}")
        assert after.status_code == 200
        assert after.json()["title"] == "t"
        metrics = (await client.get("/metrics")).text
        assert 'medical_notes_database_errors_total{kind="timeout"} 6.0' in metrics
        assert 'kind="unavailable"' not in metrics
    assert_no_unretrieved_futures(caplog)


async def test_statement_timeout_answers_504(database_url: str, index_dir: Path) -> None:
    settings = make_settings(database_url, index_dir, db_lock_timeout=30.0, db_statement_timeout=1.0)
    async with running_app(settings) as client, locked_documents(database_url):
        response, seconds = await timed(client.get("/documents"))
    assert response.status_code == 504
    assert response.json()["detail"] == "database timeout: statement exceeded DB_STATEMENT_TIMEOUT (1 s)"
    assert seconds < 2.5


async def test_full_pool_answers_503_busy_within_acquire_timeout(database_url: str, index_dir: Path) -> None:
    settings = make_settings(
        database_url,
        index_dir,
        db_pool_max_size=2,
        db_lock_timeout=1.5,
        db_statement_timeout=5.0,
        db_acquire_timeout=0.5,
    )
    async with running_app(settings) as client, locked_documents(database_url):
        results = await asyncio.gather(*(timed(client.get("/documents")) for _ in range(6)))
        health = await client.get("/health")
    statuses = Counter(response.status_code for response, _ in results)
    assert set(statuses) == {503, 504}, statuses
    for response, seconds in results:
        assert seconds < 0.5 + 1.5 + 1.5
        assert response.headers["retry-after"]
        if response.status_code == 503:
            assert response.json()["detail"].startswith("database busy: no connection free within")
    assert health.status_code == 200


async def test_cancelled_statement_is_504_and_not_database_down(
    database_url: str, index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, index_dir, db_lock_timeout=30.0, db_statement_timeout=30.0)
    async with running_app(settings) as client, locked_documents(database_url) as locker:
        request = asyncio.create_task(timed(client.get("/documents")))
        backend = await backend_waiting_for_lock(database_url)
        assert await locker.fetchval("SELECT pg_cancel_backend($1)", backend)
        response, seconds = await request
        assert response.status_code == 504
        assert response.json()["detail"] == "database timeout: statement cancelled by the server"
        assert seconds < 10
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["database"]["ok"] is True
        assert backend in await api_backends(database_url)
    assert_no_unretrieved_futures(caplog)


async def test_connection_terminated_mid_request_is_503_and_the_pool_reconnects(
    database_url: str, index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, index_dir, db_lock_timeout=30.0, db_statement_timeout=30.0)
    async with running_app(settings) as client:
        async with locked_documents(database_url) as locker:
            request = asyncio.create_task(client.get("/documents"))
            backend = await backend_waiting_for_lock(database_url)
            assert await locker.fetchval("SELECT pg_terminate_backend($1)", backend)
            response = await request
            assert response.status_code == 503
            assert response.json()["detail"].startswith("database unavailable")
            assert response.headers["retry-after"]
        assert (await client.get("/documents")).status_code == 200
        assert backend not in await api_backends(database_url)
    assert_no_unretrieved_futures(caplog)


async def test_backend_that_stops_answering_gives_504_within_the_statement_limit(
    database_url: str, index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if os.geteuid() != 0 and os.environ.get("USER") != "postgres":
        pytest.skip("needs to signal the server's processes")
    settings = make_settings(
        database_url, index_dir, db_pool_min_size=1, db_pool_max_size=1, db_statement_timeout=1.0
    )
    async with running_app(settings) as client:
        assert (await client.get("/documents")).status_code == 200
        (backend,) = await api_backends(database_url)
        os.kill(backend, signal.SIGSTOP)
        try:
            response, seconds = await timed(client.get("/documents"))
        finally:
            os.kill(backend, signal.SIGCONT)
        assert response.status_code == 504
        assert response.json()["detail"].startswith("database timeout")
        # the statement limit and the client's margin (2 s) over it
        assert seconds < 1.0 + 2.0 + 1.0
        assert (await client.get("/documents")).status_code == 200
    assert_no_unretrieved_futures(caplog)


def test_timeouts_are_settings_with_defaults() -> None:
    settings = Settings(_env_file=None)
    limits = (settings.db_acquire_timeout, settings.db_statement_timeout, settings.db_lock_timeout)
    assert limits == (5, 10, 5)


def test_asyncpg_reconnect_tracebacks_become_one_line() -> None:
    record = logging.LogRecord("asyncpg.pool", logging.WARNING, __file__, 1, "retrying", None, None)
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        record.exc_info = sys.exc_info()
    assert ExceptionAsOneLine().filter(record)
    assert record.getMessage() == "retrying (ConnectionRefusedError: [Errno 111] Connection refused)"
    assert record.exc_info is None
