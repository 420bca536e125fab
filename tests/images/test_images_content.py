"""What the final API image contains (and must not contain), and what its configuration promises."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from images.support import REPO, VENV_BIN, AppImage

SMOKE_SCRIPT = Path(__file__).with_name("image_smoke.py")
# docs/images.md explains the budget and what each layer holds.
MAX_IMAGE_BYTES = 250_000_000
SITE_PACKAGES = re.compile(r"^/opt/venv/lib/python3\.\d+/site-packages/")
# Removed from the virtualenv because the service never imports them (Dockerfile, builder stage).
UNUSED_PACKAGES = (
    "fhir/resources/STU3/",
    "numpy/distutils/",
    "numpy/random/",
    "numpy/fft/",
    "numpy/polynomial/",
    "numpy/ma/",
    "numpy/testing/",
    "numpy/_core/_simd.",
    "pip/",
    "setuptools/",
)
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.DOTALL)
BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "make", "ld", "as", "strip", "objcopy", "pip", "pip3")


def pem_bodies(data: bytes) -> set[bytes]:
    return {b"".join(match.split()) for match in PEM_BLOCK.findall(data)}


@pytest.fixture(scope="module")
def image_archive(
    docker_client: docker.DockerClient, app_image: AppImage, tmp_path_factory
) -> Iterator[Path]:
    """The image's file system as a tar archive (docker export of a created, never started container)."""
    container = docker_client.containers.create(app_image.tag)
    archive = tmp_path_factory.mktemp("image-export") / "rootfs.tar"
    try:
        with archive.open("wb") as stream:
            for chunk in container.export():
                stream.write(chunk)
    finally:
        container.remove(force=True)
    yield archive
    archive.unlink()


def image_entries(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {"/" + member.name.removeprefix("./").lstrip("/"): member for member in tar}


def regular_files(archive: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile():
                yield "/" + member.name.removeprefix("./").lstrip("/"), tar.extractfile(member).read()


def run_in_image(client: docker.DockerClient, image: str, script: str) -> str:
    output = client.containers.run(image, ["-c", script], entrypoint="/bin/sh", remove=True)
    return output.decode()


def test_no_build_tools_or_pip_in_the_final_image(docker_client: docker.DockerClient, app_image: AppImage):
    found = run_in_image(
        docker_client,
        app_image.tag,
        "for tool in " + " ".join(BUILD_TOOLS) + '; do command -v "$tool" || true; done',
    )
    assert found.strip() == ""
    packages = run_in_image(docker_client, app_image.tag, "dpkg-query -W -f='${Package}\\n'").split()
    unwanted = [
        name
        for name in packages
        if name.endswith("-dev")
        or name in {"binutils", "build-essential", "gcc", "g++", "make", "perl", "postgresql-client-common"}
        # gcc-12-base only holds the runtime library's copyright files; gcc-12, cpp-12 are compilers
        or (name.startswith(("gcc-", "cpp-", "g++-")) and not name.endswith("-base"))
    ]
    assert unwanted == []


def test_no_build_ca_tests_or_env_files_in_the_final_image(image_archive: Path, app_image: AppImage) -> None:
    paths = list(image_entries(image_archive))
    assert [p for p in paths if "build-ca" in p or p.endswith("extra-ca.crt")] == []
    assert [p for p in paths if Path(p).name == ".env" or Path(p).name.startswith(".env.")] == []
    assert [p for p in paths if p.startswith("/app/") and "/tests/" in p + "/"] == []
    assert [p for p in paths if re.search(r"/site-packages/[^/]+/(.+/)?tests/", p)] == []
    assert not any(p.startswith("/app/medical_notes") and "/.pytest_cache" in p for p in paths)

    if app_image.extra_ca is None:
        pytest.skip("the build used no extra CA")
    # Certificates of the extra CA that the image's own trust stores do not ship are site specific
    # (e.g. the TLS-intercepting proxy): none of them may appear in any file of the image.
    shipped: set[bytes] = set()
    for path, content in regular_files(image_archive):
        if path.endswith((".crt", ".pem")):
            shipped |= pem_bodies(content)
    site_specific = pem_bodies(app_image.extra_ca.read_bytes()) - shipped
    needles = []
    for body in site_specific:
        needles.append(body[:64])
        needles.append(base64.b64decode(body)[:256])
    leaked = [path for path, content in regular_files(image_archive) if any(n in content for n in needles)]
    assert leaked == []


def test_history_mentions_no_build_ca_or_secrets(app_image: AppImage) -> None:
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", app_image.tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for word in ("build-ca", "extra-ca", "PIP_CERT", "PIP_INDEX_URL", "binutils", "/.env", " .env"):
        assert word not in history, word


def test_image_configuration(docker_client: docker.DockerClient, app_image: AppImage) -> None:
    config = docker_client.images.get(app_image.tag).attrs["Config"]
    health = config["Healthcheck"]
    second = 1_000_000_000
    assert (health["Interval"], health["Timeout"], health["StartPeriod"], health["Retries"]) == (
        30 * second,
        10 * second,
        30 * second,
        3,
    )
    assert "/health" in " ".join(health["Test"])
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/usr/local/bin/medical-notes-entrypoint"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONPATH"] == "/app"


def test_app_layout_and_precompiled_code(image_archive: Path) -> None:
    entries = image_entries(image_archive)
    assert entries["/app/data/faiss_db"].uid == 10001
    assert any(p.startswith("/app/data/guidelines/") and p.endswith(".md") for p in entries)
    assert any(p.startswith("/app/data/soap_notes/") and p.endswith(".md") for p in entries)
    assert "/app/medical_notes/__main__.py" in entries
    assert any(p.startswith("/app/medical_notes/__pycache__/") for p in entries)
    assert "/usr/local/bin/pg_isready" in entries


def test_dockerfiles_pass_hadolint() -> None:
    dockerfiles = [REPO / "Dockerfile", *sorted((REPO / "roles/base_images/files").glob("*/Dockerfile"))]
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), *map(str, dockerfiles)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (apt-get install shellcheck)"
    scripts = [REPO / "docker/entrypoint.sh", *sorted((REPO / "roles/base_images/files").glob("*/*.sh"))]
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_api_image_size_within_budget(docker_client: docker.DockerClient, app_image: AppImage) -> None:
    size = docker_client.images.get(app_image.tag).attrs["Size"]
    assert size <= MAX_IMAGE_BYTES, f"API image is {size / 1e6:.1f} MB, budget {MAX_IMAGE_BYTES / 1e6:.0f} MB"


