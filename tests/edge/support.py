"""Helpers of the TLS and secrets tests: run the playbooks on the tests' own stack, talk HTTPS to it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "tests" / "edge" / "inventory"
STACK = os.environ.get("MN_TLS_STACK", "mn_tls")
PORT = int(os.environ.get("MN_TLS_PORT", "18443"))
BASE_DIR = Path("/opt") / STACK.replace("_", "-")
CA_FILE = BASE_DIR / "tls" / "ca.crt"
SECRETS_DIR = BASE_DIR / "secrets"
HOST = "127.0.0.1"


def run_playbook(playbook: str, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    """ansible-playbook from the repository's venv against the tests' inventory; output captured."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(INVENTORY), playbook, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def recap_changed(output: str) -> int:
    for line in output.splitlines():
        if line.startswith("localhost") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    raise AssertionError("no PLAY RECAP in the output:\n" + output[-3000:])


def client_context(*ca_files: Path) -> ssl.SSLContext:
    """Verifies the server against the given CA files (default the stack's <base_dir>/tls/ca.crt)."""
    context = ssl.create_default_context(cafile=str(ca_files[0] if ca_files else CA_FILE))
    for ca_file in ca_files[1:]:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def https_connection(context: ssl.SSLContext | None = None) -> http.client.HTTPSConnection:
    # server_hostname "localhost": the certificate must name it.
    return http.client.HTTPSConnection("localhost", PORT, context=context or client_context(), timeout=15)


def request(
    method: str, path: str, token: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], Any]:
    connection = https_connection()
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data or b"null")
    finally:
        connection.close()


def served_certificate() -> bytes:
    """DER of the certificate the port serves now (fresh connection, verified against the CA)."""
    with (
        socket.create_connection((HOST, PORT), timeout=10) as raw,
        client_context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def served_certificate_unverified() -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((HOST, PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


@dataclass
class LoadResult:
    ok: int = 0
    # Requests retried once on a new connection because a reused keep-alive connection was closed.
    retried: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"bounded load: {self.ok} ok, {self.retried} retried, {len(self.failures)} failed"


class BoundedLoad:
    """A few threads reading one document over HTTPS with keep-alive, paced, counting every failure.

    A request fails when it raises or does not answer 200 with the document. HTTP/1.1 lets a client
    retry an idempotent request once on a new connection when a *reused* keep-alive connection was
    closed by the server before any byte of the answer came (RFC 9112, 9.3.1); browsers and curl do
    so, and so does this client. Everything else counts.
    """

    def __init__(
        self,
        token: str,
        document_id: int,
        threads: int = 3,
        pause: float = 0.02,
        ca_files: list[Path] | None = None,
    ) -> None:
        self._token = token
        self._path = f"/documents/{document_id}"
        self._document_id = document_id
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self._pause = pause
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.result = LoadResult()
        self._context = client_context(*(ca_files or []))

    def __enter__(self) -> BoundedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _record(self, failure: str | None) -> None:
        with self._lock:
            if failure is None:
                self.result.ok += 1
            else:
                self.result.failures.append(failure)

    def _get(self, connection: http.client.HTTPSConnection) -> None:
        connection.request("GET", self._path, headers={"Authorization": f"Bearer {self._token}"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200 or json.loads(body).get("id") != self._document_id:
            raise RuntimeError(f"status {response.status}")
        if response.getheader("Connection", "").lower() == "close":
            connection.close()

    def _run(self) -> None:
        connection = https_connection(self._context)
        while not self._stop.is_set():
            reused = connection.sock is not None
            try:
                self._get(connection)
                self._record(None)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                connection.close()
                if not reused:
                    self._record(f"{type(error).__name__}: {error}")
                    continue
                with self._lock:
                    self.result.retried += 1
                try:
                    self._get(connection)
                    self._record(None)
                except Exception as retry_error:
                    connection.close()
                    self._record(f"retry {type(retry_error).__name__}: {retry_error}")
            except Exception as error:
                connection.close()
                self._record(f"{type(error).__name__}: {error}")
            time.sleep(self._pause)
        connection.close()
