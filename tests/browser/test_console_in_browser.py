"""The clinician console in headless Chromium, used as a clinician would: plain forms and links, no JS."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from conftest import ADMIN_TOKEN, Service, WatchedPage
from playwright.sync_api import Page, expect


def sign_in(page: Page, token: str) -> None:
    page.goto("/ui/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_a_wrong_token_is_refused(watched: WatchedPage) -> None:
    sign_in(watched.page, "not-a-token")
    expect(watched.page.get_by_role("alert")).to_contain_text("Sign-in failed")
    expect(watched.page).to_have_url(re.compile(r"/ui/login$"))
    watched.screenshot("console-sign-in-refused")


def test_a_clinician_reads_a_note_asks_and_follows_a_citation(watched: WatchedPage) -> None:
    page = watched.page
    sign_in(page, ADMIN_TOKEN)
    expect(page.get_by_role("heading", name="Notes", level=1)).to_be_visible()
    response = page.request.get("/ui/notes")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    watched.screenshot("console-notes")

    page.get_by_label("Search by title").fill("diabetes")
    page.get_by_role("button", name="Search").click()
    notes = page.get_by_role("row")
    expect(notes).to_have_count(2)  # the header row and the one diabetes note
    page.get_by_role("link", name=re.compile("diabetes", re.IGNORECASE)).click()
    expect(page.get_by_role("heading", name="Summary", level=2)).to_be_visible()
    expect(page.locator("#summary-heading + .prose")).to_contain_text(re.compile(r"\w{20,}|\w+ \w+ \w+"))
    assert re.fullmatch(r".*/ui/notes/\d+", page.url)
    expect(page.get_by_role("heading", name="Coded items", level=2)).to_be_visible()
    expect(page.get_by_role("table").filter(has_text="ICD-10-CM")).to_contain_text("E11")
    watched.screenshot("console-note")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the FHIR R4 bundle (JSON)").click()
    download = download_info.value
    assert re.fullmatch(r"note-\d+-fhir\.json", download.suggested_filename)
    bundle = json.loads(Path(download.path()).read_text())
    assert bundle["resourceType"] == "Bundle"

    page.get_by_label("Question").fill("What is the plan for metformin?")
    page.get_by_role("button", name="Ask").click()
    expect(page.get_by_role("heading", name="Answer")).to_be_visible()
    expect(page.locator("#answer")).to_contain_text(re.compile("metformin", re.IGNORECASE))
    watched.screenshot("console-note-answer")

    page.get_by_role("link", name="Guidelines").click()
    page.get_by_label("Question").fill("What HbA1c target suits most adults with type 2 diabetes?")
    page.get_by_role("button", name="Ask").click()
    citation = page.locator("#answer a[href^='#source-']").first
    expect(citation).to_be_visible()
    citation.click()
    expect(page).to_have_url(re.compile(r"#source-\d+$"))
    target = page.url.rsplit("#", 1)[1]
    expect(page.locator(f"#{target} blockquote")).to_be_visible()
    watched.screenshot("console-guideline-answer")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.goto("/ui/notes")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert watched.foreign_requests() == []
    assert watched.console_errors == []


def test_headings_are_in_order_and_every_field_has_a_label(watched: WatchedPage) -> None:
    page = watched.page
    sign_in(page, ADMIN_TOKEN)
    page.get_by_role("link", name=re.compile("diabetes", re.IGNORECASE)).first.click()
    for path in ("/ui/login", "/ui/notes", page.url, "/ui/guidelines", "/ui/notes/new"):
        page.goto(path)
        tags = page.locator("h1, h2, h3").evaluate_all("elements => elements.map(e => e.tagName)")
        levels = [int(tag[1]) for tag in tags]
        assert levels[0] == 1
        assert all(later - earlier <= 1 for earlier, later in itertools.pairwise(levels)), (path, levels)
        unlabelled = page.locator("input:not([type=hidden]), textarea").evaluate_all(
            "els => els.filter(e => !(e.labels && e.labels.length)).map(e => e.name)"
        )
        assert unlabelled == [], (path, unlabelled)
    assert watched.console_errors == []


def test_a_read_client_sees_no_edit_controls(watched: WatchedPage, service: Service) -> None:
    reader = json.loads(service.cli("clients", "create", "browser-reader", "--scope", "read").stdout)
    page = watched.page
    sign_in(page, reader["token"])
    expect(page.get_by_text("Signed in as browser-reader (read)")).to_be_visible()
    expect(page.get_by_role("link", name="New note")).to_have_count(0)
    page.get_by_role("link", name=re.compile("diabetes", re.IGNORECASE)).first.click()
    expect(page.get_by_role("heading", name="Summary")).to_be_visible()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    watched.screenshot("console-read-only")
    response = page.goto("/ui/notes/new")
    assert response is not None
    assert response.status == 403
    assert watched.foreign_requests() == []


def test_an_allergen_order_is_flagged_and_a_declined_drug_is_not_taken(watched: WatchedPage) -> None:
    page = watched.page
    sign_in(page, ADMIN_TOKEN)
    page.goto("/ui/notes/new")
    page.get_by_label("Title").fill("Sinusitis visit")
    page.get_by_label("Content").fill(
        "Clinic visit 2026-03-02. 58 y/o man.\n"
        "Allergies: penicillin (hives).\n"
        "Meds: metformin 500 mg PO BID.\n"
        "A: Type 2 diabetes. Sinusitis.\n"
        "P: Start amoxicillin 500 mg PO TID x 10 days. Statin discussed, declined atorvastatin.\n"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert").filter(has_text="penicillin")).to_contain_text("amoxicillin")
    medications = page.get_by_role("table").filter(has_text="Medications (RxNorm)")
    expect(medications).to_contain_text("metformin")
    expect(medications).not_to_contain_text("amoxicillin")
    expect(medications).not_to_contain_text("atorvastatin")
    not_taken = page.get_by_role("table").filter(has_text="not the patient's current medication")
    expect(not_taken.get_by_role("row").filter(has_text="atorvastatin")).to_contain_text("refused")
    expect(not_taken.get_by_role("row").filter(has_text="amoxicillin")).to_contain_text("allergen")
    watched.screenshot("console-allergen-alert")
