"""Running the project's playbooks against the test inventory, and reading the test stack back.

Everything here targets the test stack of ``tests/inventory`` (names from ``MN_TEST_STACK``, port
from ``MN_TEST_PORT``, defaults ``mn_test`` and 18080), never ``inventory/hosts.yml``.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEST_INVENTORY = REPO / "tests" / "inventory" / "hosts.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
RECAP = re.compile(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)")
STACK_LABEL = "org.medical-notes.stack"
TEST_LABEL = "org.medical-notes.test"

# Settings the first deploy of the lifecycle tests sets and a later deploy removes again.
PROBE_ENV = ("MN_CONVERGENCE_PROBE", "set-by-the-test")
PROBE_BASE_URL = "http://127.0.0.1:9/v1"
PROBE_LABEL = ("org.medical-notes.convergence-probe", "1")


@dataclass(frozen=True)
class Stack:
    """The names the medical_notes role derives from a stack name."""

    name: str
    port: int

    @property
    def base_dir(self) -> Path:
        return Path("/opt") / self.name.replace("_", "-")

    @property
    def api_container(self) -> str:
        return f"{self.name}_api"

    @property
    def postgres_container(self) -> str:
        return f"{self.name}_postgres"

    @property
    def proxy_container(self) -> str:
        return f"{self.name}_proxy"

    @property
    def network(self) -> str:
        return f"{self.name}_net"

    @property
    def volumes(self) -> tuple[str, str]:
        return f"{self.name}_postgres_data", f"{self.name}_faiss_data"

    @property
    def url(self) -> str:
        """The published port speaks HTTPS (TLS is on by default) with the stack's generated CA."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.base_dir / "tls" / "ca.crt"

    def token(self) -> str:
        return (self.base_dir / "secrets" / "api_token").read_text().strip()


def configured_test_stack() -> Stack:
    """The stack tests/inventory/group_vars/all.yml configures (same environment variables)."""
    return Stack(
        name=os.environ.get("MN_TEST_STACK", "mn_test"),
        port=int(os.environ.get("MN_TEST_PORT", "18080")),
    )


DEFAULT_STACK = Stack(name="medical_notes", port=8000)


def probe_settings(stack: Stack) -> dict[str, object]:
    return {
        "medical_notes_api_extra_env": {PROBE_ENV[0]: PROBE_ENV[1]},
        "medical_notes_llm_base_url": PROBE_BASE_URL,
        "medical_notes_extra_labels": {PROBE_LABEL[0]: PROBE_LABEL[1]},
        "medical_notes_postgres_publish_port": stack.port + 1,
    }


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str

    @property
    def changed(self) -> int:
        return int(self._recap().group(1))

    @property
    def failed(self) -> int:
        return int(self._recap().group(2))

    def _recap(self) -> re.Match[str]:
        recap = RECAP.search(self.output)
        assert recap is not None, self.output[-3000:]
        return recap

    def tail(self) -> str:
        return self.output[-12000:]


def run_playbook(
    playbook: str, *args: str, extra_vars: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> PlaybookRun:
    """ansible-playbook with the test inventory; extra_vars go in as one JSON -e, env on top of ours."""
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(TEST_INVENTORY), playbook, *args]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    environment = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        **(env or {}),
    }
    result = subprocess.run(
        argv, cwd=REPO, env=environment, capture_output=True, text=True, timeout=1200, check=False
    )
    return PlaybookRun(result.returncode, result.stdout + result.stderr)


def http(
    method: str, url: str, token: str = "", body: dict[str, Any] | None = None, cafile: Path | None = None
) -> tuple[int, Any]:
    """One request; returns the status and the decoded JSON body (None when empty).

    HTTPS URLs are verified against ``cafile`` (a stack's generated CA).
    """
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (local test URLs)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
        with urllib.request.urlopen(request, timeout=30, context=context) as response:  # noqa: S310
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        payload, status = error.read(), error.code
    return status, json.loads(payload) if payload else None
