"""GET /metrics (Prometheus text format, token required) and /health's maintenance section from the
backup job's status file; the numbers of several uvicorn workers add up."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
from conftest import make_settings, running_app
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from served_api import served_api
from test_api_database_faults import backend_waiting_for_lock, locked_documents

from medical_notes.config import Settings

TOKEN = "metrics-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) -> value, parsed by prometheus-client's own parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict:
    response = await client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


async def test_metrics_need_the_token_and_move_with_requests(database_url: str, index_dir: Path) -> None:
    settings = make_settings(database_url, index_dir, api_token=TOKEN)
    async with running_app(settings) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        created = await client.post("/documents", json={"title": "t", "content": "BP 150/95."}, headers=AUTH)
        document_id = created.json()["id"]
        before = await scrape(client)

        for _ in range(3):
            assert (await client.get(f"/documents/{document_id}", headers=AUTH)).status_code == 200
        assert (await client.get("/documents/999999", headers=AUTH)).status_code == 404
        assert (await client.put(f"/documents/{document_id}", json={"title": "u"}, headers=AUTH)).is_success
        assert (await client.get(f"/documents/{document_id}")).status_code == 401
        assert (await client.get("/no/such/path", headers=AUTH)).status_code == 404
        for _ in range(2):
            await client.post("/summarize_note", json={"document_id": document_id}, headers=AUTH)
        response = await client.get("/metrics", headers=AUTH)
        after = samples(response.text)

    requests = "medical_notes_http_request_duration_seconds_count"
    route = "/documents/{document_id}"

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(requests, method="GET", route=route, status="200") == 3
    assert moved(requests, method="GET", route=route, status="404") == 1
    assert moved(requests, method="PUT", route=route, status="200") == 1
    assert moved(requests, method="GET", route=route, status="401") == 1
    assert moved(requests, method="GET", route="unmatched", status="404") == 1
    bucket = "medical_notes_http_request_duration_seconds_bucket"
    assert moved(bucket, method="GET", route=route, status="200", le="+Inf") == 3
    assert moved(bucket, method="GET", route=route, status="200", le="30.0") == 3
    assert value(
        after, "medical_notes_http_request_duration_seconds_sum", method="GET", route=route, status="200"
    )
    # Route labels are templates: no raw path with an id, no unknown path.
    assert f"/documents/{document_id}" not in response.text
    assert "/no/such/path" not in response.text
    assert moved("medical_notes_llm_cache_misses_total", operation="summarize") == 1
    assert moved("medical_notes_llm_cache_hits_total", operation="summarize", layer="memory") == 1
    assert value(after, "medical_notes_db_pool_connections_open") >= 1
    assert value(after, "medical_notes_db_pool_connections_in_use") == 0
    assert 0 <= value(after, "medical_notes_index_age_seconds") < 24 * 3600
    # No backup status file configured: no backup metric rather than a misleading 0.
    assert "medical_notes_last_backup_success_timestamp_seconds" not in response.text


async def test_pool_in_use_counts_a_statement_in_progress(app_settings: Settings) -> None:
    settings = app_settings.model_copy(update={"db_lock_timeout": 30.0, "db_statement_timeout": 30.0})
    async with running_app(settings) as client, locked_documents(settings.database_url):
        waiting = asyncio.create_task(client.get("/documents"))
        await backend_waiting_for_lock(settings.database_url)
        busy = samples((await client.get("/metrics")).text)
        assert value(busy, "medical_notes_db_pool_connections_in_use") == 1
    assert (await waiting).status_code == 200


def write_status(path: Path, content: object) -> None:
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)
    # Same-second rewrites must still be noticed: move the mtime on explicitly.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def test_health_and_metrics_report_the_backup_status_file(
    database_url: str, index_dir: Path, tmp_path: Path
) -> None:
    status_file = tmp_path / "backup-status.json"
    settings = make_settings(database_url, index_dir, backup_status_file=status_file)
    async with running_app(settings) as client:
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["maintenance"] == {
            "last_backup_at": None,
            "last_backup_attempt_at": None,
            "last_backup_error": None,
        }
        assert value(await scrape(client), "medical_notes_last_backup_success_timestamp_seconds") == 0

        write_status(
            status_file,
            {
                "last_success_at": "2026-11-29T03:00:02Z",
                "last_success_file": "/opt/medical-notes/backups/medical_notes-20261129T030000Z.dump",
                "last_attempt_at": "2026-11-29T03:00:00Z",
                "last_error": None,
            },
        )
        health = await client.get("/health")
        assert health.json()["maintenance"] == {
            "last_backup_at": "2026-11-29T03:00:02Z",
            "last_backup_attempt_at": "2026-11-29T03:00:00Z",
            "last_backup_error": None,
        }
        metrics = await scrape(client)
        assert value(metrics, "medical_notes_last_backup_success_timestamp_seconds") == 1795921202
        assert value(metrics, "medical_notes_last_backup_failed") == 0

        write_status(
            status_file,
            {
                "last_success_at": "2026-11-29T03:00:02Z",
                "last_attempt_at": "2026-11-30T03:00:00Z",
                "last_error": "pg_dump: error: connection\nrefused",
            },
        )
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["maintenance"]["last_backup_error"] == "pg_dump: error: connection refused"
        assert value(await scrape(client), "medical_notes_last_backup_failed") == 1

        write_status(status_file, "{not json")
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["maintenance"]["last_backup_error"] == "backup status file is not valid JSON"

        status_file.unlink()
        assert (await client.get("/health")).json()["maintenance"]["last_backup_at"] is None


def requests_served_by_each_worker(metrics_dir: Path) -> list[float]:
    """GET /documents 200s counted in each worker's own file (one file per process id)."""
    served = []
    for path in metrics_dir.glob("histogram_*.db"):
        parsed = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for metric in MultiProcessCollector.merge([str(path)])
            for sample in metric.samples
        }
        served.append(
            value(
                parsed,
                "medical_notes_http_request_duration_seconds_count",
                method="GET",
                route="/documents",
                status="200",
            )
        )
    return served


def test_metrics_of_all_workers_add_up(app_settings: Settings, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "histogram_1.db").write_bytes(b"left over from an earlier run")
    with served_api(
        app_settings, tmp_path / "serve.log", workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    ) as api:
        assert not (metrics_dir / "histogram_1.db").exists()
        # A new connection per request, so that the kernel hands them to both workers.
        with httpx.Client(base_url=api.base_url, headers={"Connection": "close"}) as client:
            made = 0
            while made < 40 or sum(served > 0 for served in requests_served_by_each_worker(metrics_dir)) < 2:
                assert client.get("/documents").status_code == 200
                made += 1
                assert made < 1000, "one worker never got a request"
            totals = set()
            for _ in range(6):
                parsed = samples(client.get("/metrics").text)
                totals.add(
                    value(
                        parsed,
                        "medical_notes_http_request_duration_seconds_count",
                        method="GET",
                        route="/documents",
                        status="200",
                    )
                )
            open_connections = value(parsed, "medical_notes_db_pool_connections_open")
    assert totals == {float(made)}, (
        "every scrape, whichever worker answers it, counts every worker's requests"
    )
    assert open_connections >= 2, "both workers' pools are summed"
