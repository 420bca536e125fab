"""TLS, secrets as files, PostgreSQL posture, clients from the inventory and Ansible Vault, end to end.

One real stack (tests/edge/inventory: stack mn_tls, HTTPS on 127.0.0.1:18443, /opt/mn-tls) is
deployed through site.yml with the secrets in an Ansible Vault file and --diff -vvv, then checked
with real clients (Python ssl, curl, openssl s_client) and `docker inspect`. Later runs replace the
certificate under a bounded load. The stack is removed at the end (MN_TLS_KEEP=1 keeps it).
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.support import (
    BASE_DIR,
    CA_FILE,
    HOST,
    PORT,
    ROOT,
    SECRETS_DIR,
    STACK,
    BoundedLoad,
    client_context,
    recap_changed,
    request,
    run_playbook,
    served_certificate,
    served_certificate_unverified,
)

CONTAINERS = [f"{STACK}_postgres", f"{STACK}_api", f"{STACK}_proxy"]
CLIENTS = {"reporting": "read", "ehr-sync": "write"}


def _clean() -> None:
    result = run_playbook("playbooks/clean.yml", "-e", "medical_notes_clean_confirm=yes")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def vault_secrets() -> dict[str, str]:
    return {
        "medical_notes_api_token": "vault-token-" + secrets.token_urlsafe(24),
        "medical_notes_llm_api_key": "sk-vault-" + secrets.token_urlsafe(24),
        "medical_notes_postgres_password": "vault-pg-" + secrets.token_urlsafe(24),
    }


@pytest.fixture(scope="module")
def deploy_output(vault_secrets: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh stack deployed with the secrets in an encrypted vars file, --diff and -vvv."""
    directory = tmp_path_factory.mktemp("vault")
    password_file = directory / "vault-password"
    password_file.write_text(secrets.token_urlsafe(16))
    password_file.chmod(0o600)
    vars_file = directory / "secrets.yml"
    vars_file.write_text("".join(f"{name}: {json.dumps(value)}\n" for name, value in vault_secrets.items()))
    encrypt = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-vault"), "encrypt", "--vault-password-file", str(password_file),
         str(vars_file)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert encrypt.returncode == 0, encrypt.stderr
    assert vars_file.read_text().startswith("$ANSIBLE_VAULT;")
    for value in vault_secrets.values():
        assert value not in vars_file.read_text()

    _clean()
    result = run_playbook(
        "site.yml", "-e", f"@{vars_file}", "--vault-password-file", str(password_file), "--diff", "-vvv"
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    yield result.stdout + result.stderr
    if os.environ.get("MN_TLS_KEEP", "") != "1":
        _clean()


@pytest.fixture(scope="module")
def all_secret_values(deploy_output: str, vault_secrets: dict[str, str]) -> dict[str, str]:
    """Every secret the stack holds: the vault values, the client tokens and the TLS private keys."""
    values = dict(vault_secrets)
    for token_file in (SECRETS_DIR / "clients").iterdir():
        values[f"client {token_file.name}"] = token_file.read_text().strip()
    for key in (BASE_DIR / "tls" / "private").iterdir():
        # The base64 body of the PEM key: what a leak would show.
        values[f"key {key.name}"] = "".join(key.read_text().splitlines()[1:-1])
    return values


def _inspect(names: list[str]) -> list[dict[str, Any]]:
    output = subprocess.run(["docker", "inspect", *names], capture_output=True, text=True, check=True).stdout
    return json.loads(output)


def _document_id(token: str) -> int:
    status, _, ids = request("GET", "/documents", token)
    assert status == 200
    assert ids
    return ids[0]


# ---- settings checked before any change -------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        (
            ["medical_notes_tls_cert_file=/etc/hostname"],
            "medical_notes_tls_cert_file and medical_notes_tls_key_file go",
        ),
        (
            ["medical_notes_api_plain_http_bind_address=everywhere"],
            "must be an IPv4 or IPv6 address (got everywhere)",
        ),
        (["medical_notes_tls_renew_days=400"], "< medical_notes_tls_cert_days (397)"),
        (
            ['{"medical_notes_api_clients": [{"name": "bootstrap", "scope": "read"}]}'],
            'not "bootstrap" or "anonymous"',
        ),
        (
            ['{"medical_notes_api_clients": [{"name": "x", "scope": "root"}]}'],
            "value of scope must be one of",
        ),
        (
            ["medical_notes_tls_cert_file=/nonexistent.crt", "medical_notes_tls_key_file=/nonexistent.key"],
            "/nonexistent.crt is not a file on the controller",
        ),
    ],
    ids=[
        "cert-without-key",
        "plain-http-address",
        "renewal-threshold",
        "reserved-client",
        "scope",
        "missing-file",
    ],
)
def test_wrong_tls_and_client_settings_fail_before_any_change(extra_vars: list[str], message: str) -> None:
    stack = "mn_tls_validate"
    arguments = [item for value in extra_vars for item in ("-e", value)]
    env_stack = ["-e", f"medical_notes_stack_name={stack}"]
    result = run_playbook("site.yml", *env_stack, *arguments, timeout=300)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert message in output, output[-2000:]
    assert "TASK [docker_engine" not in output
    assert not Path("/opt/mn-tls-validate").exists()


