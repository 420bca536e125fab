"""The scheduled backup container: backups on its own schedule with retention, a failure visible in
the status file and the log, recovery, restarts, and removal when the schedule is turned off."""

from __future__ import annotations

import os
import re

import docker
import pytest
from docker.errors import NotFound

from ops.support import BACKUP_CONTAINER, BACKUP_DIR, DB_NAME, read_status, run_playbook, wait_for

BACKUP_NAME = re.compile(rf"^{DB_NAME}-\d{{8}}T\d{{6}}Z\.dump$")
SCHEDULE_PLAYBOOK = "tests/ops/backup_schedule.yml"


def managed_backups() -> list[str]:
    return sorted(path.name for path in BACKUP_DIR.glob("*.dump") if BACKUP_NAME.match(path.name))


def container_log(client: docker.DockerClient) -> str:
    return client.containers.get(BACKUP_CONTAINER).logs().decode()


def test_scheduled_backups_run_fail_visibly_recover_and_stop(
    stack: None, docker_client: docker.DockerClient
) -> None:
    seen: set[str] = set(managed_backups())
    run = run_playbook(SCHEDULE_PLAYBOOK, "medical_notes_backup_schedule=2", "medical_notes_backup_keep=3")
    assert run.returncode == 0, run.output[-4000:]
    container = docker_client.containers.get(BACKUP_CONTAINER)
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container.attrs["Config"]["User"] == "999:999"
    assert container.attrs["HostConfig"]["ReadonlyRootfs"]

    def new_backups() -> set[str]:
        seen.update(managed_backups())
        return seen - before

    before = set(seen)
    wait_for(lambda: len(new_backups()) >= 4, timeout=90, message="four scheduled backups")
    # Between a new file and the removal of the oldest, the directory briefly holds one more.
    wait_for(lambda: len(managed_backups()) == 3, timeout=10, message="retention to keep three")
    status = read_status()
    assert status["last_error"] is None
    assert (BACKUP_DIR / status["last_success_file"]).exists()
    assert "backup written" in container_log(docker_client)

    BACKUP_DIR.chmod(0o500)
    try:
        wait_for(lambda: read_status()["last_error"] is not None, timeout=30, message="a failed backup")
        failed = read_status()
        assert "Permission denied" in failed["last_error"]
        assert failed["last_attempt_at"] > failed["last_success_at"]
        assert failed["last_success_file"] in managed_backups()
        assert "backup FAILED" in container_log(docker_client)
    finally:
        BACKUP_DIR.chmod(0o700)
    wait_for(lambda: read_status()["last_error"] is None, timeout=30, message="the next backup to succeed")

    docker_client.containers.get(BACKUP_CONTAINER).restart(timeout=10)
    after_restart = read_status()["last_success_at"]
    wait_for(
        lambda: read_status()["last_success_at"] > after_restart,
        timeout=30,
        message="a backup after the container restarted",
    )

    run = run_playbook(SCHEDULE_PLAYBOOK, "medical_notes_backup_schedule=")
    assert run.returncode == 0, run.output[-4000:]
    with pytest.raises(NotFound):
        docker_client.containers.get(BACKUP_CONTAINER)
    assert os.listdir(BACKUP_DIR)
