"""The clinician console and the offline docs over HTTP: sessions, CSRF, scopes, headers, no CDN.

The same pages are driven in a real browser by tests/browser; these check the rules one by one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from conftest import make_settings, running_app

from medical_notes import clients

TOKEN = "console-test-token"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def console(database_url: str, index_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(database_url, index_dir, api_token=TOKEN)) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    form = await client.get("/ui/login")
    csrf = CSRF_FIELD.search(form.text)
    assert csrf is not None
    return await client.post("/ui/login", data={"csrf_token": csrf.group(1), "token": token})


async def csrf_of(client: httpx.AsyncClient, path: str = "/ui/notes") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF_FIELD.search(page.text)
    assert found is not None
    return found.group(1)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def session_cookie(response: httpx.Response) -> str:
    return next(value for value in response.headers.get_list("set-cookie") if value.startswith("mn_session="))


async def create_note(client: httpx.AsyncClient, title: str = "Console note", content: str = "S: ok") -> int:
    created = await client.post("/documents", json={"title": title, "content": content}, headers=AUTH)
    assert created.status_code == 201
    return created.json()["id"]


async def test_pages_need_a_session(console: httpx.AsyncClient) -> None:
    for path in ("/ui/notes", "/ui/guidelines", "/ui/notes/1", "/ui/notes/new"):
        response = await console.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login"


async def test_wrong_token_is_refused(console: httpx.AsyncClient) -> None:
    response = await sign_in(console, "not-the-token")
    assert response.status_code == 401
    assert "Sign-in failed" in response.text
    assert "mn_session" not in response.cookies
    assert (await console.get("/ui/notes")).status_code == 303


async def test_sign_in_sets_a_strict_httponly_cookie(console: httpx.AsyncClient) -> None:
    response = await sign_in(console)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/notes"
    cookie = session_cookie(response)
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/ui"} <= attributes
    # Plain HTTP here; behind TLS (scheme https) the cookie is Secure too.
    assert "secure" not in attributes
    assert (await console.get("/ui/notes")).status_code == 200


async def test_cookie_is_secure_over_https(database_url: str, index_dir: Path) -> None:
    settings = make_settings(database_url, index_dir, api_token=TOKEN)
    async with running_app(settings) as client:
        client.base_url = httpx.URL("https://testserver")
        response = await sign_in(client)
    cookie = session_cookie(response)
    assert "secure" in cookie.lower()


async def test_login_form_needs_its_csrf_cookie(console: httpx.AsyncClient) -> None:
    response = await console.post("/ui/login", data={"csrf_token": "forged", "token": TOKEN})
    assert response.status_code == 401


async def test_forms_without_the_csrf_token_change_nothing(console: httpx.AsyncClient) -> None:
    note_id = await create_note(console)
    await sign_in(console)
    response = await console.post(f"/ui/notes/{note_id}/delete", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert (await console.get(f"/documents/{note_id}", headers=AUTH)).status_code == 200
    response = await console.post(f"/ui/notes/{note_id}/delete", data={"csrf_token": await csrf_of(console)})
    assert response.status_code == 303
    assert (await console.get(f"/documents/{note_id}", headers=AUTH)).status_code == 404


async def test_note_page_shows_summary_and_answers(console: httpx.AsyncClient) -> None:
    content = (
        "S: 58-year-old with type 2 diabetes, fatigue.\nO: HbA1c 8.4%.\n"
        "A: Type 2 diabetes, uncontrolled.\nP: Start metformin 500 mg twice daily. Recheck HbA1c in 3 months."
    )
    note_id = await create_note(console, "Diabetes follow-up", content)
    await sign_in(console)
    page = await console.get(f"/ui/notes/{note_id}")
    assert page.status_code == 200
    assert '<h2 id="summary-heading">Summary</h2>' in page.text
    assert "metformin" in page.text
    answer = await console.post(
        f"/ui/notes/{note_id}/ask",
        data={"csrf_token": await csrf_of(console), "question": "What was started?"},
    )
    assert answer.status_code == 200
    assert 'id="answer"' in answer.text
    assert "metformin" in answer.text.split('id="answer"', 1)[1]


async def test_guideline_answer_links_its_citations(console: httpx.AsyncClient) -> None:
    await sign_in(console)
    response = await console.post(
        "/ui/guidelines",
        data={"csrf_token": await csrf_of(console), "question": "What blood pressure target for diabetes?"},
    )
    assert response.status_code == 200
    assert '<a href="#source-1">[1]</a>' in response.text
    assert 'id="source-1"' in response.text


async def test_note_text_never_lands_in_urls(console: httpx.AsyncClient) -> None:
    note_id = await create_note(console, "Jane Roe chest pain", "S: chest pain since Monday")
    await sign_in(console)
    pages = [
        await console.get("/ui/notes"),
        await console.get(f"/ui/notes/{note_id}"),
        await console.post("/ui/notes", data={"csrf_token": await csrf_of(console), "title": "Roe"}),
    ]
    assert "Jane Roe chest pain" in pages[2].text
    for page in pages:
        targets = re.findall(r'(?:href|action)="([^"]+)"', page.text)
        assert targets
        allowed = r"/(ui|static)/[a-z0-9/._-]*|#[a-z0-9-]+"
        assert all(re.fullmatch(allowed, target) for target in targets), targets


async def test_sign_out_ends_the_session(console: httpx.AsyncClient) -> None:
    await sign_in(console)
    session_id = console.cookies["mn_session"]
    response = await console.post("/ui/logout", data={"csrf_token": await csrf_of(console)})
    assert response.status_code == 303
    console.cookies.set("mn_session", session_id, path="/ui")  # a copied cookie is dead too
    assert (await console.get("/ui/notes")).status_code == 303


async def test_idle_sessions_expire(console: httpx.AsyncClient, database_url: str) -> None:
    await sign_in(console)
    assert (await console.get("/ui/notes")).status_code == 200
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("UPDATE ui_sessions SET last_seen_at = now() - interval '16 minutes'")
        stored = await connection.fetch("SELECT id_hash, token_hash FROM ui_sessions")
    finally:
        await connection.close()
    assert console.cookies["mn_session"] not in {row["id_hash"] for row in stored}
    assert TOKEN not in {row["token_hash"] for row in stored}
    assert (await console.get("/ui/notes")).status_code == 303


async def test_security_headers(console: httpx.AsyncClient) -> None:
    for path in ("/ui/login", "/static/ui/console.css"):
        response = await console.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert (await console.get("/ui/login")).headers["cache-control"] == "no-store"


async def test_bad_ids_and_input_are_pages_not_500s(console: httpx.AsyncClient) -> None:
    await sign_in(console)
    for path in ("/ui/notes/0", "/ui/notes/abc", "/ui/notes/" + "9" * 400, "/ui/notes/999999"):
        response = await console.get(path)
        assert response.status_code == 404, path
        assert "text/html" in response.headers["content-type"]
    response = await console.post("/ui/notes/new", data={"csrf_token": await csrf_of(console), "title": ""})
    assert response.status_code == 422
    assert "The note was not saved" in response.text


async def test_docs_are_public_and_served_locally(console: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        page = await console.get(path)
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets
        assert all(asset.startswith("/") and not asset.startswith("//") for asset in assets), assets
        for asset in assets:
            assert (await console.get(asset)).status_code == 200, asset
    schema = (await console.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    bearer = [
        name for name, scheme in schemes.items() if scheme == {**scheme, "type": "http", "scheme": "bearer"}
    ]
    assert len(bearer) == 1
    assert schema["paths"]["/documents/{document_id}"]["get"]["security"] == [{bearer[0]: []}]
    assert "security" not in schema["paths"]["/health"]["get"]
    # The token still guards everything that carries patient data.
    assert (await console.get("/documents")).status_code == 401


async def test_docs_can_be_switched_off(database_url: str, index_dir: Path) -> None:
    settings = make_settings(database_url, index_dir, api_token=TOKEN, docs_enabled=False)
    async with running_app(settings) as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/static/docs/swagger-ui.css"):
            assert (await client.get(path, headers=AUTH)).status_code == 404, path


async def add_client(database_url: str, name: str, scope: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        return await clients.create(connection, name, scope)
    finally:
        await connection.close()


async def test_a_read_client_sees_no_edit_controls_and_cannot_change_notes(
    console: httpx.AsyncClient, database_url: str
) -> None:
    note_id = await create_note(console)
    reader = await add_client(database_url, "ward-reader", "read")
    assert (await sign_in(console, reader)).status_code == 303
    page = await console.get(f"/ui/notes/{note_id}")
    assert page.status_code == 200
    assert "Signed in as <strong>ward-reader</strong> (read)" in page.text
    for control in ("/edit", "/delete", "/ui/notes/new"):
        assert control not in page.text
    assert "/ui/notes/new" not in (await console.get("/ui/notes")).text
    assert (await console.get("/ui/notes/new")).status_code == 403
    csrf = await csrf_of(console)
    assert (await console.post(f"/ui/notes/{note_id}/delete", data={"csrf_token": csrf})).status_code == 403
    edit = {"csrf_token": csrf, "title": "changed", "content": "x", "doc_type": "soap_note"}
    assert (await console.post(f"/ui/notes/{note_id}/edit", data=edit)).status_code == 403
    assert (await console.get(f"/documents/{note_id}", headers=AUTH)).json()["title"] == "Console note"


async def test_a_revoked_client_is_signed_out_at_once(console: httpx.AsyncClient, database_url: str) -> None:
    token = await add_client(database_url, "night-shift", "write")
    await sign_in(console, token)
    assert (await console.get("/ui/notes")).status_code == 200
    connection = await asyncpg.connect(database_url)
    try:
        await clients.revoke(connection, "night-shift")
    finally:
        await connection.close()
    await asyncio.sleep(0.05)  # the change notification reaches the worker's client cache
    assert (await console.get("/ui/notes")).status_code == 303


async def test_viewing_a_note_in_the_console_is_audited(
    console: httpx.AsyncClient, database_url: str
) -> None:
    secret_words = "Patient Zed Quux reports dizziness"
    note_id = await create_note(console, "Audit me", secret_words)
    token = await add_client(database_url, "clinic-desk", "read")
    await sign_in(console, token)
    assert (await console.get(f"/ui/notes/{note_id}")).status_code == 200
    audit = await console.get("/audit", params={"client": "clinic-desk"}, headers=AUTH)
    assert audit.status_code == 200
    actions = {(entry["action"], entry["document_id"]) for entry in audit.json()}
    assert actions == {("document.read", note_id)}
    assert all(entry["request_id"] for entry in audit.json())
    assert "Quux" not in audit.text


async def test_the_note_page_shows_coded_items_and_offers_the_fhir_bundle(console: httpx.AsyncClient) -> None:
    content = (
        "S: follow-up.\nA: Type 2 diabetes mellitus without complications.\n"
        "P: Continue metformin 500 mg PO BID. BP 138/86."
    )
    note_id = await create_note(console, "Coded note", content)
    await sign_in(console)
    page = await console.get(f"/ui/notes/{note_id}")
    assert page.status_code == 200
    coded = page.text.split('id="coded-heading"', 1)[1].split("</section>", 1)[0]
    assert "E11.9" in coded
    assert "6809" in coded  # metformin's RxCUI
    assert "138/86" in coded
    download = await console.get(f"/ui/notes/{note_id}/fhir")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="note-{note_id}-fhir.json"'
    bundle = download.json()
    assert bundle["resourceType"] == "Bundle"
    assert "Condition" in {entry["resource"]["resourceType"] for entry in bundle["entry"]}
