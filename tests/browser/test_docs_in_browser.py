"""/docs and /redoc in headless Chromium: everything from our origin, and "Try it out" works with a token."""

from __future__ import annotations

import httpx
from conftest import ADMIN_TOKEN, Service, WatchedPage
from playwright.sync_api import expect


def operation_count(service: Service) -> int:
    schema = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    return sum(len(operations) for operations in schema["paths"].values())


def test_swagger_ui_renders_every_operation_from_our_origin(watched: WatchedPage, service: Service) -> None:
    page = watched.page
    response = page.goto("/docs")
    assert response is not None
    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    operations = page.locator(".opblock")
    expect(operations).to_have_count(operation_count(service))
    watched.screenshot("docs-swagger")
    assert watched.foreign_requests() == []
    assert watched.console_errors == []


def test_authorize_then_try_it_out_gets_a_document(watched: WatchedPage, service: Service) -> None:
    document_id = httpx.get(
        f"{service.url}/documents", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ).json()[0]
    page = watched.page
    page.goto("/docs")
    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.locator("#auth-bearer-value").fill(ADMIN_TOKEN)
    dialog.locator("button.modal-btn.authorize").click()
    dialog.locator("button.btn-done").click()

    operation = page.locator("#operations-default-get_document_documents__document_id__get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("input[placeholder='document_id']").fill(str(document_id))
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("200")
    watched.screenshot("docs-try-it-out")
    assert watched.foreign_requests() == []
    assert watched.console_errors == []


def test_redoc_renders_from_our_origin(watched: WatchedPage) -> None:
    page = watched.page
    response = page.goto("/redoc")
    assert response is not None
    assert response.status == 200
    expect(page.get_by_role("heading", name="medical-notes", exact=False).first).to_be_visible()
    expect(page.get_by_text("/documents/{document_id}").first).to_be_attached()
    watched.screenshot("docs-redoc")
    assert watched.foreign_requests() == []
    assert watched.console_errors == []