# ---- Ansible Vault and secrets ------------------------------------------------------------------


def test_vault_deploy_prints_no_secret_with_diff_and_vvv(
    deploy_output: str, all_secret_values: dict[str, str]
) -> None:
    assert "PLAY RECAP" in deploy_output
    leaked = [name for name, value in all_secret_values.items() if value in deploy_output]
    assert leaked == []


def test_the_vault_values_are_the_ones_in_use(deploy_output: str, vault_secrets: dict[str, str]) -> None:
    token = vault_secrets["medical_notes_api_token"]
    assert request("GET", "/documents", token)[0] == 200
    assert request("GET", "/documents", "not-the-token")[0] == 401


def test_docker_inspect_of_every_container_shows_no_secret(all_secret_values: dict[str, str]) -> None:
    inspected = json.dumps(_inspect(CONTAINERS))
    # The generated files on the host are the values in use (the vault ones were written there).
    for path in list(SECRETS_DIR.glob("api/*")) + list(SECRETS_DIR.glob("postgres/*")):
        all_secret_values[str(path)] = path.read_text().strip()
    assert len(all_secret_values) >= 8
    assert [name for name, value in all_secret_values.items() if value in inspected] == []
    api = _inspect([f"{STACK}_api"])[0]
    environment = dict(item.split("=", 1) for item in api["Config"]["Env"])
    assert environment["DATABASE_PASSWORD_FILE"] == "/run/secrets/database_password"
    assert environment["API_TOKEN_FILE"] == "/run/secrets/api_token"
    assert environment["LLM_API_KEY_FILE"] == "/run/secrets/llm_api_key"
    assert "@" in environment["DATABASE_URL"]
    assert ":" not in environment["DATABASE_URL"].split("://")[1].split("@")[0]
    postgres = _inspect([f"{STACK}_postgres"])[0]
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password" in postgres["Config"]["Env"]
    assert not [item for item in postgres["Config"]["Env"] if item.startswith("POSTGRES_PASSWORD=")]


def test_env_file_holds_no_secret(all_secret_values: dict[str, str]) -> None:
    env_file = BASE_DIR / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    content = env_file.read_text()
    assert [name for name, value in all_secret_values.items() if value in content] == []


