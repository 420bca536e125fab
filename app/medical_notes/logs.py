"""Logging set-up for the server and the command line: one line per record on stderr."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ExceptionAsOneLine(logging.Filter):
    """asyncpg's pool logs a whole traceback each time it fails to reopen a connection while
    PostgreSQL is down (an expected state, reported by /health and the 503s); one line says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {error})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_ONE_LINE = ExceptionAsOneLine()


def configure_logging(level: str) -> None:
    """Add a stderr handler unless the host process (pytest, a custom runner) already set one up."""
    # The optimisations of the logging HOWTO: our format uses none of these record fields, and the
    # server writes one record per request, so skip collecting them.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False
    numeric = logging.getLevelName(level.upper())
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        root.setLevel(numeric)
    logging.getLogger("medical_notes").setLevel(numeric)
    logging.getLogger("asyncpg.pool").addFilter(_ONE_LINE)
