"""The LLM cache never outlives its note, its configuration or LLM_CACHE_MAX_AGE: deleting or editing a
document removes its results from PostgreSQL and from the memory of every worker (two app instances
on one database stand for two uvicorn workers), a changed model, base URL or prompt template never
hits an old entry, and expired entries are neither served nor kept."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
from conftest import make_settings
from prometheus_client.parser import text_string_to_metric_families

from fakes import FakeLLMServer
from medical_notes.api import create_app
from medical_notes.api.services import Services
from medical_notes.cache import LLMCache, config_fingerprint, input_hash
from medical_notes.config import Settings
from medical_notes.db import Database
from medical_notes.providers.prompting import PROMPTS_DIR

NOTE = (
    "## Subjective\nPatient Quillon Marrable reports palpitations.\n## Objective\nHR 112, irregular.\n"
    "## Assessment\nAtrial fibrillation, new onset.\n## Plan\nStart apixaban 5 mg twice daily."
)
EDITED_NOTE = NOTE.replace("apixaban 5 mg", "apixaban 2.5 mg")


class _NoMetrics:
    """For LLMCache used on its own, outside an app."""

    def cache_hit(self, operation: str, layer: str) -> None:
        pass

    def cache_miss(self, operation: str) -> None:
        pass

    def cache_invalidated(self) -> None:
        pass


@asynccontextmanager
async def worker(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """One app instance: what each uvicorn worker runs. Returns once it listens for evictions."""
    app = create_app(settings)
    services: Services = app.state.services
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if services.cache.listening:
                break
            await asyncio.sleep(0.05)
        assert services.cache.listening
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, services


async def summarize(client: httpx.AsyncClient, **body: object) -> dict:
    response = await client.post("/summarize_note", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def query(client: httpx.AsyncClient, **body: object) -> dict:
    response = await client.post("/query_note", json={"query": "Which anticoagulant dose?", **body})
    assert response.status_code == 200, response.text
    return response.json()


async def cached_rows(database_url: str, note: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(
            "SELECT count(*) FROM llm_cache WHERE note_hash = $1", hashlib.sha256(note.encode()).hexdigest()
        )
    finally:
        await connection.close()


async def invalidations(client: httpx.AsyncClient) -> float:
    families = text_string_to_metric_families((await client.get("/metrics")).text)
    return next(
        sample.value
        for family in families
        if family.name == "medical_notes_llm_cache_invalidations"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


async def wait_for_invalidation(client: httpx.AsyncClient, before: float) -> None:
    deadline = time.monotonic() + 5
    while await invalidations(client) <= before:
        assert time.monotonic() < deadline, "the worker was not told about the deleted note"
        await asyncio.sleep(0.05)


async def test_deleted_note_leaves_no_cached_result_in_the_database_or_any_worker(
    app_settings: Settings,
) -> None:
    async with worker(app_settings) as (first, _), worker(app_settings) as (second, _):
        document_id = (await first.post("/documents", json={"title": "AF", "content": NOTE})).json()["id"]
        assert (await summarize(first, document_id=document_id))["cached"] is False
        assert (await summarize(first, document_id=document_id))["cached"] is True
        assert (await summarize(second, document_id=document_id))["cached"] is True  # from PostgreSQL
        assert (await query(second, document_id=document_id))["cached"] is False
        assert (await query(first, document_id=document_id))["cached"] is True
        assert await cached_rows(app_settings.database_url, NOTE) == 2
        before = await invalidations(second)

        assert (await first.delete(f"/documents/{document_id}")).status_code == 204

        assert await cached_rows(app_settings.database_url, NOTE) == 0
        await wait_for_invalidation(second, before)
        await wait_for_invalidation(first, before)
        assert (await first.post("/summarize_note", json={"document_id": document_id})).status_code == 404
        # Both workers had both results in memory; the same text pasted now finds nothing.
        assert (await summarize(second, text=NOTE))["cached"] is False
        assert (await query(first, text=NOTE))["cached"] is False


async def test_edited_note_loses_the_results_of_its_old_text(app_settings: Settings) -> None:
    async with worker(app_settings) as (first, _), worker(app_settings) as (second, _):
        document_id = (await first.post("/documents", json={"title": "AF", "content": NOTE})).json()["id"]
        old_summary = await summarize(first, document_id=document_id)
        assert (await summarize(second, document_id=document_id))["cached"] is True
        renamed = await first.put(f"/documents/{document_id}", json={"title": "AF follow-up"})
        assert renamed.status_code == 200
        assert (await summarize(second, document_id=document_id))["cached"] is True  # same text: kept
        before = await invalidations(second)

        edited = await first.put(f"/documents/{document_id}", json={"content": EDITED_NOTE})
        assert edited.status_code == 200

        assert await cached_rows(app_settings.database_url, NOTE) == 0
        await wait_for_invalidation(second, before)
        fresh = await summarize(second, document_id=document_id)
        assert fresh["cached"] is False
        assert "2.5 mg" in fresh["summary"]
        assert fresh["summary"] != old_summary["summary"]
        assert (await summarize(first, text=NOTE))["cached"] is False


async def test_result_of_a_note_deleted_meanwhile_is_not_stored(app_settings: Settings) -> None:
    """A summary computed while its document is being deleted: the store waits for the delete and
    then stores nothing, so nothing survives the delete."""
    database = Database(app_settings)
    cache = LLMCache(database, app_settings, _NoMetrics())
    connection = await asyncpg.connect(app_settings.database_url)
    try:
        await database.start()
        document_id = await connection.fetchval(
            "INSERT INTO documents (title, content, doc_type, content_hash) "
            "VALUES ('AF', $1, 'soap_note', $2) RETURNING id",
            NOTE,
            hashlib.sha256(NOTE.encode()).hexdigest(),
        )
        note_hash = hashlib.sha256(NOTE.encode()).hexdigest()
        deleting = connection.transaction()
        await deleting.start()
        await connection.execute("DELETE FROM documents WHERE id = $1", document_id)
        storing = asyncio.create_task(
            cache.put(
                "summarize", input_hash(NOTE), {"summary": "s"}, note_hash=note_hash, from_document=True
            )
        )
        await asyncio.sleep(0.3)
        assert not storing.done(), "the store did not wait for the delete in progress"
        await deleting.commit()
        await storing
        assert await cached_rows(app_settings.database_url, NOTE) == 0
        # Pasted text has no document to wait for: stored.
        await cache.put(
            "summarize", input_hash(NOTE), {"summary": "s"}, note_hash=note_hash, from_document=False
        )
        assert await cached_rows(app_settings.database_url, NOTE) == 1
    finally:
        await connection.close()
        await database.close()


async def test_changed_model_or_base_url_never_returns_an_old_answer(
    database_url: str, index_dir: Path
) -> None:
    base = make_settings(database_url, index_dir)
    async with worker(base) as (client, _):
        assert (await summarize(client, text=NOTE))["cached"] is False
        assert (await summarize(client, text=NOTE))["cached"] is True
    for changed in (
        make_settings(database_url, index_dir, llm_model="offline-extractive-v1-tuned"),
        make_settings(database_url, index_dir, llm_base_url="http://elsewhere.invalid/v1"),
    ):
        async with worker(changed) as (client, _):
            assert (await summarize(client, text=NOTE))["cached"] is False


async def test_remote_provider_at_another_base_url_is_asked_again(database_url: str, index_dir: Path) -> None:
    with (
        FakeLLMServer(reply="Answer from server one.") as one,
        FakeLLMServer(reply="Answer from two.") as two,
    ):
        for server, expected in ((one, "Answer from server one."), (two, "Answer from two.")):
            settings = make_settings(
                database_url,
                index_dir,
                llm_provider="openai",
                llm_api_key="sk-test-key",
                llm_model="test-model",
                llm_base_url=server.openai_base_url,
            )
            async with worker(settings) as (client, _):
                first = await summarize(client, text=NOTE)
                assert (first["summary"], first["cached"]) == (expected, False)
                assert (await summarize(client, text=NOTE))["cached"] is True
            assert len(server.requests_to("/v1/chat/completions")) == 1


async def test_changed_prompt_template_never_returns_an_old_answer(
    app_settings: Settings, tmp_path: Path
) -> None:
    changed_prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, changed_prompts)
    summarize_template = changed_prompts / "summarize.j2"
    summarize_template.write_text(summarize_template.read_text() + "\nAnswer in one sentence.\n")
    assert config_fingerprint(app_settings, changed_prompts) != config_fingerprint(app_settings)

    database = Database(app_settings)
    try:
        await database.start()
        shipped = LLMCache(database, app_settings, _NoMetrics())
        edited = LLMCache(database, app_settings, _NoMetrics(), prompts_dir=changed_prompts)
        key = input_hash(NOTE)
        await shipped.put("summarize", key, {"summary": "old"}, note_hash=None, from_document=False)
        assert await shipped.get("summarize", key) == {"summary": "old"}
        assert await edited.get("summarize", key) is None
    finally:
        await database.close()


async def test_expired_results_are_neither_served_nor_kept(database_url: str, index_dir: Path) -> None:
    settings = make_settings(database_url, index_dir, llm_cache_max_age=timedelta(seconds=2))
    async with worker(settings) as (client, _):
        assert (await summarize(client, text=NOTE))["cached"] is False
        assert (await summarize(client, text=NOTE))["cached"] is True
        await asyncio.sleep(2.2)
        # Neither the worker's memory nor PostgreSQL serves it, and the periodic purge removes rows.
        assert (await summarize(client, text=EDITED_NOTE))["cached"] is False
        assert (await summarize(client, text=NOTE))["cached"] is False
        # A structured extraction of pasted text is a derived copy too: same age bound. One of a
        # stored document stays (it goes with its document).
        assert (await client.post("/extract_structured", json={"text": NOTE})).status_code == 200
        created = await client.post("/documents", json={"title": "Kept", "content": EDITED_NOTE})
        document_id = created.json()["id"]
        assert (
            await client.post("/extract_structured", json={"document_id": document_id})
        ).status_code == 200
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute("UPDATE llm_cache SET created_at = now() - interval '1 hour'")
            await connection.execute("UPDATE extractions SET created_at = now() - interval '1 hour'")
            deadline = time.monotonic() + 10
            while await connection.fetchval(
                "SELECT (SELECT count(*) FROM llm_cache)"
                " + (SELECT count(*) FROM extractions WHERE document_id IS NULL)"
            ):
                assert time.monotonic() < deadline, "expired rows were kept"
                await asyncio.sleep(0.2)
            assert await connection.fetchval("SELECT document_id FROM extractions") == document_id
        finally:
            await connection.close()


async def test_default_age_bound_is_30_days_and_enforced(app_settings: Settings) -> None:
    assert app_settings.llm_cache_max_age == timedelta(days=30)
    async with worker(app_settings) as (client, _):
        assert (await summarize(client, text=NOTE))["cached"] is False
    connection = await asyncpg.connect(app_settings.database_url)
    try:
        await connection.execute("UPDATE llm_cache SET created_at = now() - interval '30 days 1 minute'")
    finally:
        await connection.close()
    async with worker(app_settings) as (client, _):
        assert (await summarize(client, text=NOTE))["cached"] is False
