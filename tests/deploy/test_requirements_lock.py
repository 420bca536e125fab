"""requirements.lock (what the image installs, with --require-hashes) matches requirements.txt."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    return {normalise(name): version for name, version in PIN.findall(text)}


def test_every_direct_pin_is_locked_at_the_same_version() -> None:
    direct = pins((REPO / "requirements.txt").read_text())
    locked = pins((REPO / "requirements.lock").read_text())
    assert direct
    stale = {name: (pin, locked.get(name)) for name, pin in direct.items() if locked.get(name) != pin}
    assert stale == {}, f"requirements.lock is out of date (run make lock): {stale}"


def test_every_locked_file_has_a_hash() -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", (REPO / "requirements.lock").read_text().split("\n\n", 1)[-1])
    packages = [entry for entry in entries if PIN.match(entry)]
    assert len(packages) >= len(pins((REPO / "requirements.txt").read_text()))
    unhashed = [entry.split()[0] for entry in packages if "--hash=sha256:" not in entry]
    assert unhashed == []
