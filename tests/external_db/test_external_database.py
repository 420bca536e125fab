"""The stack against an external PostgreSQL (medical_notes_postgres_enabled: false): a real
PostgreSQL 15 started by the test outside Ansible, TLS with a CA of the test's own, scram-sha-256.
One converge, one idempotent re-run, one run with the wrong CA that must stop before any change."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from external_db.server import DATABASE, ROLE, ExternalPostgres

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "tests" / "external_db" / "inventory" / "hosts.yml"
STACK = "mn_ext"
BASE_DIR = Path("/opt/mn-ext")
PORT = 18987


def run_playbook(playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(INVENTORY), playbook, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


def recap_changed(output: str) -> int:
    for line in output.splitlines():
        if line.startswith("localhost") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    raise AssertionError("no PLAY RECAP in the output:\n" + output[-3000:])


def connection_settings(server: ExternalPostgres, ca_file: Path) -> list[str]:
    return [
        "-e", f"medical_notes_postgres_password_file={server.password_file}",
        "-e", f"medical_notes_postgres_ca_file={ca_file}",
    ]  # fmt: skip


def request(method: str, path: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=str(BASE_DIR / "tls" / "ca.crt"))
    connection = http.client.HTTPSConnection("localhost", PORT, context=context, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def container_id(name: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True, check=True
    ).stdout.strip()


def clean() -> None:
    result = run_playbook("playbooks/clean.yml", "-e", "medical_notes_clean_confirm=yes")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def deployed(external_postgres: ExternalPostgres) -> Iterator[ExternalPostgres]:
    clean()
    result = run_playbook("site.yml", *connection_settings(external_postgres, external_postgres.ca_file))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    yield external_postgres
    if os.environ.get("MN_EXT_KEEP", "") != "1":
        clean()


@pytest.fixture(scope="module")
def token(deployed: ExternalPostgres) -> str:
    return (BASE_DIR / "secrets" / "api_token").read_text().strip()


def test_no_postgres_container_and_the_api_verifies_the_server(deployed: ExternalPostgres) -> None:
    assert subprocess.run(
        ["docker", "inspect", f"{STACK}_postgres"], capture_output=True, check=False
    ).returncode
    environment = subprocess.run(
        ["docker", "inspect", "--format", "{{json .Config.Env}}", f"{STACK}_api"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert (
        f"DATABASE_URL=postgresql://{ROLE}@172.17.0.1:15987/{DATABASE}"
        "?sslmode=verify-full&sslrootcert=/run/medical-notes/database-ca/ca.crt"
    ) in environment
    assert (BASE_DIR / "tls" / "database" / "ca.crt").read_text() == deployed.ca_file.read_text()


def test_a_document_written_through_the_load_balancer_is_read_back(token: str) -> None:
    status, created = request(
        "POST", "/documents", token, {"title": "External DB note", "content": "S: headache. P: rest."}
    )
    assert status == 201, created
    status, read = request("GET", f"/documents/{created['id']}", token)
    assert (status, read["title"]) == (200, "External DB note")


def test_the_api_connections_are_tls(deployed: ExternalPostgres, token: str) -> None:
    assert request("GET", "/documents", token)[0] == 200
    rows = deployed.psql(
        "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        "WHERE a.usename = 'mn_ext_user' AND a.client_addr IS NOT NULL"
    ).splitlines()
    assert ROLE == "mn_ext_user"
    assert rows, "the API holds no connection to the external server"
    assert {row.split("|")[0] for row in rows} == {"t"}, rows
    assert {row.split("|")[1] for row in rows} <= {"TLSv1.2", "TLSv1.3"}, rows


def test_a_rerun_changes_nothing(deployed: ExternalPostgres) -> None:
    result = run_playbook("site.yml", *connection_settings(deployed, deployed.ca_file))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert recap_changed(result.stdout) == 0, result.stdout[-6000:]


def test_a_wrong_ca_stops_the_deploy_before_any_change(deployed: ExternalPostgres, token: str) -> None:
    before = {
        "api": container_id(f"{STACK}_api"),
        "env": (BASE_DIR / ".env").read_bytes(),
        "ca": (BASE_DIR / "tls" / "database" / "ca.crt").read_bytes(),
    }
    result = run_playbook("site.yml", *connection_settings(deployed, deployed.wrong_ca_file))
    assert result.returncode != 0
    assert "PostgreSQL at 172.17.0.1:15987: the certificate does not verify" in result.stdout, result.stdout[
        -4000:
    ]
    assert "Nothing on localhost was changed" in result.stdout
    assert recap_changed(result.stdout) == 0
    after = {
        "api": container_id(f"{STACK}_api"),
        "env": (BASE_DIR / ".env").read_bytes(),
        "ca": (BASE_DIR / "tls" / "database" / "ca.crt").read_bytes(),
    }
    assert after == before
    assert request("GET", "/documents", token)[0] == 200


def test_an_external_server_without_its_ca_is_refused_before_any_change(
    external_postgres: ExternalPostgres,
) -> None:
    result = run_playbook(
        "site.yml", "-e", f"medical_notes_postgres_password_file={external_postgres.password_file}"
    )
    assert result.returncode != 0
    assert "is required for an external database with sslmode verify-full" in " ".join(result.stdout.split())
    assert recap_changed(result.stdout) == 0