@pytest.mark.parametrize(
    ("directory", "owner"), [("api", 10001), ("postgres", 999)], ids=["api-10001", "postgres-999"]
)
def test_secret_files_are_readable_only_by_the_container_user(
    deploy_output: str, directory: str, owner: int
) -> None:
    folder = SECRETS_DIR / directory
    assert (folder.stat().st_uid, stat.S_IMODE(folder.stat().st_mode)) == (owner, 0o500)
    files = list(folder.iterdir())
    assert files
    for path in files:
        assert (path.stat().st_uid, stat.S_IMODE(path.stat().st_mode)) == (owner, 0o400), path


def test_secrets_are_mounted_read_only(deploy_output: str) -> None:
    for name, source in ((f"{STACK}_api", "api"), (f"{STACK}_postgres", "postgres")):
        mounts = _inspect([name])[0]["Mounts"]
        secret_mounts = [m for m in mounts if m["Destination"] == "/run/secrets"]
        assert secret_mounts == [
            {**secret_mounts[0], "Source": str(SECRETS_DIR / source), "RW": False, "Type": "bind"}
        ]


# ---- TLS ----------------------------------------------------------------------------------------


def _handshake(version: ssl.TLSVersion) -> str:
    context = client_context()
    context.minimum_version = version
    context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with (
        socket.create_connection((HOST, PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return str(tls.version())


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["1.2", "1.3"])
def test_tls_1_2_and_1_3_are_accepted_with_a_certificate_valid_for_localhost(
    deploy_output: str, version: ssl.TLSVersion
) -> None:
    assert (
        _handshake(version) == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    )


def test_tls_1_1_is_refused_by_the_server(deploy_output: str) -> None:
    # The server's alert, not a client-side refusal: the client offered TLS 1.1 and was told no.
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{HOST}:{PORT}", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
         "-CAfile", str(CA_FILE)],
        input="", capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "alert protocol version" in result.stderr


def test_plain_http_on_the_port_gets_no_note_data(vault_secrets: dict[str, str]) -> None:
    token = vault_secrets["medical_notes_api_token"]
    document_id = _document_id(token)
    with socket.create_connection((HOST, PORT), timeout=10) as raw:
        raw.sendall(
            f"GET /documents/{document_id} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode()
        )
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    assert b"200 OK" not in received
    assert b"content" not in received


def test_certificate_names_and_ciphers(deploy_output: str) -> None:
    certificate = x509.load_der_x509_certificate(served_certificate())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "::1"} <= {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    context = client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection((HOST, PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cipher = tls.cipher()
    assert cipher is not None
    assert cipher[0].startswith("ECDHE-")
    assert "GCM" in cipher[0] or "CHACHA20" in cipher[0]


def test_curl_with_the_ca_gets_health_and_hsts(deploy_output: str) -> None:
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(CA_FILE), "-D", "-", f"https://localhost:{PORT}/health"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    headers, _, body = result.stdout.partition("\n\n")  # text mode turned \r\n into \n
    assert headers.split()[1] == "200"
    assert "strict-transport-security: max-age=63072000" in headers.lower()
    assert json.loads(body)["status"] == "ok"


def test_console_cookies_are_secure_and_the_api_logs_the_forwarded_client_address(deploy_output: str) -> None:
    request_id = f"edge-{secrets.token_hex(6)}"
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(CA_FILE), "-D", "-", "-o", "/dev/null",
         "-H", f"X-Request-ID: {request_id}", f"https://localhost:{PORT}/ui/login"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cookies = [line for line in result.stdout.lower().splitlines() if line.startswith("set-cookie:")]
    assert cookies, result.stdout
    assert all("; secure" in line and "httponly" in line for line in cookies), cookies
    # The API sees the proxy as its peer; the log line carries the address the proxy forwarded.
    proxy_address = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
         f"{STACK}_proxy"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    logs = subprocess.run(["docker", "logs", f"{STACK}_api"], capture_output=True, text=True, check=True)
    lines = [line for line in (logs.stdout + logs.stderr).splitlines() if f"request_id={request_id}" in line]
    assert len(lines) == 1, lines
    address = lines[0].split(" addr=")[1].split()[0]
    assert address not in ("-", proxy_address), lines[0]


def test_only_the_proxy_is_published_and_every_container_is_healthy(deploy_output: str) -> None:
    proxy, api, postgres = (
        _inspect([name])[0] for name in (f"{STACK}_proxy", f"{STACK}_api", f"{STACK}_postgres")
    )
    assert proxy["HostConfig"]["PortBindings"] == {
        "8443/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(PORT)}]
    }
    assert api["HostConfig"]["PortBindings"] in ({}, None)
    assert postgres["HostConfig"]["PortBindings"] in ({}, None)
    # Docker runs a container's first health check one interval after its start.
    deadline = time.monotonic() + 90
    names = [f"{STACK}_proxy", f"{STACK}_api", f"{STACK}_postgres"]
    while (states := [item["State"]["Health"]["Status"] for item in _inspect(names)]) != ["healthy"] * 3:
        assert "unhealthy" not in states, dict(zip(names, states, strict=True))
        assert time.monotonic() < deadline, dict(zip(names, states, strict=True))
        time.sleep(1)
    assert proxy["Config"]["User"] == "10002:10002"
    assert proxy["HostConfig"]["ReadonlyRootfs"] is True
    assert proxy["HostConfig"]["CapDrop"] == ["ALL"]


# ---- PostgreSQL posture --------------------------------------------------------------------------


def test_postgres_container_posture(deploy_output: str) -> None:
    host = _inspect([f"{STACK}_postgres"])[0]["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert sorted(cap.removeprefix("CAP_") for cap in host["CapAdd"]) == [
        "CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"
    ]  # fmt: skip
    assert host["ReadonlyRootfs"] is True
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["ShmSize"] == 128 * 1024 * 1024
    assert set(host["Tmpfs"]) == {"/var/run/postgresql", "/tmp"}
    write = subprocess.run(
        ["docker", "exec", f"{STACK}_postgres", "touch", "/usr/local/probe"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


def test_postgres_still_serves_writes_and_reads(vault_secrets: dict[str, str]) -> None:
    token = vault_secrets["medical_notes_api_token"]
    status, _, created = request(
        "POST",
        "/documents",
        token,
        {"title": "TLS test note", "content": "S: cough. O: afebrile. A: URI. P: fluids."},
    )
    assert status == 201
    status, _, read = request("GET", f"/documents/{created['id']}", token)
    assert (status, read["title"]) == (200, "TLS test note")
    assert request("DELETE", f"/documents/{created['id']}", token)[0] in (200, 204)


# ---- clients from the inventory ------------------------------------------------------------------


def test_inventory_clients_exist_with_their_scopes_and_private_token_files(
    vault_secrets: dict[str, str],
) -> None:
    listing = subprocess.run(
        ["docker", "exec", f"{STACK}_api", "python", "-m", "medical_notes", "clients", "list"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    clients = {row["name"]: row for row in json.loads(listing.stdout)["clients"]}
    for name, scope in CLIENTS.items():
        assert clients[name]["scope"] == scope
        assert clients[name]["active"] is True
        token_file = SECRETS_DIR / "clients" / name
        assert (token_file.stat().st_uid, stat.S_IMODE(token_file.stat().st_mode)) == (0, 0o600)
    reporting = (SECRETS_DIR / "clients" / "reporting").read_text().strip()
    document_id = _document_id(vault_secrets["medical_notes_api_token"])
    assert request("GET", f"/documents/{document_id}", reporting)[0] == 200
    assert request("POST", "/documents", reporting, {"title": "x", "content": "y"})[0] == 403
    writer = (SECRETS_DIR / "clients" / "ehr-sync").read_text().strip()
    assert request("GET", "/documents", writer)[0] == 200


# ---- re-runs under load: no-op, renewal, the operator's certificate -------------------------------


@pytest.fixture(scope="module")
def load_target(vault_secrets: dict[str, str]) -> tuple[str, int]:
    token = vault_secrets["medical_notes_api_token"]
    return token, _document_id(token)


def test_rerun_changes_nothing_and_fails_no_request(
    load_target: tuple[str, int], vault_secrets: dict[str, str], tmp_path: Path
) -> None:
    vars_file = tmp_path / "plain-secrets.yml"
    vars_file.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in vault_secrets.items()))
    vars_file.chmod(0o600)
    tokens_before = {p.name: p.read_text() for p in (SECRETS_DIR / "clients").iterdir()}
    with BoundedLoad(*load_target) as load:
        result = run_playbook("site.yml", "-e", f"@{vars_file}")
    assert result.returncode == 0, result.stdout[-4000:]
    assert recap_changed(result.stdout) == 0, result.stdout[-6000:]
    print(load.result.summary())
    assert load.result.failures == []
    assert load.result.ok > 20
    assert {p.name: p.read_text() for p in (SECRETS_DIR / "clients").iterdir()} == tokens_before


def test_renewal_replaces_the_certificate_and_reloads_without_a_failed_request(
    load_target: tuple[str, int], vault_secrets: dict[str, str], tmp_path: Path
) -> None:
    vars_file = tmp_path / "plain-secrets.yml"
    vars_file.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in vault_secrets.items()))
    ca_before = CA_FILE.read_bytes()
    certificate_before = served_certificate()
    # The 397-day certificate is not valid 398 days from now: the run renews it (not the CA).
    with BoundedLoad(*load_target) as load:
        result = run_playbook(
            "site.yml", "-e", f"@{vars_file}", "-e", "medical_notes_tls_renew_days=398",
            "-e", "medical_notes_tls_cert_days=400",
        )  # fmt: skip
        certificate_after = served_certificate()
    assert result.returncode == 0, result.stdout[-4000:]
    assert "RUNNING HANDLER [medical_notes_lb : Reload the TLS proxy]" in result.stdout
    print(load.result.summary())
    assert load.result.failures == []
    assert load.result.ok > 20
    assert certificate_after != certificate_before
    assert CA_FILE.read_bytes() == ca_before
    renewed = x509.load_der_x509_certificate(certificate_after)
    assert renewed.not_valid_after_utc - renewed.not_valid_before_utc >= datetime.timedelta(days=399)


def _operator_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a localhost certificate of the operator's own (not the role's)."""
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(minutes=5)
    signing_usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Operator test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(signing_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=20))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = directory / "server.crt", directory / "server.key", directory / "ca.crt"
    paths[0].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[1].chmod(0o600)
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


def test_operator_certificate_replaces_the_generated_one_without_a_failed_request(
    load_target: tuple[str, int], vault_secrets: dict[str, str], tmp_path: Path
) -> None:
    vars_file = tmp_path / "plain-secrets.yml"
    vars_file.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in vault_secrets.items()))
    cert, key, ca = _operator_certificate(tmp_path)
    token, document_id = load_target
    # The load's clients trust both CAs: the generated one before the switch, the operator's after.
    with BoundedLoad(token, document_id, ca_files=[CA_FILE, ca]) as load:
        result = run_playbook(
            "site.yml", "-e", f"@{vars_file}", "-e", f"medical_notes_tls_cert_file={cert}",
            "-e", f"medical_notes_tls_key_file={key}", "-e", f"medical_notes_tls_ca_file={ca}",
        )  # fmt: skip
        served = served_certificate_unverified()
    assert result.returncode == 0, result.stdout[-4000:]
    print(load.result.summary())
    assert load.result.failures == []
    assert load.result.ok > 20
    assert x509.load_der_x509_certificate(served) == x509.load_pem_x509_certificate(cert.read_bytes())
    assert CA_FILE.read_bytes() == ca.read_bytes()
    # Clients that trust the published CA file keep working.
    assert request("GET", f"/documents/{document_id}", token)[0] == 200
