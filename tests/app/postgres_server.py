"""A throw-away PostgreSQL server for the tests and the benchmark, run from the machine's binaries.

PostgreSQL refuses to run as root, and the tests run as root here, so when we are root every server
command runs as the `postgres` system user (through runuser) in a temporary directory it owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PG_BIN_DIR = Path(os.environ.get("PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """initdb + pg_ctl in a temporary directory; stop() and start() keep the data (for outage tests)."""

    def __init__(self, *, port: int | None = None, durable: bool = False) -> None:
        self.port = port or free_port()
        self.user = SERVER_USER
        # Tests do not need crash safety; the benchmark keeps fsync on to measure real commits.
        self._durable = durable
        self._as_root = os.geteuid() == 0
        if not (PG_BIN_DIR / "initdb").exists():
            raise RuntimeError(
                f"no PostgreSQL server binaries in {PG_BIN_DIR}: install postgresql-15 "
                "(Debian: apt-get install postgresql-15) or set PG_BIN_DIR"
            )
        if self._as_root:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"PostgreSQL refuses to run as root and there is no {SERVER_USER!r} user to run it as "
                    "(the postgresql-15 package creates it)"
                ) from None
        self.base_dir = Path(tempfile.mkdtemp(prefix="medical-notes-pg-"))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "server.log"
        if self._as_root:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.base_dir, account.pw_uid, account.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self._run(
            [
                str(PG_BIN_DIR / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-instructions",
            ]
        )

    def start(self, timeout: float = 30.0) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base_dir} -c max_connections=200"
        if not self._durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            [
                str(PG_BIN_DIR / "pg_ctl"),
                "--pgdata",
                str(self.data_dir),
                "--log",
                str(self.log_file),
                "--options",
                options,
                "--wait",
                f"--timeout={int(timeout)}",
                "start",
            ]
        )
        self._wait_ready(timeout)

    def stop(self, mode: str = "fast") -> None:
        self._run(
            [str(PG_BIN_DIR / "pg_ctl"), "--pgdata", str(self.data_dir), "--mode", mode, "--wait", "stop"]
        )

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    def crash(self) -> None:
        """kill -9 of the postmaster, as an out-of-memory kill or a crash would end it."""
        os.kill(self.postmaster_pid(), signal.SIGKILL)

    def restart_after_crash(self, timeout: float = 30.0) -> None:
        """Start again once the killed server's backends have noticed and left its shared memory."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.start(timeout=max(deadline - time.monotonic(), 1.0))
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def is_running(self) -> bool:
        status = self._run(
            [str(PG_BIN_DIR / "pg_ctl"), "--pgdata", str(self.data_dir), "status"], check=False
        )
        return status.returncode == 0

    def create_database(self, name: str) -> str:
        self._run([str(PG_BIN_DIR / "createdb"), *self._client_args(), name])
        return self.dsn(name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            if self.is_running():
                self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.init()
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()

    def _client_args(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.port), "--username", self.user]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ready = self._run([str(PG_BIN_DIR / "pg_isready"), *self._client_args()], check=False)
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} not ready; see {self.log_file}")
            time.sleep(0.1)

    def _run(self, command: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.base_dir)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
        return result
