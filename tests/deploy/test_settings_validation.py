"""Wrong deployment settings stop `site.yml` with a clear message before anything on the host changes.

Runs against the test inventory (tests/inventory): never inventory/hosts.yml or the default stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
RECAP = re.compile(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)")


TEST_INVENTORY = REPO / "tests" / "inventory" / "hosts.yml"


def run_site(*extra_vars: str, check_mode: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(TEST_INVENTORY), "site.yml"]
    if check_mode:
        argv += ["--check", "--diff"]
    for extra in extra_vars:
        argv += ["-e", extra]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        (
            ["medical_notes_llm_provider=gpt"],
            "medical_notes_llm_provider must be one of: offline, openai, anthropic, got: gpt",
        ),
        (["medical_notes_api_port=70000"], "medical_notes_api_port must be 1-65535 (got 70000)"),
        (
            ["medical_notes_api_port=http"],
            "'medical_notes_api_port' is of type str and we were unable to convert to int",
        ),
        (["medical_notes_llm_provider=openai"], "medical_notes_llm_provider=openai needs an API key"),
        (["medical_notes_llm_provider=anthropic"], "medical_notes_llm_provider=anthropic needs an API key"),
        (
            ["medical_notes_embedding_provider=openai"],
            "medical_notes_embedding_provider=openai needs medical_notes_embedding_api_key",
        ),
        (
            ["medical_notes_api_bind_address=localhost"],
            "medical_notes_api_bind_address an IPv4 or IPv6 address",
        ),
        # A short name of an earlier release never silently loses against the inventory.
        (["dev_mode=true"], "use the full names: dev_mode -> medical_notes_dev_mode"),
        (
            ["api_port=8080", "confirm=yes"],
            "api_port -> medical_notes_api_port, confirm -> medical_notes_clean_confirm",
        ),
        (["medical_notes_stack_name=Prod-1"], "medical_notes_stack_name must be 1-40 lowercase letters"),
        # The test inventory's stack may never take the default stack's names.
        (["medical_notes_stack_name=medical_notes"], "may not use the default stack's names"),
        # PostgreSQL over TLS and pg_hba.conf.
        (
            ["medical_notes_network_ip_range=10.1.0.0/25"],
            "are networks in CIDR notation (the range only with a subnet)",
        ),
        (
            ["medical_notes_postgres_sslmode=verify"],
            "medical_notes_postgres_sslmode must be one of: , disable, allow, prefer, require, verify-ca, "
            "verify-full, got: verify",
        ),
        (
            ['{"medical_notes_postgres_client_address": "10.0.0.0/8 trust"}'],
            'medical_notes_postgres_client_address is an address, network or host name (got "10.0.0.0/8',
        ),
        (
            ["medical_notes_postgres_ca_file=/nonexistent/ca.crt"],
            "medical_notes_postgres_ca_file must be a file",
        ),
    ],
)
def test_wrong_settings_fail_before_any_change(extra_vars: list[str], message: str) -> None:
    result = run_site(*extra_vars)
    output = result.stdout + result.stderr

    assert result.returncode != 0
    assert message in " ".join(output.split()), output[-2000:]
    recap = RECAP.search(output)
    assert recap is not None, output[-2000:]
    assert recap.group(1) == "0", "the play changed something before it failed"
    assert recap.group(2) == "1"
    # The settings play stops the run before the play that installs Docker and the base images.
    assert "TASK [docker_engine" not in output


def test_check_mode_on_a_host_without_the_stack_fails_with_one_line() -> None:
    result = run_site("medical_notes_stack_name=mn_never_deployed", check_mode=True)
    output = result.stdout + result.stderr

    assert result.returncode != 0
    assert "--check needs a deployed stack to compare with" in " ".join(output.split()), output[-2000:]
    assert "Traceback" not in output
    recap = RECAP.search(output)
    assert recap is not None, output[-2000:]
    assert (recap.group(1), recap.group(2)) == ("0", "1")
