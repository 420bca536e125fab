"""The API as deployed: `python -m medical_notes serve` in a subprocess (uvicorn, real sockets, one or
more workers), its whole output captured in a log file the tests read afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from conftest import REPO_ROOT, cli_env
from postgres_server import free_port

from medical_notes.config import Settings


@dataclass
class ServedAPI:
    base_url: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until_healthy(api: ServedAPI, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{api.base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert api.process.poll() is None, api.log()
        assert time.monotonic() < deadline, api.log()
        time.sleep(0.2)


@contextmanager
def served_api(settings: Settings, log_path: Path, *, workers: int = 1, **env: str) -> Iterator[ServedAPI]:
    """Serve until the block ends, then stop with SIGTERM (as Docker does) and wait for the exit, so
    that the log also holds what the workers print while shutting down."""
    port = free_port()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "medical_notes", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=cli_env(settings, API_WORKERS=str(workers), **env),
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        api = ServedAPI(f"http://127.0.0.1:{port}", port, log_path, process)
        try:
            wait_until_healthy(api)
            yield api
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
