"""The backup job's status file (BACKUP_STATUS_FILE), read for /health and /metrics.

The backup job writes JSON such as
  {"last_success_at": "2026-11-29T03:00:02Z", "last_success_file": "/opt/.../x.dump",
   "last_attempt_at": "2026-11-29T03:00:00Z", "last_error": null}
where any key may be missing or null. The file is read again only when its stat changes, so /health
can be polled hard. Nothing here ever fails a request: an unreadable file is reported as such.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class BackupStatus:
    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None

    def as_health(self) -> dict[str, Any]:
        return {
            "last_backup_at": _iso(self.last_success_at),
            "last_backup_attempt_at": _iso(self.last_attempt_at),
            "last_backup_error": self.last_error,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _one_line(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = " ".join(str(value).split())
    return text[:MAX_ERROR_CHARS]


def parse_status(data: bytes) -> BackupStatus:
    try:
        content = json.loads(data)
    except ValueError:
        return BackupStatus(last_error="backup status file is not valid JSON")
    if not isinstance(content, dict):
        return BackupStatus(last_error="backup status file is not a JSON object")
    return BackupStatus(
        last_success_at=_timestamp(content.get("last_success_at")),
        last_attempt_at=_timestamp(content.get("last_attempt_at")),
        last_error=_one_line(content.get("last_error")),
    )


class BackupStatusReader:
    """read() costs one stat() while the file is unchanged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stat_key: tuple[int, int, int] | None = None
        self._status = BackupStatus()

    def read(self) -> BackupStatus:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._stat_key, self._status = None, BackupStatus()
            return self._status
        except OSError as error:
            self._stat_key = None
            return BackupStatus(last_error=f"backup status file unreadable: {error.strerror}")
        stat_key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if stat_key != self._stat_key:
            try:
                self._status = parse_status(self.path.read_bytes())
            except OSError as error:
                return BackupStatus(last_error=f"backup status file unreadable: {error.strerror}")
            self._stat_key = stat_key
        return self._status
