"""Each lock file (installed with --require-hashes) matches the requirements it is compiled from:
requirements.lock (the image), requirements-deploy.lock and requirements-dev.lock (the controller's
virtualenv), requirements-terminology.lock (the image's build stage)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)
INCLUDE = re.compile(r"^-r\s+(\S+)", re.MULTILINE)
LOCKS = {
    "requirements.lock": "requirements.txt",
    "requirements-terminology.lock": "requirements-terminology.txt",
    "requirements-deploy.lock": "requirements-deploy.txt",
    "requirements-dev.lock": "requirements-dev.txt",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    return {normalise(name): version for name, version in PIN.findall(text)}


def direct_pins(requirements: str) -> dict[str, str]:
    """The pins of a requirements file and of the files it includes with -r."""
    text = (REPO / requirements).read_text()
    found = pins(text)
    for included in INCLUDE.findall(text):
        found |= direct_pins(included)
    return found


@pytest.mark.parametrize(("lock", "requirements"), LOCKS.items())
def test_every_direct_pin_is_locked_at_the_same_version(lock: str, requirements: str) -> None:
    direct = direct_pins(requirements)
    locked = pins((REPO / lock).read_text())
    assert direct
    stale = {name: (pin, locked.get(name)) for name, pin in direct.items() if locked.get(name) != pin}
    assert stale == {}, f"{lock} is out of date (run make lock): {stale}"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_file_has_a_hash(lock: str) -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", (REPO / lock).read_text())
    packages = [entry for entry in entries if PIN.match(entry)]
    assert len(packages) >= len(direct_pins(LOCKS[lock]))
    unhashed = [entry.split()[0] for entry in packages if "--hash=sha256:" not in entry]
    assert unhashed == []


def test_the_controller_uses_the_image_versions_of_shared_packages() -> None:
    image = pins((REPO / "requirements.lock").read_text())
    for lock in ("requirements-deploy.lock", "requirements-dev.lock"):
        locked = pins((REPO / lock).read_text())
        differ = {
            name: (version, locked[name])
            for name, version in image.items()
            if locked.get(name, version) != version
        }
        assert differ == {}, f"{lock} and requirements.lock disagree: {differ}"


def test_ansible_core_is_pinned_exactly() -> None:
    assert "ansible-core" in pins((REPO / "requirements-deploy.txt").read_text())