def test_unused_code_and_install_tools_are_gone(image_archive: Path) -> None:
    paths = list(image_entries(image_archive))
    packages = [SITE_PACKAGES.sub("", p) for p in paths if SITE_PACKAGES.match(p)]
    assert packages, "no site-packages in the image"
    assert [p for p in packages if (p + "/").startswith(UNUSED_PACKAGES)] == []
    # fhir.resources: the package's __init__ and the R4B models only (no R5 modules, no STU3)
    fhir = {p.split("/")[2] for p in packages if p.startswith("fhir/resources/") and p.count("/") >= 2}
    assert fhir - {""} == {"__init__.pyc", "R4B"}
    assert any(p.startswith("fhir/resources/R4B/bundle.pyc") for p in packages)
    # Third-party code is byte-code only; anyio keeps its sources (its lazy importer parses them).
    sources = [p for p in packages if p.endswith(".py") and not p.startswith("anyio/")]
    caches = [p for p in packages if "/__pycache__/" in p and not p.startswith("anyio/")]
    assert (sources, caches) == ([], [])
    # The standard library likewise; our own code keeps its sources next to its __pycache__.
    stdlib = [p for p in paths if re.match(r"^/usr/(local/)?lib/python3\.\d+/", p)]
    assert any(p.endswith("/json/__init__.pyc") for p in stdlib)
    assert [p for p in stdlib if p.endswith(".py") or "/__pycache__/" in p or "/ensurepip/" in p] == []
    # Only the builder creates virtualenvs and installs packages.
    install_tools = ("/usr/share/python-wheels/", "/usr/bin/apt", "/etc/apt/")
    assert [p for p in paths if p.startswith(install_tools)] == []


def test_runtime_code_paths_work_in_the_image(
    docker_client: docker.DockerClient, app_image: AppImage
) -> None:
    """All app modules import; FHIR export, both LLM SDKs (against a fake local server) and FAISS run."""
    output = docker_client.containers.run(
        app_image.tag,
        ["-c", SMOKE_SCRIPT.read_text(encoding="utf-8")],
        entrypoint="python",
        read_only=True,
        tmpfs={"/tmp": ""},
        network_disabled=True,
        remove=True,
        stderr=True,
    ).decode()
    assert output.splitlines()[-1] == "SMOKE OK -", output
