"""The API image runs as production runs it: non-root, read-only root file system, healthy, stoppable."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from images.support import (
    API_CONTAINER,
    API_TOKEN,
    DB_NAME,
    DB_PASSWORD,
    DB_USER,
    FAISS_VOLUME,
    POSTGRES_CONTAINER,
    AppImage,
    PostgresServer,
    container_ip,
    database_url,
    exec_output,
    logs_of,
    main_process_uid,
    remove_container,
    run_api,
    wait_healthy,
    wait_until,
)

APP_UID = 10001


@pytest.fixture(scope="module")
def api(
    docker_client: docker.DockerClient, app_image: AppImage, postgres: PostgresServer
) -> Iterator[Container]:
    remove_container(docker_client, API_CONTAINER)
    container = run_api(docker_client, app_image.tag)
    wait_healthy(container)
    yield container
    remove_container(docker_client, API_CONTAINER)


def test_first_start_seeds_indexes_and_becomes_healthy(api: Container) -> None:
    logs = logs_of(api)
    assert "accepts connections" in logs
    assert "seeding the database" in logs
    assert "building the guideline index" in logs
    with urllib.request.urlopen(f"http://{container_ip(api)}:8000/health", timeout=10) as response:
        assert response.status == 200
        json.loads(response.read())
    code, output = exec_output(api, ["python", "-m", "medical_notes", "status"])
    status = json.loads(output.splitlines()[-1])
    assert code == 0, output
    assert status["documents"] > 0
    assert status["index_present"] is True


def test_runs_as_the_unprivileged_app_user(api: Container) -> None:
    assert main_process_uid(api) == APP_UID
    api.reload()
    assert api.attrs["Config"]["User"] == f"{APP_UID}:{APP_UID}"


def test_root_file_system_is_read_only(api: Container) -> None:
    api.reload()
    assert api.attrs["HostConfig"]["ReadonlyRootfs"] is True
    code, output = exec_output(api, ["touch", "/usr/local/written-at-run-time"], user="0")
    assert code != 0
    assert "Read-only file system" in output


def test_sigterm_stops_the_server_gracefully_within_ten_seconds(api: Container) -> None:
    started = time.monotonic()
    api.stop(timeout=10)  # SIGTERM, SIGKILL only after 10 s
    elapsed = time.monotonic() - started
    api.reload()
    assert elapsed < 10, f"stop took {elapsed:.1f}s"
    assert api.attrs["State"]["ExitCode"] == 0, logs_of(api)[-3000:]


def test_restart_on_existing_volumes_skips_seeding_and_indexing(
    docker_client: docker.DockerClient, app_image: AppImage, postgres: PostgresServer
) -> None:
    remove_container(docker_client, API_CONTAINER)
    container = run_api(docker_client, app_image.tag)
    try:
        wait_healthy(container)
        logs = logs_of(container)
        assert "not seeding" in logs
        assert "guideline index present" in logs
    finally:
        remove_container(docker_client, API_CONTAINER)


def test_force_init_refreshes_shipped_notes_and_rebuilds_the_index(
    docker_client: docker.DockerClient, app_image: AppImage, postgres: PostgresServer
) -> None:
    remove_container(docker_client, API_CONTAINER)
    container = run_api(docker_client, app_image.tag, environment={"FORCE_INIT": "true"})
    try:
        wait_healthy(container)
        logs = logs_of(container)
        assert "FORCE_INIT=true" in logs
        assert "seed done:" in logs
        assert '"built":true' in logs.replace(" ", "")
    finally:
        remove_container(docker_client, API_CONTAINER)


def test_auto_init_false_leaves_seeding_and_indexing_to_the_deployment(
    docker_client: docker.DockerClient, app_image: AppImage, postgres: PostgresServer
) -> None:
    remove_container(docker_client, API_CONTAINER)
    container = run_api(docker_client, app_image.tag, environment={"AUTO_INIT": "false"})
    try:
        wait_until(
            lambda: "starting the API server" in logs_of(container),
            timeout=60,
            message="the entrypoint to start the server",
        )
        logs = logs_of(container)
        assert "AUTO_INIT=false: skipping seeding and indexing" in logs
        assert "seeding the database" not in logs
    finally:
        remove_container(docker_client, API_CONTAINER)


def test_wrong_database_password_stops_the_start_with_a_clear_message(
    docker_client: docker.DockerClient, app_image: AppImage, postgres: PostgresServer
) -> None:
    remove_container(docker_client, API_CONTAINER)
    container = run_api(
        docker_client, app_image.tag, environment={"DATABASE_URL": database_url("Wrong-Pa55word")}
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 1
        logs = logs_of(container)
        assert "could not read the service state" in logs
        assert "starting the API server" not in logs
        assert "Wrong-Pa55word" not in logs
    finally:
        remove_container(docker_client, API_CONTAINER)


@pytest.mark.parametrize(
    ("environment", "address"),
    [
        (
            {"DATABASE_URL": "postgresql://medical_user:S3cret%40pw@db.example.org:6543/medical_notes?x=1"},
            "db.example.org:6543",
        ),
        ({"DATABASE_URL": "postgresql://medical_user:S3cret@[fd00::5]/medical_notes"}, "fd00::5:5432"),
        ({"DATABASE_URL": "", "PGHOST": "pg.internal", "PGPORT": "7777"}, "pg.internal:7777"),
    ],
)
def test_waits_for_the_database_address_and_gives_up_clearly(
    docker_client: docker.DockerClient, app_image: AppImage, environment: dict, address: str
) -> None:
    container = docker_client.containers.run(
        app_image.tag,
        name=f"{API_CONTAINER}-wait",
        detach=True,
        network_mode="none",
        environment={"DB_WAIT_ATTEMPTS": "2", "DB_WAIT_INTERVAL": "1", "API_AUTH": "disabled", **environment},
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 1
        logs = logs_of(container)
        assert f"waiting for PostgreSQL at {address} (attempt 1/2)" in logs
        assert f"PostgreSQL at {address} did not accept connections after 2 attempts" in logs
        assert "S3cret" not in logs
    finally:
        container.remove(force=True)


def test_refuses_to_start_without_a_credential_before_touching_the_database(
    docker_client: docker.DockerClient, app_image: AppImage
) -> None:
    remove_container(docker_client, API_CONTAINER)
    container = run_api(
        docker_client, app_image.tag, environment={"API_TOKEN": None}, network=None, network_mode="none"
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 2
        logs = logs_of(container)
        assert "error: no API credential configured" in logs
        assert "waiting for PostgreSQL" not in logs
        assert "starting the API server" not in logs
    finally:
        remove_container(docker_client, API_CONTAINER)


def test_secrets_from_read_only_files_keep_them_out_of_the_environment(
    docker_client: docker.DockerClient, app_image: AppImage, postgres: PostgresServer, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o755)
    for name, value in {"database_password": DB_PASSWORD, "api_token": API_TOKEN}.items():
        path = secrets / name
        path.write_text(value + "\n")
        os.chown(path, APP_UID, APP_UID)
        path.chmod(0o400)
    remove_container(docker_client, API_CONTAINER)
    container = run_api(
        docker_client,
        app_image.tag,
        environment={
            "DATABASE_URL": f"postgresql://{DB_USER}@{POSTGRES_CONTAINER}:5432/{DB_NAME}",
            "DATABASE_PASSWORD_FILE": "/run/secrets/database_password",
            "API_TOKEN": None,
            "API_TOKEN_FILE": "/run/secrets/api_token",
        },
        volumes={
            FAISS_VOLUME: {"bind": "/app/data/faiss_db", "mode": "rw"},
            str(secrets): {"bind": "/run/secrets", "mode": "ro"},
        },
    )
    try:
        wait_healthy(container)
        base = f"http://{container_ip(container)}:8000"
        request = urllib.request.Request(  # noqa: S310 - test container
            f"{base}/documents", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - test container
            assert response.status == 200
            assert response.headers["X-Request-ID"]
        container.reload()
        inspected = json.dumps(container.attrs)
        for secret in (DB_PASSWORD, API_TOKEN):
            assert secret not in inspected
            assert secret not in logs_of(container)
    finally:
        remove_container(docker_client, API_CONTAINER)
