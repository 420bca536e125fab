"""Proof that the test suite never touches a deployed default stack.

`make test` runs ``test_snapshot_of_the_default_stack`` first and
``test_default_stack_is_untouched`` last, around every other test. On a machine where a default stack
(``medical_notes_*``, /opt/medical-notes, port 8000) is deployed, both only read it: container, image,
volume and network IDs, container start times, the hash of its .env, and one document read through the
API (its SHA-256 is kept, never its content). On a machine without one (CI), the snapshot first deploys
a default stack marked with the label ``org.medical-notes.fixture=isolation-proof`` and stores a
document in it; the last test removes that stack again, and only when every object carries the mark.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import NotFound

from stack.support import DEFAULT_STACK, REPO, STACK_LABEL, http, run_playbook

SNAPSHOT = Path(os.environ.get("MN_ISOLATION_SNAPSHOT", REPO / ".cache" / "isolation" / "default-stack.json"))
FIXTURE_LABEL = ("org.medical-notes.fixture", "isolation-proof")
# The default stack as a user deploys it (role defaults), on the test inventory's single host.
FIXTURE_SETTINGS: dict[str, Any] = {
    "medical_notes_stack_name": DEFAULT_STACK.name,
    "medical_notes_test_stack": False,
    "medical_notes_api_port": DEFAULT_STACK.port,
    "medical_notes_extra_labels": {FIXTURE_LABEL[0]: FIXTURE_LABEL[1]},
}
FIXTURE_NOTE = {
    "title": "Isolation proof note",
    "content": "Subjective: written by the isolation proof. Assessment: must outlive the test suite.",
    "doc_type": "soap_note",
}


@pytest.fixture(scope="module")
def docker_client():
    client = docker.from_env(timeout=120)
    yield client
    client.close()


def default_objects(client: docker.DockerClient) -> dict[str, dict[str, Any]]:
    """Every Docker object with a default stack name that exists, with its identity and labels."""
    found: dict[str, dict[str, Any]] = {}
    for name in (
        DEFAULT_STACK.postgres_container,
        DEFAULT_STACK.api_container,
        DEFAULT_STACK.proxy_container,
    ):
        try:
            attrs = client.api.inspect_container(name)
        except NotFound:
            continue
        found[f"container {name}"] = {
            "id": attrs["Id"],
            "started": attrs["State"]["StartedAt"],
            "image": attrs["Image"],
            "labels": attrs["Config"]["Labels"] or {},
        }
    for name in DEFAULT_STACK.volumes:
        try:
            attrs = client.api.inspect_volume(name)
        except NotFound:
            continue
        found[f"volume {name}"] = {"id": attrs["CreatedAt"], "labels": attrs["Labels"] or {}}
    try:
        attrs = client.api.inspect_network(DEFAULT_STACK.network)
        found[f"network {DEFAULT_STACK.network}"] = {"id": attrs["Id"], "labels": attrs["Labels"] or {}}
    except NotFound:
        pass
    return found


def is_marked(item: dict[str, Any]) -> bool:
    """Deployed by this test: the fixture mark and the default stack's label."""
    labels = item["labels"]
    return labels.get(FIXTURE_LABEL[0]) == FIXTURE_LABEL[1] and labels.get(STACK_LABEL) == DEFAULT_STACK.name


def token_of_the_default_stack() -> str | None:
    """The generated token; None when the inventory sets one (it is then not on the host)."""
    path = DEFAULT_STACK.base_dir / "secrets" / "api_token"
    return path.read_text().strip() if path.is_file() else None


def default_ca() -> Path | None:
    """The default stack's generated CA; None for a plain-HTTP stack (TLS off, or an older release)."""
    return DEFAULT_STACK.ca_file if DEFAULT_STACK.ca_file.is_file() else None


def default_url() -> str:
    return DEFAULT_STACK.url if default_ca() else DEFAULT_STACK.url.replace("https://", "http://", 1)


def read_document(document_id: int, token: str) -> str:
    status, document = http(
        "GET", f"{default_url()}/documents/{document_id}", token=token, cafile=default_ca()
    )
    assert status == 200, f"document {document_id} of the default stack: HTTP {status}"
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def env_hash() -> str | None:
    env_file = DEFAULT_STACK.base_dir / ".env"
    return hashlib.sha256(env_file.read_bytes()).hexdigest() if env_file.is_file() else None


def test_snapshot_of_the_default_stack(docker_client: docker.DockerClient) -> None:
    objects = default_objects(docker_client)
    # A marked stack left by an earlier, interrupted run is this test's own: it is used (and removed) again.
    fixture = (not objects and not DEFAULT_STACK.base_dir.exists()) or (
        bool(objects) and all(is_marked(item) for item in objects.values())
    )
    if fixture:
        deploy = run_playbook("site.yml", extra_vars=FIXTURE_SETTINGS)
        assert deploy.returncode == 0, deploy.tail()
        objects = default_objects(docker_client)
    token = token_of_the_default_stack()
    document_id = None
    if fixture:
        assert token is not None
        status, created = http(
            "POST", f"{default_url()}/documents", token=token, body=FIXTURE_NOTE, cafile=default_ca()
        )
        assert status == 201, created
        document_id = created["id"]
    elif token is not None:
        status, documents = http("GET", f"{default_url()}/documents", token=token, cafile=default_ca())
        if status == 200 and documents:
            document_id = documents[0]
    document = None
    if document_id is not None and token is not None:
        document = {"id": document_id, "sha256": read_document(document_id, token)}
    snapshot = {"fixture": fixture, "objects": objects, "env_sha256": env_hash(), "document": document}
    SNAPSHOT.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    SNAPSHOT.write_text(json.dumps(snapshot, indent=2))
    SNAPSHOT.chmod(0o600)
    print(f"default stack {'deployed as fixture' if fixture else 'found'}: {sorted(objects)}")


def test_default_stack_is_untouched(docker_client: docker.DockerClient) -> None:
    assert SNAPSHOT.is_file(), f"no snapshot at {SNAPSHOT}: test_snapshot_of_the_default_stack runs first"
    snapshot = json.loads(SNAPSHOT.read_text())

    assert default_objects(docker_client) == snapshot["objects"]
    assert env_hash() == snapshot["env_sha256"]
    if snapshot["document"] is not None:
        token = token_of_the_default_stack()
        assert token is not None
        assert read_document(snapshot["document"]["id"], token) == snapshot["document"]["sha256"]
    SNAPSHOT.unlink()

    if snapshot["fixture"]:
        marked = all(is_marked(item) for item in snapshot["objects"].values())
        assert marked, "the default stack is not (only) the one this test deployed: left in place"
        # The fixture goes whole, its backups included.
        removal = {"medical_notes_clean_confirm": "yes", "medical_notes_clean_keep_backups": False}
        clean = run_playbook("playbooks/clean.yml", extra_vars={**FIXTURE_SETTINGS, **removal})
        assert clean.returncode == 0, clean.tail()
        assert default_objects(docker_client) == {}
