"""Helpers of the operations tests: the mn_bkp stack, its playbooks, its database and its API."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "tests" / "ops" / "inventory"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

# Every name below comes from tests/ops/inventory/group_vars/all.yml.
BASE_DIR = Path("/opt/mn-bkp")
BACKUP_DIR = BASE_DIR / "backups"
STATE_DIR = BASE_DIR / "state"
STATUS_FILE = STATE_DIR / "backup-status.json"
IMAGES_FILE = STATE_DIR / "api-images.json"
POSTGRES_CONTAINER = "mn_bkp_postgres"
API_CONTAINER = "mn_bkp_api"
PROXY_CONTAINER = "mn_bkp_proxy"
NETWORK = "mn_bkp_net"
BACKUP_CONTAINER = "mn_bkp_backup"
API_IMAGE_NAME = "mn_bkp/api"
# medical_notes_api_build_cache_image: the intermediate stages of the newest API build, the layer cache.
API_BUILD_CACHE_IMAGE = f"{API_IMAGE_NAME}-build-cache"
# The label of the API Dockerfile's intermediate stages (builder, runtime-root).
BUILDER_STAGE_LABEL = "org.medical-notes.build-stage"
API_URL = "https://127.0.0.1:18300"
CA_FILE = BASE_DIR / "tls" / "ca.crt"
DB_NAME = "medical_notes"
DB_USER = "medical_user"
PREFIX = "mn_bkp"


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str

    @property
    def text(self) -> str:
        """The output with line breaks and indentation folded, for searching messages."""
        return " ".join(self.output.split())


def run_playbook(playbook: str, *extra_vars: str, timeout: float = 1800) -> PlaybookRun:
    """ansible-playbook against the tests' own inventory (never inventory/hosts.yml)."""
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(INVENTORY), playbook]
    for extra in extra_vars:
        argv += ["-e", extra]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return PlaybookRun(result.returncode, result.stdout + result.stderr)


def psql(query: str, database: str = DB_NAME) -> str:
    """Run one query inside the PostgreSQL container (local socket) and return its bare output."""
    result = subprocess.run(
        ["docker", "exec", POSTGRES_CONTAINER, "psql", "--no-psqlrc", "-qtAX", "-v", "ON_ERROR_STOP=1",
         "--username", DB_USER, "--dbname", database, "--command", query],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def documents_snapshot() -> list[dict[str, Any]]:
    """Every column of every document, ordered by id: what a restore has to bring back exactly."""
    rows = psql(
        "SELECT coalesce(json_agg(json_build_object("
        "'id', id, 'title', title, 'content', content, 'doc_type', doc_type, 'metadata', metadata,"
        "'source_key', source_key, 'content_hash', content_hash,"
        "'created_at', created_at, 'updated_at', updated_at) ORDER BY id), '[]') FROM documents"
    )
    return json.loads(rows)


def databases() -> list[str]:
    return sorted(psql("SELECT datname FROM pg_database", database="postgres").split())


def api_token() -> str:
    return (BASE_DIR / "secrets" / "api_token").read_text().strip()


def api_client() -> httpx.Client:
    return httpx.Client(
        base_url=API_URL, headers={"Authorization": f"Bearer {api_token()}"}, timeout=30, verify=str(CA_FILE)
    )


def backups() -> list[Path]:
    """The stack's backup files, oldest first (their names start with the UTC time)."""
    return sorted(BACKUP_DIR.glob("*.dump"))


def read_status() -> dict[str, Any]:
    return json.loads(STATUS_FILE.read_text())


def container_identity(client: docker.DockerClient, name: str) -> tuple[str, str, str]:
    """ID, start time and image of a container: all three stay the same when nothing touched it."""
    container = client.containers.get(name)
    return container.id, container.attrs["State"]["StartedAt"], container.attrs["Config"]["Image"]


@dataclass(frozen=True)
class BalancedServer:
    """The load balancer's view of the API instance (HAProxy's `show servers state`)."""

    address: str
    running: bool
    last_check_passed: bool


def balanced_api_server(client: docker.DockerClient) -> BalancedServer:
    """Ask HAProxy through its runtime API on the proxy container's loopback (haproxy.cfg.j2)."""
    command = 'exec 3<>/dev/tcp/127.0.0.1/9999 && printf "%s\\n" "$1" >&3 && cat <&3'
    result = client.containers.get(PROXY_CONTAINER).exec_run(
        ["bash", "-c", command, "runtime", "show servers state api"]
    )
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.decode().splitlines()]
    fields = next(line for line in lines if line[1:2] == ["api"] and line[3] == "api1")
    # srv_addr, srv_op_state (2: running), srv_check_result (3: passed)
    return BalancedServer(address=fields[4], running=fields[5] == "2", last_check_passed=fields[11] == "3")


