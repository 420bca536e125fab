"""The test stack, deployed once for the lifecycle tests and destroyed afterwards (real Docker)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from stack.support import Stack, configured_test_stack, probe_settings, run_playbook


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=120)
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def deployed_stack() -> Iterator[Stack]:
    """The test inventory's stack, deployed with the probe settings; destroyed at the end."""
    stack = configured_test_stack()
    deploy = run_playbook("site.yml", extra_vars=probe_settings(stack))
    assert deploy.returncode == 0, deploy.tail()
    yield stack
    destroy = run_playbook("molecule/default/destroy.yml")
    assert destroy.returncode == 0, destroy.tail()
