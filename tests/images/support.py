"""Helpers and names shared by the container image tests (real Docker, real PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import psycopg
from docker.errors import APIError, NotFound
from docker.models.containers import Container

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

PREFIX = "mn-imgtest-"
APP_IMAGE = f"{PREFIX}api:latest"
NETWORK = f"{PREFIX}net"
POSTGRES_CONTAINER = f"{PREFIX}postgres"
POSTGRES_VOLUME = f"{PREFIX}pgdata"
API_CONTAINER = f"{PREFIX}api"
FAISS_VOLUME = f"{PREFIX}faiss"

DB_USER = "medical_user"
DB_PASSWORD = "imgtest-Pa55word"
DB_NAME = "medical_notes"
API_TOKEN = "imgtest-api-token-5b8e"

# Where the build finds an extra CA for pip when the repository has none (docker/build-ca/README.md).
# On hosts behind a TLS-intercepting proxy the host's bundle is what makes PyPI reachable.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

SECOND = 1_000_000_000  # Docker API durations are nanoseconds


@dataclass(frozen=True)
class BaseImages:
    python: str
    postgres: str


@dataclass(frozen=True)
class AppImage:
    tag: str
    extra_ca: Path | None


def run_images_playbook(*extra_args: str) -> subprocess.CompletedProcess[str]:
    """Run playbooks/images.yml (the base_images role alone) against this Docker host."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env.setdefault("ANSIBLE_ROLES_PATH", str(REPO / "roles"))
    command = [
        str(VENV_BIN / "ansible-playbook"),
        "playbooks/images.yml",
        "-i",
        "localhost,",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        *extra_args,
    ]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False
    )


def reported_images(output: str) -> tuple[str, str]:
    """Image references from the role's summary line 'Python base X, PostgreSQL Y (...)'."""
    found = re.search(r"Python base (\S+),\s+PostgreSQL (\S+)", output)
    assert found, f"role summary not found in the playbook output:\n{output[-3000:]}"
    return found.group(1), found.group(2)


def remove_test_resources(client: docker.DockerClient) -> None:
    """Remove containers, volumes and the network of these tests (only mn-imgtest-* names)."""
    for container in client.containers.list(all=True, filters={"name": PREFIX}):
        if container.name.startswith(PREFIX):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": PREFIX}):
        if volume.name.startswith(PREFIX):
            volume.remove(force=True)
    for network in client.networks.list(names=[NETWORK]):
        network.remove()


def container_ip(container: Container) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


def exec_output(container: Container, command: list[str], user: str = "") -> tuple[int, str]:
    result = container.exec_run(command, user=user, demux=False)
    return result.exit_code, result.output.decode(errors="replace")


def main_process_uid(container: Container) -> int:
    """Real UID of the container's PID 1, read from /proc inside the container."""
    code, status = exec_output(container, ["cat", "/proc/1/status"])
    assert code == 0, status
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return int(uid_line.split()[1])


def wait_until(predicate, timeout: float, interval: float = 0.5, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")


def logs_of(container: Container) -> str:
    return container.logs(stdout=True, stderr=True).decode(errors="replace")


def build_context(destination: Path) -> Path | None:
    """A copy of what the Dockerfile needs, plus the extra CA for pip when one is needed."""
    shutil.copy2(REPO / "Dockerfile", destination / "Dockerfile")
    shutil.copy2(REPO / ".dockerignore", destination / ".dockerignore")
    for lock in ("requirements.lock", "requirements-terminology.lock"):
        shutil.copy2(REPO / lock, destination / lock)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".env", "faiss_db")
    shutil.copytree(REPO / "app", destination / "app", ignore=ignore)
    shutil.copytree(REPO / "docker", destination / "docker", ignore=ignore)
    extra_ca = destination / "docker" / "build-ca" / "extra-ca.crt"
    if not extra_ca.exists():
        source = os.environ.get("MEDICAL_NOTES_BUILD_CA") or (
            str(HOST_CA_BUNDLE) if HOST_CA_BUNDLE.exists() else ""
        )
        if not source:
            return None
        shutil.copy2(source, extra_ca)
    return extra_ca


class PostgresServer:
    """The PostgreSQL image running on a named volume; can be removed and recreated on that volume."""

    def __init__(self, client: docker.DockerClient, image: str) -> None:
        self.client = client
        self.image = image
        self.container: Container | None = None

    def start(self) -> Container:
        self.container = self.client.containers.run(
            self.image,
            name=POSTGRES_CONTAINER,
            detach=True,
            network=NETWORK,
            environment={
                "POSTGRES_USER": DB_USER,
                "POSTGRES_PASSWORD": DB_PASSWORD,
                "POSTGRES_DB": DB_NAME,
            },
            volumes={POSTGRES_VOLUME: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
        )
        wait_until(self._accepts_password_logins, timeout=90, message="PostgreSQL to accept TCP logins")
        return self.container

    def remove(self) -> None:
        if self.container is not None:
            self.container.remove(force=True)
            self.container = None

    def connect(self, password: str = DB_PASSWORD) -> psycopg.Connection:
        assert self.container is not None
        return psycopg.connect(
            host=container_ip(self.container),
            port=5432,
            user=DB_USER,
            password=password,
            dbname=DB_NAME,
            connect_timeout=5,
            autocommit=True,
        )

    def _accepts_password_logins(self) -> bool:
        assert self.container is not None
        self.container.reload()
        if self.container.status == "exited":
            raise AssertionError(f"PostgreSQL container exited:\n{logs_of(self.container)}")
        try:
            with self.connect() as connection:
                connection.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True


def database_url(password: str = DB_PASSWORD) -> str:
    return f"postgresql://{DB_USER}:{password}@{POSTGRES_CONTAINER}:5432/{DB_NAME}"


def run_api(client: docker.DockerClient, image: str, **overrides) -> Container:
    """The API container as production runs it: read-only root, tmpfs /tmp, index on a named volume.
    An environment override of None leaves that variable out."""
    environment = {
        "DATABASE_URL": database_url(),
        "LLM_PROVIDER": "offline",
        "EMBEDDING_PROVIDER": "local",
        "API_TOKEN": API_TOKEN,
    }
    environment.update(overrides.pop("environment", {}))
    environment = {name: value for name, value in environment.items() if value is not None}
    options = {
        "name": API_CONTAINER,
        "detach": True,
        "network": NETWORK,
        "environment": environment,
        "read_only": True,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
        "volumes": {FAISS_VOLUME: {"bind": "/app/data/faiss_db", "mode": "rw"}},
        # Same probe as the image's HEALTHCHECK, polled faster so the test does not wait 30 s per round.
        "healthcheck": {"interval": 2 * SECOND},
    }
    options.update(overrides)
    return client.containers.run(image, **options)


def health_status(container: Container) -> str:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status", "none")


def wait_healthy(container: Container, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = health_status(container)
        if status == "healthy":
            return
        if container.status == "exited":
            break
        time.sleep(1)
    raise AssertionError(
        f"API container not healthy (status {health_status(container)}, state {container.status}):\n"
        f"{logs_of(container)[-6000:]}"
    )


def remove_container(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(NotFound, APIError):
        client.containers.get(name).remove(force=True)
