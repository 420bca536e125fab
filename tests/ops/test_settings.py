"""Wrong backup settings stop the play with a clear line before anything on the host changes."""

from __future__ import annotations

import re

import pytest

from ops.support import run_playbook

RECAP = re.compile(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)")


@pytest.mark.parametrize(
    ("playbook", "setting", "message"),
    [
        ("site.yml", "medical_notes_backup_schedule=weekly", 'or "" for off (got "weekly")'),
        ("playbooks/backup.yml", "medical_notes_backup_schedule=24:00", '(got "24:00")'),
        ("playbooks/backup.yml", "medical_notes_backup_keep=0", "backup_keep 1 or more (got 0)"),
        ("playbooks/backup.yml", "medical_notes_backup_compress=10", "backup_compress 0-9 (got 10)"),
    ],
)  # fmt: skip
def test_wrong_backup_settings_fail_before_any_change(playbook: str, setting: str, message: str) -> None:
    run = run_playbook(playbook, setting)

    assert run.returncode != 0
    assert message in run.text, run.output[-3000:]
    recap = RECAP.search(run.output)
    assert recap is not None, run.output[-2000:]
    assert recap.group(1) == "0", "the play changed something before it failed"
