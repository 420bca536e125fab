"""Shared fixtures for the service tests: a real PostgreSQL 15 server, a fresh database per test, the
guideline index built once, and an HTTP client talking to the real ASGI app."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from postgres_server import PostgresServer

from medical_notes.api import create_app
from medical_notes.config import PACKAGE_DATA_DIR, Settings
from medical_notes.rag import build_index

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "app"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A new, empty database for each test; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield postgres_server.dsn(name)
    if not postgres_server.is_running():
        postgres_server.start()
    admin = await asyncpg.connect(postgres_server.dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def built_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped guidelines indexed once per session; tests copy it when they change it."""
    index_dir = tmp_path_factory.mktemp("faiss_shared")
    settings = Settings(
        _env_file=None,
        faiss_index_dir=index_dir,
        guidelines_dir=PACKAGE_DATA_DIR / "guidelines",
        embedding_provider="local",
    )
    result = await build_index(settings)
    assert result.built, result.reason
    return index_dir


def make_settings(database_url: str, index_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "faiss_index_dir": index_dir,
        "llm_provider": "offline",
        "llm_api_key": None,
        "llm_base_url": None,
        "embedding_provider": "local",
        "embedding_model": "",
        "embedding_api_key": None,
        "embedding_base_url": None,
        "api_token": None,
        "db_pool_min_size": 1,
        "db_pool_max_size": 4,
        "db_connect_timeout": 3.0,
    }
    values.update(overrides)
    # Fail closed: without a token the app refuses to start, so the tests that do not test
    # authentication say explicitly that they run without it.
    if values["api_token"] is None and "api_auth" not in overrides:
        values["api_auth"] = "disabled"
    return Settings(_env_file=None, **values)


async def fetch(settings: Settings, query: str, *args: object) -> list[asyncpg.Record]:
    """Rows of one query on the settings' database, on a connection of its own."""
    connection = await asyncpg.connect(settings.database_url)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


@pytest.fixture
def index_dir(built_index_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "faiss_db"
    shutil.copytree(built_index_dir, copy)
    return copy


@pytest.fixture
def app_settings(database_url: str, index_dir: Path) -> Settings:
    return make_settings(database_url, index_dir)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with its lifespan entered, called in-process through httpx's ASGI transport."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(app_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app_settings) as http_client:
        yield http_client


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for `python -m medical_notes` subprocesses pointing at the test database and index."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("LLM_", "EMBEDDING_", "API_"))
    }
    env.update(
        {
            "PYTHONPATH": str(APP_DIR),
            "DATABASE_URL": settings.database_url,
            "FAISS_INDEX_DIR": str(settings.faiss_index_dir),
            "GUIDELINES_DIR": str(settings.guidelines_dir),
            "SOAP_NOTES_DIR": str(settings.soap_notes_dir),
            "LLM_PROVIDER": "offline",
            "EMBEDDING_PROVIDER": "local",
        }
    )
    if settings.api_auth is not None and "API_TOKEN" not in extra:
        env["API_AUTH"] = settings.api_auth
    env.update(extra)
    return env


def run_cli(settings: Settings, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medical_notes", *args],
        capture_output=True,
        text=True,
        env=cli_env(settings, **extra_env),
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
