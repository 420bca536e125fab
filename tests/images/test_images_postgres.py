"""The PostgreSQL image built from Debian packages honours the official image's contract."""

from __future__ import annotations

import time

import psycopg
import pytest

from images.support import (
    DB_NAME,
    DB_USER,
    PostgresServer,
    exec_output,
    logs_of,
    main_process_uid,
)


def test_data_survives_removing_and_recreating_the_container(postgres: PostgresServer) -> None:
    with postgres.connect() as connection:
        connection.execute("CREATE TABLE imgtest_persistence (id int PRIMARY KEY, label text NOT NULL)")
        connection.execute("INSERT INTO imgtest_persistence VALUES (1, 'kept across containers')")

    assert postgres.container is not None
    postgres.container.stop(timeout=10)
    postgres.remove()
    recreated = postgres.start()

    with postgres.connect() as connection:
        rows = connection.execute("SELECT id, label FROM imgtest_persistence").fetchall()
        connection.execute("DROP TABLE imgtest_persistence")
    assert rows == [(1, "kept across containers")]
    assert "using the existing cluster" in logs_of(recreated)


def test_network_clients_need_the_right_password(postgres: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        postgres.connect(password="not-the-password")
    with postgres.connect() as connection:
        method = connection.execute("SHOW password_encryption").fetchone()
    assert method == ("scram-sha-256",)


def test_server_runs_as_postgres_and_listens_on_all_interfaces(postgres: PostgresServer) -> None:
    assert postgres.container is not None
    assert main_process_uid(postgres.container) == 999
    with postgres.connect() as connection:
        assert connection.execute("SHOW listen_addresses").fetchone() == ("*",)
        assert connection.execute("SELECT current_database(), current_user").fetchone() == (DB_NAME, DB_USER)
    code, output = exec_output(postgres.container, ["pg_isready", "-U", DB_USER, "-d", DB_NAME])
    assert code == 0, output


def test_stop_is_a_fast_clean_shutdown(postgres: PostgresServer) -> None:
    assert postgres.container is not None
    started = time.monotonic()
    postgres.container.stop(timeout=10)
    elapsed = time.monotonic() - started
    postgres.container.reload()
    logs = logs_of(postgres.container)
    assert elapsed < 10, f"stop took {elapsed:.1f}s"
    assert postgres.container.attrs["State"]["ExitCode"] == 0, logs[-2000:]
    assert "fast shutdown request" in logs
    postgres.remove()
    postgres.start()


def test_missing_password_on_an_empty_volume_is_refused_with_a_clear_message(
    postgres: PostgresServer,
) -> None:
    container = postgres.client.containers.run(
        postgres.image, name="mn-imgtest-postgres-nopassword", detach=True, environment={}
    )
    try:
        result = container.wait(timeout=60)
        assert result["StatusCode"] != 0
        assert "neither POSTGRES_PASSWORD nor POSTGRES_PASSWORD_FILE is set" in logs_of(container)
    finally:
        container.remove(force=True, v=True)
