"""The deployed test stack through its lifecycle: check mode, settings removed from the inventory,
the daemon stopped under it, and a destroy that finds objects that are not the test's."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound

from stack.support import (
    PROBE_BASE_URL,
    PROBE_ENV,
    PROBE_LABEL,
    STACK_LABEL,
    TEST_LABEL,
    Stack,
    configured_test_stack,
    http,
    run_playbook,
)

DOCKERD_PIDFILE = Path("/var/run/docker.pid")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def container_state(client: docker.DockerClient, stack: Stack) -> dict[str, tuple[str, str]]:
    """ID and start time of both containers: a recreated or restarted container changes them."""
    state = {}
    for name in (stack.postgres_container, stack.api_container):
        attrs = client.api.inspect_container(name)
        state[name] = (attrs["Id"], attrs["State"]["StartedAt"])
    return state


def assert_serves(stack: Stack) -> None:
    status, health = http("GET", f"{stack.url}/health", cafile=stack.ca_file)
    assert (status, health["status"]) == (200, "ok"), health
    status, documents = http("GET", f"{stack.url}/documents", token=stack.token(), cafile=stack.ca_file)
    assert status == 200
    assert len(documents) > 0


def task_output(run_output: str, task: str) -> str:
    return run_output.split(f"TASK [{task}]")[1].split("TASK [")[0]


def test_check_mode_reports_a_change_and_makes_none(
    deployed_stack: Stack, docker_client: docker.DockerClient
) -> None:
    before = container_state(docker_client, deployed_stack)
    env_file = deployed_stack.base_dir / ".env"
    env_before = sha256_of(env_file)

    run = run_playbook("site.yml", "--check", "--diff", extra_vars={"medical_notes_log_level": "debug"})

    assert run.returncode == 0, run.tail()
    assert run.failed == 0
    assert run.changed >= 2, run.tail()  # .env and the API container would change
    api_task = task_output(run.output, "medical_notes_api : Run the API container")
    assert "changed: [localhost]" in api_task, api_task
    assert container_state(docker_client, deployed_stack) == before
    assert sha256_of(env_file) == env_before
    api_env = docker_client.api.inspect_container(deployed_stack.api_container)["Config"]["Env"]
    assert "LOG_LEVEL=debug" not in api_env


def test_check_mode_of_switching_tls_off_reports_it_and_changes_nothing(
    deployed_stack: Stack, docker_client: docker.DockerClient
) -> None:
    """Check mode cannot ask the way in the new way (plain HTTP on a port the TLS proxy still holds):
    it reports the switch and does not wait for an answer that cannot come."""
    before = container_state(docker_client, deployed_stack)
    proxy_before = docker_client.api.inspect_container(deployed_stack.proxy_container)["Id"]

    run = run_playbook("site.yml", "--check", extra_vars={"medical_notes_tls_enabled": False})

    assert run.returncode == 0, run.tail()
    assert run.failed == 0
    removal = task_output(run.output, "medical_notes_lb : Remove the TLS proxy of an earlier deploy")
    assert "changed: [localhost]" in removal, removal
    assert container_state(docker_client, deployed_stack) == before
    assert docker_client.api.inspect_container(deployed_stack.proxy_container)["Id"] == proxy_before
    assert_serves(deployed_stack)


def test_removed_settings_leave_the_containers(
    deployed_stack: Stack, docker_client: docker.DockerClient
) -> None:
    api = docker_client.api.inspect_container(deployed_stack.api_container)
    postgres = docker_client.api.inspect_container(deployed_stack.postgres_container)
    assert "=".join(PROBE_ENV) in api["Config"]["Env"]
    assert f"LLM_BASE_URL={PROBE_BASE_URL}" in api["Config"]["Env"]
    assert api["Config"]["Labels"].get(PROBE_LABEL[0]) == PROBE_LABEL[1]
    assert postgres["HostConfig"]["PortBindings"].get("5432/tcp")

    # The same inventory without the probe settings, as after deleting them from group_vars.
    run = run_playbook("site.yml")
    assert run.returncode == 0, run.tail()

    api = docker_client.api.inspect_container(deployed_stack.api_container)
    postgres = docker_client.api.inspect_container(deployed_stack.postgres_container)
    assert not [item for item in api["Config"]["Env"] if item.startswith((PROBE_ENV[0], "LLM_BASE_URL="))]
    assert PROBE_LABEL[0] not in api["Config"]["Labels"]
    assert PROBE_LABEL[0] not in postgres["Config"]["Labels"]
    assert not postgres["HostConfig"]["PortBindings"]
    assert api["Config"]["Labels"][STACK_LABEL] == deployed_stack.name
    assert api["Config"]["Labels"][TEST_LABEL] == "true"
    assert_serves(deployed_stack)


# What `make deploy FAST=1` sets (Makefile): the opt-in Mitogen strategy of plugins/strategy.
FAST = {
    "ANSIBLE_STRATEGY_PLUGINS": str(Path(__file__).resolve().parents[2] / "plugins" / "strategy"),
    "ANSIBLE_STRATEGY": "mitogen_linear",
}


def test_a_rerun_changes_nothing_with_the_default_and_the_fast_strategy(
    deployed_stack: Stack, docker_client: docker.DockerClient
) -> None:
    """Both ways to run site.yml converge to the same stack: a re-run of either changes nothing.
    Runs after the test above, which left the stack as the inventory describes it."""
    before = container_state(docker_client, deployed_stack)

    default = run_playbook("site.yml", env={"ANSIBLE_STRATEGY": "linear"})
    fast = run_playbook("site.yml", env=FAST)

    assert default.returncode == 0, default.tail()
    assert default.changed == 0, default.tail()
    assert fast.returncode == 0, fast.tail()
    assert fast.changed == 0, fast.tail()
    assert "mitogen" not in default.output.lower()
    assert "Mitogen is not installed" not in fast.output
    assert container_state(docker_client, deployed_stack) == before
    assert_serves(deployed_stack)


def test_a_rerun_seeds_and_indexes_again_what_is_gone(
    deployed_stack: Stack, docker_client: docker.DockerClient
) -> None:
    """The state check asks the running API container (GET /status): no documents left and no index
    files make a re-run seed and index again, without replacing a container."""
    token, ca_file = deployed_stack.token(), deployed_stack.ca_file
    documents = f"{deployed_stack.url}/documents"
    status, document_ids = http("GET", documents, token=token, cafile=ca_file)
    assert status == 200
    assert document_ids
    for document_id in document_ids:
        deleted, _ = http("DELETE", f"{documents}/{document_id}", token=token, cafile=ca_file)
        assert deleted == 204
    index_dir = Path(docker_client.volumes.get(deployed_stack.volumes[1]).attrs["Mountpoint"])
    index_files = sorted(index_dir.iterdir())
    assert index_files
    for path in index_files:
        path.unlink()
    before = container_state(docker_client, deployed_stack)

    run = run_playbook("site.yml")

    assert run.returncode == 0, run.tail()
    assert "ok: [localhost]" in task_output(
        run.output, "medical_notes_api : Ask the API container for the state of the stack (documents, index)"
    )
    assert "changed: [localhost]" in task_output(run.output, "medical_notes_api : Seed the shipped notes")
    assert "changed: [localhost]" in task_output(run.output, "medical_notes_api : Build the guideline index")
    assert run.changed == 2, run.tail()
    assert container_state(docker_client, deployed_stack) == before
    assert sorted(index_dir.iterdir()) == index_files
    assert_serves(deployed_stack)


def stop_the_daemon() -> None:
    """Stop dockerd the way a reboot or a crash does; live-restore keeps the containers running."""
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "stop", "docker.socket", "docker.service"], check=True, timeout=120)
        return
    pid = int(DOCKERD_PIDFILE.read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "dockerd did not stop within 90 s"
        time.sleep(0.2)


def wait_until_healthy(client: docker.DockerClient, stack: Stack, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    for name in (stack.postgres_container, stack.api_container):
        while client.api.inspect_container(name)["State"].get("Health", {}).get("Status") != "healthy":
            assert time.monotonic() < deadline, f"{name} did not report healthy within {timeout} s"
            time.sleep(1)


def test_run_starts_a_stopped_daemon_and_the_stack_answers(
    deployed_stack: Stack, docker_client: docker.DockerClient
) -> None:
    # Without live-restore stopping the daemon would stop every container on the host.
    assert docker_client.info()["LiveRestoreEnabled"], "run make docker first: live-restore is off"
    # Docker before 23.0 does not resume the health checks of the containers it restores
    # (moby/moby#41871): a status other than healthy at the stop would stay as it is. The test
    # before this one removed the index, so the API may still be on its way back to healthy.
    wait_until_healthy(docker_client, deployed_stack)
    before = container_state(docker_client, deployed_stack)

    stop_the_daemon()
    daemon_down = subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False)
    assert daemon_down.returncode != 0

    run = run_playbook("playbooks/run.yml")

    assert run.returncode == 0, run.tail()
    client = docker.from_env(timeout=120)
    try:
        # Same containers, never restarted: live-restore kept them running while dockerd was down.
        assert container_state(client, deployed_stack) == before
    finally:
        client.close()
    assert_serves(deployed_stack)


@pytest.fixture
def foreign_stack(docker_client: docker.DockerClient):
    """Names of a test stack whose volumes someone else created: one labelled as a real stack's
    (no test label), one with no labels at all. Removed by the test's own cleanup afterwards."""
    stack = Stack(name=f"{configured_test_stack().name}_refuse", port=0)
    yield stack
    for name in stack.volumes:
        with contextlib.suppress(NotFound):
            docker_client.volumes.get(name).remove(force=True)


