"""The README's deploy on a host with nothing of ours: the first stage of `make test` in CI.

Under ``CI=true`` this removes Docker's packages and state from the machine (dockerd, containerd,
every image, container and volume, the base images, debootstrap, the downloaded packages), clones
the repository afresh (no virtualenv) and runs the README's first command there, unchanged:
``make deploy``, with the default inventory and settings, a clean environment and an empty pip
cache. It then asks ``/health`` over HTTPS with the generated CA, runs ``make deploy`` again and
expects ``changed=0``, and counts what the deploy left behind (dangling volumes and images, exited
containers). The rest of ``make test`` runs on the Docker engine this stage installed.

The deployed default stack stays up during the other suites: the isolation proof reads it as a
user's stack and checks it untouched at the end; ``make fresh-host-clean`` (the last stage) removes
it. A record in ``/var/tmp`` names it as this stage's, so an interrupted run can start over.

The stage refuses (fails) when a stack that is not a test stack is deployed on the machine: then it
would destroy a user's data. Outside CI it is skipped, with that reason: it uninstalls Docker.
Set ``MN_FRESH_HOST=1`` to run it by hand on a machine you can wipe.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import docker
import pytest

from ops.support import docker_leftovers
from stack.support import DEFAULT_STACK, RECAP, REPO, STACK_LABEL, TEST_LABEL, http

# What this stage deployed, so that an interrupted run (or `make fresh-host-clean`) knows it is ours.
RECORD = Path("/var/tmp/medical-notes-fresh-host.json")
CLONE = Path("/var/tmp/medical-notes-fresh-host")
LOGS = REPO / ".cache" / "fresh-host"
# The packages roles/docker_engine and roles/base_images install (and what docker.io pulls in).
PACKAGES = ("docker.io", "containerd", "runc", "tini", "mmdebstrap", "debootstrap")
STATE = (
    "/var/lib/docker",
    "/var/lib/containerd",
    "/opt/containerd",
    "/etc/docker",
    "/run/docker",
    "/run/containerd",
    "/var/run/docker.pid",
    "/var/run/dockerd.pid",
    "/var/run/docker.sock",
    "/var/tmp/medical-notes-base-images",
)
# The environment of a fresh login: no virtualenv, no pyenv, no Ansible settings of the caller.
DROPPED_ENV = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
    "PIP_REQUIRE_VIRTUALENV",
)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(
    os.environ.get("CI") != "true" and os.environ.get("MN_FRESH_HOST") != "1",
    reason="uninstalls Docker and its state: runs only in CI (CI=true) or with MN_FRESH_HOST=1",
)


def user_stacks() -> list[str]:
    """Stacks on this machine that no test deployed: their base directories and their containers."""
    ours = json.loads(RECORD.read_text())["base_dir"] if RECORD.is_file() else None
    found = []
    for marker in Path("/opt").glob("*/stack.json"):
        stack = json.loads(marker.read_text())
        if stack.get("test") != "true" and str(marker.parent) != ours:
            found.append(f"{marker.parent} (stack {stack.get('stack')})")
    for config in Path("/var/lib/docker/containers").glob("*/config.v2.json"):
        container = json.loads(config.read_text())
        labels = container.get("Config", {}).get("Labels") or {}
        if STACK_LABEL in labels and TEST_LABEL not in labels and ours is None:
            found.append(f"container {container.get('Name', '?').lstrip('/')} (stack {labels[STACK_LABEL]})")
    return found


def stop_docker() -> None:
    """Remove every container (live-restore would keep them running), then stop dockerd."""
    if (
        shutil.which("dockerd")
        and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
    ):
        ids = subprocess.run(
            ["docker", "ps", "-aq"], capture_output=True, text=True, check=True
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
    for pidfile in (Path("/var/run/docker.pid"), Path("/var/run/dockerd.pid")):
        try:
            pid = int(pidfile.read_text().strip())
            # A pidfile left by a daemon that is gone may name another process by now.
            if Path(f"/proc/{pid}/comm").read_text().strip() != "dockerd":
                continue
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            continue
        for _ in range(120):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.5)
    subprocess.run(["pkill", "-f", "containerd-shim"], check=False)
    subprocess.run(["pkill", "-x", "containerd"], check=False)
    mounts = subprocess.run(["findmnt", "-rno", "TARGET"], capture_output=True, text=True, check=True).stdout
    for target in sorted(mounts.split(), key=len, reverse=True):
        if target.startswith(("/var/lib/docker", "/run/docker", "/var/lib/containerd", "/run/containerd")):
            subprocess.run(["umount", "-l", target], check=False)


def remove_docker() -> None:
    stop_docker()
    installed = [
        package
        for package in PACKAGES
        if subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        ).stdout.endswith("installed")
    ]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if installed:
        subprocess.run(["apt-get", "purge", "-y", "-q", *installed], env=env, check=True, capture_output=True)
    # Downloaded packages too: a fresh host fetches them from the mirror.
    subprocess.run(["apt-get", "clean"], check=True)
    for path in STATE:
        target = Path(path)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    for log in Path("/var/log").glob("dockerd.log*"):
        log.unlink()
    assert shutil.which("dockerd") is None, "dockerd is still installed"


def fresh_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in DROPPED_ENV and not key.startswith("ANSIBLE_")
    }
    env.update(PATH=SYSTEM_PATH, PIP_NO_CACHE_DIR="1", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env


def make_deploy(name: str) -> tuple[float, str]:
    """`make deploy` in the fresh clone; its output is kept in .cache/fresh-host/<name>.log."""
    started = time.monotonic()
    result = subprocess.run(
        ["make", "deploy"],
        cwd=CLONE,
        env=fresh_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = result.stdout + result.stderr
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / f"{name}.log").write_text(output)
    assert result.returncode == 0, output[-6000:]
    return time.monotonic() - started, output


def changed(output: str) -> int:
    recap = RECAP.search(output)
    assert recap is not None, output[-3000:]
    assert recap.group(2) == "0", output[-3000:]
    return int(recap.group(1))


def test_the_readme_deploy_on_a_host_without_docker() -> None:
    others = user_stacks()
    assert not others, f"a stack that is not a test stack is deployed here, so Docker stays: {others}"

    remove_docker()
    shutil.rmtree(CLONE, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(CLONE)], check=True)
    assert not (CLONE / ".venv").exists()
    RECORD.write_text(json.dumps({"base_dir": str(DEFAULT_STACK.base_dir), "clone": str(CLONE)}))

    first, output = make_deploy("deploy")
    print(f"\nfresh host to healthy: {first:.0f} s (virtualenv, Docker, base images, stack)")
    assert changed(output) > 0
    status, health = http("GET", f"{DEFAULT_STACK.url}/health", cafile=DEFAULT_STACK.ca_file)
    assert status == 200, health
    assert health["status"] == "ok", health

    second, output = make_deploy("re-run")
    print(f"no-op re-run: {second:.1f} s")
    assert changed(output) == 0, output[-6000:]
    client = docker.from_env(timeout=120)
    try:
        left = docker_leftovers(client)
    finally:
        client.close()
    assert left.counts() == (0, 0, 0), (
        f"left behind (dangling volumes, stopped containers, dangling images): {left}"
    )


def test_remove_the_fresh_host_stack() -> None:
    """The last stage of `make test`: the default stack this stage deployed goes, backups included."""
    if not RECORD.is_file():
        pytest.skip("no stack of the fresh-host stage on this machine")
    assert not user_stacks(), f"a stack that is not the fresh-host stage's is deployed here: {user_stacks()}"
    env = {**fresh_env(), "ANSIBLE_ARGS": "-e medical_notes_clean_keep_backups=false"}
    result = subprocess.run(
        ["make", "clean", "CONFIRM=yes"],
        cwd=CLONE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert not DEFAULT_STACK.base_dir.exists() or not (DEFAULT_STACK.base_dir / "stack.json").exists()
    shutil.rmtree(CLONE, ignore_errors=True)
    RECORD.unlink()
