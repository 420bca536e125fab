"""make stop stops every container of the stack and keeps the data; make run starts them again and
the service answers through the load balancer as soon as it reports done."""

from __future__ import annotations

import docker
import httpx

from ops.support import (
    API_CONTAINER,
    BACKUP_CONTAINER,
    POSTGRES_CONTAINER,
    PROXY_CONTAINER,
    BalancedServer,
    balanced_api_server,
    container_address,
    documents_snapshot,
    run_playbook,
)

# In stopping order. The scheduled backups are optional (another test may have turned them off).
CONTAINERS = [PROXY_CONTAINER, API_CONTAINER, BACKUP_CONTAINER, POSTGRES_CONTAINER]


def states(client: docker.DockerClient) -> dict[str, str]:
    present = {container.name: container.status for container in client.containers.list(all=True)}
    return {name: present[name] for name in CONTAINERS if name in present}


def test_stop_then_run_brings_the_service_back_with_its_data(
    api: httpx.Client, docker_client: docker.DockerClient
) -> None:
    created = api.post("/documents", json={"title": "before the stop", "content": "S: stop and run"})
    assert created.status_code == 201, created.text
    documents = documents_snapshot()
    containers = list(states(docker_client))
    assert {PROXY_CONTAINER, API_CONTAINER, POSTGRES_CONTAINER} <= set(containers), containers

    stop = run_playbook("playbooks/stop.yml")

    assert stop.returncode == 0, stop.output[-4000:]
    assert states(docker_client) == dict.fromkeys(containers, "exited")
    # When each container stopped: the load balancer first, PostgreSQL last.
    finished = [docker_client.containers.get(name).attrs["State"]["FinishedAt"] for name in containers]
    assert finished == sorted(finished), dict(zip(containers, finished, strict=True))
    try:
        refused = api.get("/health")
    except httpx.TransportError:
        refused = None
    assert refused is None, refused

    run = run_playbook("playbooks/run.yml")

    assert run.returncode == 0, run.output[-4000:]
    assert states(docker_client) == dict.fromkeys(containers, "running")
    assert balanced_api_server(docker_client) == BalancedServer(
        address=container_address(docker_client, API_CONTAINER), running=True, last_check_passed=True
    )
    response = api.get(f"/documents/{created.json()['id']}")
    assert response.status_code == 200, (response.headers.get("content-type"), response.text[:300])
    assert response.json() == created.json()
    assert documents_snapshot() == documents
    again = run_playbook("playbooks/run.yml")
    assert again.returncode == 0, again.output[-4000:]
    assert "changed=0" in again.text, again.output[-3000:]


def test_run_after_only_the_api_stopped_waits_for_the_load_balancer(
    api: httpx.Client, docker_client: docker.DockerClient
) -> None:
    docker_client.containers.get(API_CONTAINER).stop()

    run = run_playbook("playbooks/run.yml")

    assert run.returncode == 0, run.output[-4000:]
    assert balanced_api_server(docker_client) == BalancedServer(
        address=container_address(docker_client, API_CONTAINER), running=True, last_check_passed=True
    )
    for _ in range(10):
        response = api.get("/health")
        assert response.status_code == 200, (response.headers.get("content-type"), response.text[:300])