def test_destroy_refuses_objects_without_the_test_labels(
    docker_client: docker.DockerClient, foreign_stack: Stack
) -> None:
    postgres_volume, faiss_volume = foreign_stack.volumes
    docker_client.volumes.create(postgres_volume, labels={STACK_LABEL: foreign_stack.name})
    docker_client.volumes.create(faiss_volume)
    target = {"medical_notes_stack_name": foreign_stack.name}

    refused = run_playbook("molecule/default/destroy.yml", extra_vars=target)

    assert refused.returncode != 0
    assert (refused.changed, refused.failed) == (0, 1), refused.tail()
    assert "Refusing to remove anything" in refused.output
    assert {postgres_volume, faiss_volume} <= {v.name for v in docker_client.volumes.list()}

    # The same destroy removes what does carry the test stack's labels.
    for name in foreign_stack.volumes:
        docker_client.volumes.get(name).remove()
    docker_client.volumes.create(faiss_volume, labels={STACK_LABEL: foreign_stack.name, TEST_LABEL: "true"})

    removed = run_playbook("molecule/default/destroy.yml", extra_vars=target)

    assert removed.returncode == 0, removed.tail()
    assert faiss_volume not in {v.name for v in docker_client.volumes.list()}


def test_clean_adopts_unlabelled_objects_of_a_real_stack_only_when_told(
    docker_client: docker.DockerClient, foreign_stack: Stack
) -> None:
    """A stack deployed before labels existed: make clean refuses, and with
    medical_notes_clean_adopt_unlabelled removes its unlabelled objects."""
    postgres_volume, _ = foreign_stack.volumes
    docker_client.volumes.create(postgres_volume)
    real_stack = {
        "medical_notes_stack_name": foreign_stack.name,
        "medical_notes_test_stack": False,
        "medical_notes_clean_confirm": "yes",
    }

    refused = run_playbook("playbooks/clean.yml", extra_vars=real_stack)
    assert refused.returncode != 0
    assert "medical_notes_clean_adopt_unlabelled=true" in refused.output
    assert postgres_volume in {v.name for v in docker_client.volumes.list()}

    adopted = run_playbook(
        "playbooks/clean.yml", extra_vars={**real_stack, "medical_notes_clean_adopt_unlabelled": True}
    )
    assert adopted.returncode == 0, adopted.tail()
    assert postgres_volume not in {v.name for v in docker_client.volumes.list()}


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd hosts log to the journal")
def test_the_start_entry_point_rotates_a_large_daemon_log(tmp_path: Path) -> None:
    log = tmp_path / "dockerd.log"
    log.write_bytes(b"current\n" * 300_000)  # 2.3 MiB
    (tmp_path / "dockerd.log.1").write_text("previous\n")
    settings = {
        "docker_engine_log_file": str(log),
        "docker_engine_log_max_mb": 2,
        "docker_engine_log_keep": 2,
    }

    rotated = run_playbook("playbooks/docker-start.yml", extra_vars=settings)
    assert rotated.returncode == 0, rotated.tail()

    assert log.stat().st_size == 0
    assert (tmp_path / "dockerd.log.1").read_bytes() == b"current\n" * 300_000
    assert (tmp_path / "dockerd.log.2").read_text() == "previous\n"
    again = run_playbook("playbooks/docker-start.yml", extra_vars=settings)
    assert (again.returncode, again.changed) == (0, 0), again.tail()
