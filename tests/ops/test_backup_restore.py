"""make backup and make restore on a deployed stack: the file, its checksum, the status file, an exact
restore, and every refusal leaving the data and the containers as they were."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import docker
import httpx
import pytest

from ops.support import (
    API_CONTAINER,
    BACKUP_DIR,
    DB_NAME,
    STATE_DIR,
    STATUS_FILE,
    BalancedServer,
    balanced_api_server,
    container_address,
    container_identity,
    databases,
    documents_snapshot,
    run_playbook,
)

BACKUP_NAME = re.compile(rf"^{DB_NAME}-\d{{8}}T\d{{6}}Z\.dump$")
NOTES = [
    {
        "title": "Follow-up: type 2 diabetes",
        "content": "Subjective: feels well, no hypoglycaemia. Objective: HbA1c 7.9 %. "
        "Assessment: suboptimal control. Plan: metformin 1000 mg twice daily, review in 3 months.",
        "doc_type": "soap_note",
        "metadata": {"clinic": "north", "codes": ["E11.9"], "visit": {"number": 3, "remote": False}},
    },
    {
        "title": "Asthma review — Zoë",
        "content": "S: night cough twice a week. O: peak flow 78 % of best. A: partly controlled asthma. "
        "P: step up to low-dose ICS-formoterol; inhaler technique checked.",
        "doc_type": "soap_note",
        "metadata": {},
    },
    {
        "title": "Hypertension check",
        "content": "Subjective: headaches in the morning.\nObjective: BP 152/96 mmHg.\n"
        "Assessment: stage 2 hypertension.\nPlan: amlodipine 5 mg daily; home readings.",
        "doc_type": "progress_note",
        "metadata": {"author": "dr-b", "tags": ["bp", "follow-up"]},
    },
    {
        "title": "Lab result call",
        "content": "Potassium 5.9 mmol/L on repeat; advised to stop the supplement; ECG booked.",
        "doc_type": "phone_note",
        "metadata": {"urgent": True, "value": 5.9},
    },
]


def take_backup(*extra_vars: str) -> Path:
    run = run_playbook("playbooks/backup.yml", *extra_vars)
    assert run.returncode == 0, run.output[-4000:]
    found = re.search(r"Backup written: (\S+\.dump)", run.text)
    assert found, run.output[-3000:]
    return Path(found.group(1))


def managed_backups() -> list[Path]:
    return sorted(path for path in BACKUP_DIR.glob("*.dump") if BACKUP_NAME.match(path.name))


def restore(path: Path, *extra_vars: str):
    return run_playbook("playbooks/restore.yml", f"medical_notes_restore_file={path}", *extra_vars)


def stack_state(client: docker.DockerClient) -> tuple:
    """Everything a refused restore must leave as it was."""
    return documents_snapshot(), databases(), container_identity(client, API_CONTAINER)


def test_backup_writes_a_private_checked_file_and_the_status(stack: None) -> None:
    path = take_backup()

    assert path.parent == BACKUP_DIR
    assert BACKUP_NAME.match(path.name), path.name
    assert BACKUP_DIR.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    checksum = Path(f"{path}.sha256")
    assert checksum.stat().st_mode & 0o777 == 0o600
    assert checksum.read_text() == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
    listing = subprocess.run(["pg_restore", "--list", str(path)], capture_output=True, text=True, check=False)
    if listing.returncode == 0:  # the controller has pg_restore (make test-app installs it)
        assert "TABLE DATA public documents" in listing.stdout

    status = json.loads(STATUS_FILE.read_text())
    assert set(status) == {"last_success_at", "last_success_file", "last_attempt_at", "last_error"}
    assert status["last_success_file"] == path.name
    assert status["last_error"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", status["last_success_at"])
    assert STATE_DIR.stat().st_mode & 0o777 == 0o755
    assert STATUS_FILE.stat().st_mode & 0o777 == 0o644
    # The API (UID 10001) reads the same file through its read-only mount.
    seen_by_api = subprocess.run(
        ["docker", "exec", API_CONTAINER, "sh", "-c", 'cat "$BACKUP_STATUS_FILE"'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(seen_by_api.stdout) == status


def test_restore_brings_back_exactly_what_was_backed_up(
    api: httpx.Client, docker_client: docker.DockerClient
) -> None:
    created = []
    for note in NOTES:
        response = api.post("/documents", json=note)
        assert response.status_code == 201, response.text
        created.append(response.json())
    expected = documents_snapshot()
    path = take_backup()

    for document in created[:2]:
        assert api.delete(f"/documents/{document['id']}").status_code == 204
    assert (
        api.put(f"/documents/{created[2]['id']}", json={"title": "edited after the backup"}).status_code
        == 200
    )
    assert (
        api.post("/documents", json={"title": "written after the backup", "content": "S: new"}).status_code
        == 201
    )
    assert documents_snapshot() != expected

    run = restore(path, "medical_notes_restore_confirm=yes")

    assert run.returncode == 0, run.output[-5000:]
    # "Healthy" means the load balancer balances the restarted API again: HAProxy sends requests to
    # its current address and its last health check passed (else the next requests get its 503).
    assert balanced_api_server(docker_client) == BalancedServer(
        address=container_address(docker_client, API_CONTAINER), running=True, last_check_passed=True
    )
    # Read right away through the published port, every document a few times.
    for document in created * 3:
        response = api.get(f"/documents/{document['id']}")
        # Who answered matters when this fails: the proxy (HTML) or the API (JSON detail).
        assert response.status_code == 200, (response.headers.get("content-type"), response.text[:300])
        assert response.json() == document
    assert f"Documents before: {len(expected) - 1}, after: {len(expected)}" in run.text
    assert documents_snapshot() == expected
    kept = re.search(rf"kept in the database ({DB_NAME}_before_restore_\d{{8}}_\d{{6}})", run.text)
    assert kept, run.output[-3000:]
    assert kept.group(1) in databases()
    assert f"{DB_NAME}_restore" not in databases()
    # The identity sequence came back too: a new note gets a new id.
    response = api.post("/documents", json={"title": "after the restore", "content": "S: ok"})
    assert response.status_code == 201
    assert response.json()["id"] > max(row["id"] for row in expected)


def test_restore_without_confirmation_changes_nothing(
    api: httpx.Client, docker_client: docker.DockerClient
) -> None:
    before = stack_state(docker_client)

    run = restore(managed_backups()[-1])

    assert run.returncode != 0
    assert "Nothing was changed. Confirm with CONFIRM=yes" in run.text
    assert stack_state(docker_client) == before


@pytest.mark.parametrize("damage", ["one-byte-changed", "truncated"])
def test_damaged_backup_is_refused_and_the_data_stays(
    damage: str, api: httpx.Client, docker_client: docker.DockerClient
) -> None:
    original = managed_backups()[-1]
    damaged = BACKUP_DIR / f"copy-{damage}.dump"
    shutil.copy2(original, damaged)
    shutil.copy2(f"{original}.sha256", f"{damaged}.sha256")
    content = bytearray(damaged.read_bytes())
    if damage == "truncated":
        del content[len(content) // 2 :]
    else:
        content[len(content) // 2] ^= 0x01
    damaged.write_bytes(bytes(content))
    before = stack_state(docker_client)
    try:
        run = restore(damaged, "medical_notes_restore_confirm=yes")
    finally:
        damaged.unlink()
        Path(f"{damaged}.sha256").unlink()

    assert run.returncode != 0
    assert (
        f"Backup {damaged} is damaged or truncated: its SHA-256 does not match {damaged}.sha256; "
        "nothing was changed." in run.text
    ), run.output[-3000:]
    assert stack_state(docker_client) == before


def test_retention_keeps_the_newest_backups_only(stack: None) -> None:
    take_backup()
    take_backup()
    foreign = BACKUP_DIR / "copied-by-hand.dump"
    foreign.write_bytes(b"not ours")
    before = managed_backups()
    assert len(before) >= 3

    newest = take_backup("medical_notes_backup_keep=2")

    assert managed_backups() == [before[-1], newest]
    for path in before[:-1]:
        assert not Path(f"{path}.sha256").exists()
    assert foreign.exists(), "retention removed a file it did not write"
    foreign.unlink()
