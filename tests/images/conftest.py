"""Fixtures for the container image tests: real Docker, real images, real PostgreSQL.

Everything these tests create is named ``mn-imgtest-*`` and removed again; the base images built by the
base_images role (``medical-notes/*``) are product images and stay, so later runs reuse them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

import docker
import pytest
from docker.errors import NotFound

from images.support import (
    APP_IMAGE,
    NETWORK,
    AppImage,
    BaseImages,
    PostgresServer,
    build_context,
    remove_test_resources,
    reported_images,
    run_images_playbook,
)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=300)
    client.ping()
    remove_test_resources(client)
    yield client
    remove_test_resources(client)
    if os.environ.get("MN_IMGTEST_KEEP_IMAGE", "") != "1":
        with contextlib.suppress(NotFound):
            client.images.remove(APP_IMAGE, force=True)
    client.close()


@pytest.fixture(scope="session")
def base_images(docker_client: docker.DockerClient) -> BaseImages:
    """Both base images built from the Debian mirror through the role (reused when their recipe holds)."""
    result = run_images_playbook("-e", "base_images_source=debootstrap")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    python_image, postgres_image = reported_images(result.stdout)
    return BaseImages(python=python_image, postgres=postgres_image)


@pytest.fixture(scope="session")
def app_image(base_images: BaseImages, tmp_path_factory: pytest.TempPathFactory) -> AppImage:
    """The API image built on the mirror-built Python base, as `docker build` does it."""
    context = tmp_path_factory.mktemp("app-build-context")
    extra_ca = build_context(context)
    # The CA must be readable after the context is gone: the content tests look for it in the image.
    kept_ca = None
    if extra_ca is not None:
        kept_ca = tmp_path_factory.mktemp("build-ca") / "extra-ca.crt"
        shutil.copy2(extra_ca, kept_ca)
    result = subprocess.run(
        ["docker", "build", "--build-arg", f"BASE_IMAGE={base_images.python}", "-t", APP_IMAGE, str(context)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    return AppImage(tag=APP_IMAGE, extra_ca=kept_ca)


@pytest.fixture(scope="session")
def network(docker_client: docker.DockerClient):
    return docker_client.networks.create(NETWORK, driver="bridge")


@pytest.fixture(scope="session")
def postgres(
    docker_client: docker.DockerClient, base_images: BaseImages, network
) -> Iterator[PostgresServer]:
    server = PostgresServer(docker_client, base_images.postgres)
    server.start()
    yield server
    server.remove()
