"""The base_images role: reuse of built images, and the auto mode without a registry."""

from __future__ import annotations

import re

import docker

from images.support import BaseImages, reported_images, run_images_playbook

RECIPE_LABEL = "org.medical-notes.recipe-sha256"


def changed_count(output: str) -> int:
    found = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert found, output[-3000:]
    return int(found.group(1))


def test_second_run_reuses_the_built_images(base_images: BaseImages) -> None:
    result = run_images_playbook("-e", "base_images_source=debootstrap")
    assert result.returncode == 0, result.stdout[-3000:]
    assert changed_count(result.stdout) == 0
    assert reported_images(result.stdout) == (base_images.python, base_images.postgres)


def test_built_images_carry_their_recipe_hash(
    docker_client: docker.DockerClient, base_images: BaseImages
) -> None:
    for name in (base_images.python, base_images.postgres, "medical-notes/debian:bookworm"):
        labels = docker_client.images.get(name).attrs["Config"]["Labels"] or {}
        assert re.fullmatch(r"[0-9a-f]{64}", labels.get(RECIPE_LABEL, "")), name


def test_auto_mode_provides_usable_images(docker_client: docker.DockerClient, base_images: BaseImages):
    result = run_images_playbook()
    assert result.returncode == 0, result.stdout[-3000:]
    python_image, postgres_image = reported_images(result.stdout)
    # Pulled images when a registry answers, otherwise the mirror-built ones: they exist either way.
    docker_client.images.get(python_image)
    docker_client.images.get(postgres_image)
    if "Registry unavailable" in result.stdout:
        assert (python_image, postgres_image) == (base_images.python, base_images.postgres)


def test_only_an_image_whose_recipe_changed_is_rebuilt(
    docker_client: docker.DockerClient, base_images: BaseImages
) -> None:
    # A private name for the Python base, so that the shared image stays untouched.
    image = "mn-imgtest-python-base:recipe"
    name = ("-e", f"base_images_python_build_image={image}", "-e", "base_images_source=debootstrap")
    changed_packages = ("-e", '{"base_images_python_packages": ["python3", "python3-venv", "libexpat1"]}')
    try:
        first = run_images_playbook(*name)
        assert first.returncode == 0, first.stdout[-3000:]
        original_label = docker_client.images.get(image).attrs["Config"]["Labels"][RECIPE_LABEL]

        changed = run_images_playbook(*name, *changed_packages)
        assert changed.returncode == 0, changed.stdout[-3000:]
        assert changed_count(changed.stdout) == 1  # the Python base only; rootfs and PostgreSQL reused
        assert docker_client.images.get(image).attrs["Config"]["Labels"][RECIPE_LABEL] != original_label

        again = run_images_playbook(*name, *changed_packages)
        assert changed_count(again.stdout) == 0
    finally:
        docker_client.images.remove(image, force=True)
