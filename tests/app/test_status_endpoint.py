"""GET /status: what `python -m medical_notes status` prints, for admin clients only; 503 (not 500)
while the database is down, and 200 again once it is back. The deployment reads it over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_settings, run_cli, running_app
from postgres_server import PostgresServer
from test_cli import STATUS_KEYS
from test_security import BOOTSTRAP, NOTE, bearer, create_client


async def test_status_needs_admin_and_matches_the_status_command(database_url: str, index_dir: Path) -> None:
    settings = make_settings(database_url, index_dir, api_token=BOOTSTRAP)
    reader = create_client(settings, "status-reader", "read")
    writer = create_client(settings, "status-writer", "write")
    async with running_app(settings) as client:
        assert (await client.get("/status")).status_code == 401
        for token in (reader, writer):
            refused = await client.get("/status", headers=bearer(token))
            assert refused.status_code == 403
            assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]

        before = await client.get("/status", headers=bearer(BOOTSTRAP))
        assert before.status_code == 200
        assert set(before.json()) == STATUS_KEYS
        assert before.json()["database_ok"] is True
        assert before.json()["index_present"] is True
        assert before.json()["index_valid"] is True

        assert (await client.post("/documents", json=NOTE, headers=bearer(writer))).status_code == 201
        after = (await client.get("/status", headers=bearer(BOOTSTRAP))).json()
        assert after["documents"] == before.json()["documents"] + 1

        command = run_cli(settings, "status")
        assert command.returncode == 0, command.stderr
        assert json.loads(command.stdout.strip().splitlines()[-1]) == after


async def test_status_is_503_while_the_database_is_down_and_200_after(index_dir: Path) -> None:
    with PostgresServer() as server:
        settings = make_settings(server.create_database("status"), index_dir, api_token=BOOTSTRAP)
        async with running_app(settings) as client:
            assert (await client.get("/status", headers=bearer(BOOTSTRAP))).status_code == 200

            server.stop()
            down = await client.get("/status", headers=bearer(BOOTSTRAP))
            assert down.status_code == 503
            assert set(down.json()) == STATUS_KEYS
            assert down.json()["database_ok"] is False
            assert down.json()["database_error"].startswith("database unavailable")
            assert down.json()["index_valid"] is True

            server.start()
            back = await client.get("/status", headers=bearer(BOOTSTRAP))
            assert back.status_code == 200
            assert back.json()["database_ok"] is True
