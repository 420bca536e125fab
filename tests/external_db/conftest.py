"""The external PostgreSQL server of the tests (external_db.server), once per session."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from external_db.server import (
    DATABASE,
    LISTEN_ADDRESS,
    PG_BIN_DIR,
    PORT,
    ROLE,
    ExternalPostgres,
    as_postgres,
    certificate_authority,
    pem,
    server_certificate,
)


@pytest.fixture(scope="session")
def external_postgres() -> Iterator[ExternalPostgres]:
    """initdb with scram-sha-256, TLS on with the test CA's certificate, only TLS connections with a
    password accepted from the network; a role and a database for the stack."""
    if not (PG_BIN_DIR / "initdb").exists():
        pytest.fail(f"no PostgreSQL server binaries in {PG_BIN_DIR} (make postgresql-server)")
    directory = Path(tempfile.mkdtemp(prefix="mn-ext-pg-"))
    data = directory / "data"
    ca_key, ca = certificate_authority("mn_ext test CA")
    server_key, server = server_certificate(ca_key, ca)
    _, wrong_ca = certificate_authority("mn_ext unrelated CA")
    (directory / "server.crt").write_bytes(pem(server))
    (directory / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / "server.key").chmod(0o600)
    controller = directory / "controller"
    controller.mkdir()
    server_ca = controller / "ca.crt"
    server_ca.write_bytes(pem(ca))
    wrong_ca_file = controller / "wrong-ca.crt"
    wrong_ca_file.write_bytes(pem(wrong_ca))
    password = secrets.token_urlsafe(24)
    password_file = controller / "password"
    password_file.write_text(password)
    password_file.chmod(0o600)
    (directory / "pg_hba.conf").write_text("local all all trust\nhostssl all all 0.0.0.0/0 scram-sha-256\n")
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        for path in (
            directory,
            directory / "server.crt",
            directory / "server.key",
            directory / "pg_hba.conf",
        ):
            os.chown(path, account.pw_uid, account.pw_gid)
    server_ctl = [str(PG_BIN_DIR / "pg_ctl"), "--pgdata", str(data)]
    try:
        as_postgres(
            [str(PG_BIN_DIR / "initdb"), "--pgdata", str(data), "--username", "postgres",
             "--auth-local", "trust", "--auth-host", "scram-sha-256", "--no-instructions"]
        )  # fmt: skip
        options = " ".join(
            [
                f"-c listen_addresses={LISTEN_ADDRESS} -p {PORT} -k {directory}",
                "-c ssl=on -c password_encryption=scram-sha-256 -c fsync=off",
                f"-c ssl_cert_file={directory}/server.crt -c ssl_key_file={directory}/server.key",
                f"-c hba_file={directory}/pg_hba.conf",
            ]
        )
        log = directory / "server.log"
        try:
            as_postgres([*server_ctl, "--log", str(log), "--options", options, "--wait", "start"])
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{log.read_text()[-2000:] if log.exists() else ''}") from None
        server = ExternalPostgres(directory, server_ca, wrong_ca_file, password_file)
        server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'")
        server.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            as_postgres([*server_ctl, "--mode", "immediate", "--wait", "stop"])
        shutil.rmtree(directory, ignore_errors=True)
