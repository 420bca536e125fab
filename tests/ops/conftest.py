"""The operations tests deploy one stack of their own (every name starts with mn_bkp, port 18300,
base directory /opt/mn-bkp) through tests/ops/inventory, and remove it at the end."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import docker
import httpx
import pytest

from ops.support import (
    API_CONTAINER,
    BACKUP_DIR,
    BASE_DIR,
    DockerEventLog,
    api_client,
    docker_leftovers,
    remove_stack,
    run_playbook,
    stack_leftovers,
)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=300)
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def stack(docker_client: docker.DockerClient) -> Iterator[None]:
    """The mn_bkp stack, deployed by site.yml like a user's, removed by playbooks/clean.yml."""
    events = DockerEventLog()
    before = docker_leftovers(docker_client)
    deploy = run_playbook("site.yml")
    assert deploy.returncode == 0, deploy.output[-6000:]
    assert docker_client.containers.get(API_CONTAINER).status == "running"
    yield
    if os.environ.get("MN_BKP_KEEP_STACK", "") == "1":
        events.stop()
        return
    clean = run_playbook("playbooks/clean.yml", "medical_notes_clean_confirm=yes")
    backups_after_clean = sorted(path.name for path in BACKUP_DIR.glob("*.dump"))
    remaining = sorted(path.name for path in BASE_DIR.iterdir()) if BASE_DIR.exists() else []
    # Before remove_stack, which would hide them: what the deploys, backups (one-shot and scheduled),
    # restores, the upgrade, the rollback and the clean left on the daemon.
    left = stack_leftovers(docker_client, events.stop(), since=events.since)
    after = docker_leftovers(docker_client)
    print(f"stack leftovers {left.counts()}; daemon-wide before {before.counts()}, after {after.counts()}")
    remove_stack(docker_client)
    shutil.rmtree(BASE_DIR, ignore_errors=True)
    assert clean.returncode == 0, clean.output[-4000:]
    # make clean removes the stack and its files but keeps the backups (and the stack marker beside
    # them, so the next deploy owns the directory): a clean by mistake can be undone.
    assert backups_after_clean, "clean removed the backups"
    assert remaining == ["backups", "stack.json"], remaining
    # Nothing left behind: no anonymous volume, stopped container or untagged image of the stack.
    # The daemon-wide counts (dangling volumes, stopped containers, dangling images) are in the
    # message; others sharing the daemon may change them, so only the stack's own are asserted.
    assert left.counts() == (0, 0, 0), (
        f"left behind by the stack: {left}; daemon-wide before {before.counts()}, after {after.counts()}"
    )


@pytest.fixture
def api(stack: None) -> Iterator[httpx.Client]:
    with api_client() as client:
        yield client
