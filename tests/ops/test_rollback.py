"""A deploy of new code backs the database up first and keeps the previous API image; make rollback
returns to it."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import docker
import httpx
import yaml

from ops.support import (
    API_CONTAINER,
    BACKUP_DIR,
    IMAGES_FILE,
    REPO,
    BalancedServer,
    balanced_api_server,
    container_address,
    documents_snapshot,
    run_playbook,
)

# What the role copies to the target to build the image (its medical_notes_source_paths).
BUILD_INPUTS = yaml.safe_load((REPO / "roles/medical_notes/defaults/main.yml").read_text())[
    "medical_notes_source_paths"
]


def changed_source(directory: Path) -> Path:
    """A copy of the build inputs with one harmless code change: the API image gets a new tag."""
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source, directory / name, ignore=shutil.ignore_patterns("__pycache__", "faiss_db")
            )
        else:
            shutil.copy2(source, directory / name)
    package = directory / "app" / "medical_notes" / "__init__.py"
    package.write_text(package.read_text() + f"\n# test_rollback: release {uuid.uuid4().hex}\n")
    return directory


def image_record() -> dict:
    return json.loads(IMAGES_FILE.read_text())


def test_upgrade_backs_up_first_and_rollback_returns_to_the_previous_image(
    api: httpx.Client, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    old_image = image_record()["current"]["image"]
    documents = documents_snapshot()
    backups_before = set(BACKUP_DIR.glob("*.dump"))

    upgrade = run_playbook("site.yml", f"medical_notes_source_dir={changed_source(tmp_path)}")

    assert upgrade.returncode == 0, upgrade.output[-6000:]
    new_backups = set(BACKUP_DIR.glob("*.dump")) - backups_before
    assert any(path.name.endswith("-pre-upgrade.dump") for path in new_backups), new_backups
    record = image_record()
    new_image = record["current"]["image"]
    assert new_image != old_image
    assert record["previous"]["image"] == old_image
    assert docker_client.containers.get(API_CONTAINER).attrs["Config"]["Image"] == new_image
    assert docker_client.images.get(old_image).id == record["previous"]["id"]

    rollback = run_playbook("playbooks/rollback.yml")

    assert rollback.returncode == 0, rollback.output[-6000:]
    assert f"The API now runs {old_image}" in rollback.text
    assert docker_client.containers.get(API_CONTAINER).attrs["Config"]["Image"] == old_image
    # The replaced container is balanced again (its new address, its last check passed).
    assert balanced_api_server(docker_client) == BalancedServer(
        address=container_address(docker_client, API_CONTAINER), running=True, last_check_passed=True
    )
    assert api.get("/health").json()["status"] == "ok"
    record = image_record()
    assert record["current"]["image"] == old_image
    assert record["previous"]["image"] == new_image
    assert docker_client.images.get(new_image)
    assert any(path.name.endswith("-pre-rollback.dump") for path in BACKUP_DIR.glob("*.dump"))
    assert documents_snapshot() == documents