def container_address(client: docker.DockerClient, name: str) -> str:
    return client.containers.get(name).attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


def wait_for(predicate: Callable[[], bool], timeout: float, message: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def remove_stack(client: docker.DockerClient) -> None:
    """Remove what the tests' stack left behind: only objects whose names start with mn_bkp."""
    for container in client.containers.list(all=True, filters={"name": PREFIX}):
        if container.name.startswith(PREFIX):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": PREFIX}):
        if volume.name.startswith(PREFIX):
            volume.remove(force=True)
    for network in client.networks.list(filters={"name": PREFIX}):
        if network.name.startswith(PREFIX):
            network.remove()
    # By tag: the same image may carry another stack's tag (stacks built from the same code share it).
    for repository in (API_IMAGE_NAME, API_BUILD_CACHE_IMAGE):
        for image in client.images.list(name=repository):
            for tag in image.tags:
                if tag.startswith(f"{repository}:"):
                    client.images.remove(tag)


@dataclass(frozen=True)
class DockerLeftovers:
    """What Docker keeps of a stack after it is gone: anonymous volumes no container uses any more,
    containers that are not running (exited, created, dead) and untagged images with no children."""

    volumes: list[str]
    containers: list[str]
    images: list[str]

    def counts(self) -> tuple[int, int, int]:
        return len(self.volumes), len(self.containers), len(self.images)


def docker_leftovers(client: docker.DockerClient) -> DockerLeftovers:
    """Every dangling volume, stopped container and dangling image on the daemon."""
    return DockerLeftovers(
        volumes=sorted(volume.name for volume in client.volumes.list(filters={"dangling": True})),
        containers=sorted(
            container.id
            for status in ("exited", "created", "dead")
            for container in client.containers.list(all=True, filters={"status": status})
        ),
        images=sorted(image.id for image in client.images.list(filters={"dangling": True})),
    )


class DockerEventLog:
    """Docker's events from now on, read as they come: the daemon keeps only its last 256 events, far
    fewer than a test session makes."""

    def __init__(self) -> None:
        self.since = int(time.time())
        self._client = docker.from_env(timeout=None)
        self._stream = self._client.events(since=self.since, decode=True)
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # stop() closes the stream under the reader, which then ends with an error of its own.
        with contextlib.suppress(Exception):
            for event in self._stream:
                self.events.append(event)

    def stop(self) -> list[dict[str, Any]]:
        time.sleep(1)  # the events of the last actions are on their way
        self._stream.close()
        self._reader.join(timeout=10)
        self._client.close()
        return self.events


def stack_leftovers(client: docker.DockerClient, events: list[dict[str, Any]], since: int) -> DockerLeftovers:
    """The leftovers that the stack made, told apart by Docker's events from those of anyone else
    sharing the daemon: containers created with a name of the stack, the volumes those containers
    mounted, the images tagged into the stack's repositories, and the untagged intermediate stages of API
    builds (their label) made since the Unix time `since`."""
    containers: set[str] = set()
    volumes_of: dict[str, set[str]] = {}
    images: set[str] = set()
    for event in events:
        kind, action = event.get("Type"), event.get("Action", "")
        actor = event.get("Actor", {})
        attributes = actor.get("Attributes", {})
        if kind == "container" and action == "create" and attributes.get("name", "").startswith(PREFIX):
            containers.add(actor["ID"])
        elif kind == "volume" and action == "mount":
            volumes_of.setdefault(attributes.get("container", ""), set()).add(actor["ID"])
        elif kind == "image" and action == "tag" and attributes.get("name", "").startswith(f"{PREFIX}/"):
            images.add(actor["ID"])
    volumes = set().union(*(volumes_of.get(container, set()) for container in containers))
    now = docker_leftovers(client)
    builder_stages = {
        image.id
        for image in client.images.list(filters={"dangling": True, "label": BUILDER_STAGE_LABEL})
        if image.attrs.get("Created", "") >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))
    }
    return DockerLeftovers(
        volumes=sorted(volumes & set(now.volumes)),
        containers=sorted(containers & set(now.containers)),
        images=sorted((images & set(now.images)) | builder_stages),
    )
