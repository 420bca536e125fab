"""A real server, a real PostgreSQL and a real browser: headless Chromium from Debian, driven by Playwright.

The service runs as `python -m medical_notes serve` (uvicorn) on a free loopback port with the shipped
notes seeded; Playwright uses the system Chromium (`/usr/bin/chromium`), it never downloads a browser.
Screenshots of every page go to tests/browser/screenshots/ (git-ignored) for review.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, sync_playwright

from app.postgres_server import PostgresServer, free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
ADMIN_TOKEN = "browser-test-admin-token"
SERVICE_PREFIXES = ("LLM_", "EMBEDDING_", "API_", "UI_", "DOCS_")
# Without the background-networking switches Chromium calls Google's hosts at start; this host (like an
# air-gapped site) cannot reach them, and the tests assert that pages make no request off the origin.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Service:
    url: str
    env: dict[str, str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "medical_notes", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


@dataclass
class WatchedPage:
    """A page that records every request it makes and every console error it logs."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(("data:", "blob:", self.origin + "/"))]

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with PostgresServer() as postgres:
        postgres.create_database("browser")
        port = free_port()
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith(SERVICE_PREFIXES)},
            "PYTHONPATH": str(REPO / "app"),
            "DATABASE_URL": postgres.dsn("browser"),
            "FAISS_INDEX_DIR": str(tmp_path_factory.mktemp("faiss")),
            "API_TOKEN": ADMIN_TOKEN,
            "LLM_PROVIDER": "offline",
            "EMBEDDING_PROVIDER": "local",
        }
        service = Service(url=f"http://127.0.0.1:{port}", env=env)
        service.cli("seed")
        service.cli("index")
        server = subprocess.Popen(
            [sys.executable, "-m", "medical_notes", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{service.url}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the service did not become healthy")
                time.sleep(0.2)
            yield service
        finally:
            server.terminate()
            server.wait(timeout=15)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make chromium` installs Debian's package")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def watched(browser: Browser, service: Service) -> Iterator[WatchedPage]:
    context = browser.new_context(base_url=service.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    watched_page = WatchedPage(page=page, origin=service.url)

    def on_request(request: Request) -> None:
        watched_page.requests.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched_page.console_errors.append(message.text)

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: watched_page.console_errors.append(str(error)))
    yield watched_page
    context.close()
