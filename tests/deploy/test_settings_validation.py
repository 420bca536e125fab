"""Wrong deployment settings stop `site.yml` with a clear message before anything on the host changes."""

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


def run_site(*extra_vars: str) -> subprocess.CompletedProcess[str]:
    argv = [str(ANSIBLE_PLAYBOOK), "site.yml"]
    for extra in extra_vars:
        argv += ["-e", extra]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        (
            ["llm_provider=gpt"],
            "medical_notes_llm_provider must be one of: offline, openai, anthropic, got: gpt",
        ),
        (["api_port=70000"], "api_port must be 1-65535 (got 70000)"),
        (["api_port=http"], "'medical_notes_api_port' is of type str and we were unable to convert to int"),
        (["llm_provider=openai"], "llm_provider=openai needs an API key"),
        (["llm_provider=anthropic"], "llm_provider=anthropic needs an API key"),
        (["embedding_provider=openai"], "embedding_provider=openai needs embedding_api_key or llm_api_key"),
        (["api_bind_address=localhost"], "api_bind_address an IPv4 or IPv6 address"),
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
    assert "Install the Docker packages" not in output
