"""`python -m medical_notes seed|index|status|serve|clients|audit`: JSON on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson

from medical_notes import db
from medical_notes.config import ConfigurationError, ServerSettings, Settings
from medical_notes.logs import configure_logging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIGURATION = 2

T = TypeVar("T")


def _print_result(result: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from medical_notes.seed import ShippedNoteError, run_seed

    try:
        result = asyncio.run(run_seed(settings, force=args.force, report=_progress))
    except ShippedNoteError as error:
        return _fail(str(error))
    except db.UNAVAILABLE_ERRORS as error:
        return _fail(db.describe_connection_error(error))
    _print_result(result.as_dict())
    return EXIT_OK


def _index(settings: Settings, args: argparse.Namespace) -> int:
    from medical_notes.providers import ProviderError
    from medical_notes.rag import build_index

    started = time.monotonic()

    def progress(line: str) -> None:
        _progress(f"index: {line} ({time.monotonic() - started:.2f}s)")

    settings.check_credentials()
    try:
        result = asyncio.run(build_index(settings, force=args.force, progress=progress))
    except ProviderError as error:
        return _fail(f"embedding provider: {error}")
    except OSError as error:
        return _fail(f"cannot write the index in {settings.faiss_index_dir}: {error.strerror}")
    _print_result(
        {
            "built": result.built,
            "chunks": result.chunks,
            "documents": result.documents,
            "seconds": round(result.seconds, 3),
            "reason": result.reason,
        }
    )
    return EXIT_OK


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from medical_notes.status import collect_status

    result = asyncio.run(collect_status(settings))
    _print_result(result)
    return EXIT_OK if result["database_ok"] else EXIT_FAILED


# prometheus-client's multiprocess mode (see medical_notes.metrics): read when the library is first
# imported, so it is set before any worker imports the app.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_metrics_dir() -> Path | None:
    """Use PROMETHEUS_MULTIPROC_DIR emptied, or a new directory under the temporary directory (a
    tmpfs in the container); returns the directory to remove at exit when we created it."""
    configured = os.environ.get(METRICS_DIR_VARIABLE)
    if not configured:
        created = Path(tempfile.mkdtemp(prefix="medical-notes-metrics-"))
        os.environ[METRICS_DIR_VARIABLE] = str(created)
        return created
    directory = Path(configured)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Files of an earlier run would add their counts to this one's.
    for entry in directory.glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
    return None


def _terminology(settings: Settings, args: argparse.Namespace) -> int:
    from medical_notes.extraction.terminology import terminology_dir

    directory = args.output_dir or terminology_dir()
    if args.action == "build-icd10cm":
        from medical_notes.extraction.icd10cm_build import build_icd10cm_table
        from medical_notes.extraction.terminology import ICD10CM_FILE

        try:
            result = build_icd10cm_table(directory / ICD10CM_FILE)
        except ImportError:
            return _fail("simple-icd-10-cm is not installed: pip install -r requirements-terminology.txt")
        except OSError as error:
            return _fail(f"cannot write {directory}: {error.strerror}")
    else:
        from medical_notes.extraction.rxnorm_import import RxNormImportError, import_rxnorm

        if args.zip is None:
            return _fail(
                "import-rxnorm needs the path of the RxNorm prescribable content zip", EXIT_CONFIGURATION
            )
        try:
            result = import_rxnorm(args.zip, directory)
        except RxNormImportError as error:
            return _fail(str(error))
        except OSError as error:
            return _fail(f"cannot write {directory}: {error.strerror}")
    _print_result(result)
    return EXIT_OK


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    settings.check_credentials()
    settings.check_auth()
    try:
        server = ServerSettings()
    except ValueError as error:
        return _fail(f"invalid server configuration: {error}".replace("\n", " "), EXIT_CONFIGURATION)
    if args.check_config:
        return EXIT_OK
    try:
        created_metrics_dir = _prepare_metrics_dir()
    except OSError as error:
        return _fail(f"cannot prepare {METRICS_DIR_VARIABLE}: {error.strerror}", EXIT_CONFIGURATION)
    try:
        uvicorn.run(
            "medical_notes.api:create_app",
            factory=True,
            host=args.host or server.host,
            port=args.port or server.port,
            workers=args.workers or server.workers,
            reload=args.reload or server.reload,
            log_level=settings.log_level,
            access_log=False,  # our middleware logs method, path, status and duration, nothing more
            log_config=None,
            server_header=False,
            # Behind the TLS proxy / load balancer: the client's address and https come from its
            # headers, believed only from the addresses in API_FORWARDED_ALLOW_IPS.
            proxy_headers=bool(server.forwarded_allow_ips),
            forwarded_allow_ips=server.forwarded_allow_ips or None,
        )
    finally:
        if created_metrics_dir is not None:
            shutil.rmtree(created_metrics_dir, ignore_errors=True)
    return EXIT_OK


async def _with_database(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    connection = await db.connect(settings)
    try:
        await db.migrate(connection)
        return await work(connection)
    finally:
        await connection.close()


def _clients(settings: Settings, args: argparse.Namespace) -> int:
    from medical_notes import clients

    async def work(connection: asyncpg.Connection) -> dict[str, Any]:
        if args.action == "create":
            token = await clients.create(connection, args.name, args.scope)
            return {"name": args.name, "scope": args.scope, "token": token}
        if args.action == "rotate":
            scope, token = await clients.rotate(connection, args.name)
            return {"name": args.name, "scope": scope, "token": token}
        if args.action == "revoke":
            await clients.revoke(connection, args.name)
            return {"name": args.name, "revoked": True}
        return {"clients": await clients.list_all(connection)}

    try:
        result = asyncio.run(_with_database(settings, work))
    except clients.ClientError as error:
        return _fail(str(error))
    except db.UNAVAILABLE_ERRORS as error:
        return _fail(db.describe_connection_error(error))
    _print_result(result)
    return EXIT_OK


def _iso_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from medical_notes import audit

    async def work(connection: asyncpg.Connection) -> list[dict[str, Any]]:
        return await audit.query(
            connection, document_id=args.document, client=args.client, since=args.since, limit=args.limit
        )

    try:
        entries = asyncio.run(_with_database(settings, work))
    except db.UNAVAILABLE_ERRORS as error:
        return _fail(db.describe_connection_error(error))
    for entry in entries:
        _print_result(entry)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m medical_notes", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    seed = commands.add_parser("seed", help="insert the shipped SOAP notes (idempotent)")
    seed.add_argument(
        "--force", action="store_true", help="also refresh shipped notes (never user documents)"
    )
    seed.set_defaults(handler=_seed)
    index = commands.add_parser("index", help="build the guideline FAISS index when missing or stale")
    index.add_argument("--force", action="store_true", help="rebuild even when the index is current")
    index.set_defaults(handler=_index)
    status = commands.add_parser("status", help="print the service state as one JSON object")
    status.set_defaults(handler=_status)
    terminology = commands.add_parser(
        "terminology", help="build the ICD-10-CM table or import NLM's RxNorm prescribable content"
    )
    terminology.add_argument("action", choices=["build-icd10cm", "import-rxnorm"])
    terminology.add_argument("zip", nargs="?", type=Path, help="import-rxnorm: RxNorm_full_prescribe_*.zip")
    terminology.add_argument(
        "--output-dir", type=Path, help="default TERMINOLOGY_DIR or app/data/terminology"
    )
    terminology.set_defaults(handler=_terminology)
    serve = commands.add_parser("serve", help="run the HTTP API with uvicorn")
    serve.add_argument("--host", help="default API_HOST or 0.0.0.0")
    serve.add_argument("--port", type=int, help="default API_PORT or 8000")
    serve.add_argument("--workers", type=int, help="default API_WORKERS or 1")
    serve.add_argument("--reload", action="store_true", help="reload on code changes (development)")
    serve.add_argument(
        "--check-config",
        action="store_true",
        help="only check the configuration (credentials, secret files, options) and exit",
    )
    serve.set_defaults(handler=_serve)

    client_commands = commands.add_parser(
        "clients", help="API clients: create, list, revoke, rotate (tokens are shown once)"
    )
    client_commands.set_defaults(handler=_clients)
    client_actions = client_commands.add_subparsers(dest="action", required=True)
    create = client_actions.add_parser("create", help="add a client; prints its token once")
    create.add_argument("name")
    create.add_argument("--scope", required=True, choices=["read", "write", "admin"])
    client_actions.add_parser("list", help="names, scopes and dates; never tokens")
    for action, text in (
        ("revoke", "stop a client's token now, in every worker"),
        ("rotate", "give a client a new token; the old one stops working now"),
    ):
        client_actions.add_parser(action, help=text).add_argument("name")

    audit = commands.add_parser("audit", help="print the audit trail as JSON lines, oldest first")
    audit.add_argument("--document", type=int, help="only this document id")
    audit.add_argument("--client", help="only this client name")
    audit.add_argument("--since", type=_iso_time, help="only from this ISO 8601 time (UTC if no zone)")
    audit.add_argument("--limit", type=int, help="at most this many rows")
    audit.set_defaults(handler=_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ConfigurationError as error:
        return _fail(str(error), EXIT_CONFIGURATION)
    except ValueError as error:
        return _fail(f"invalid configuration: {error}".replace("\n", " "), EXIT_CONFIGURATION)
    # The server logs at LOG_LEVEL; the one-shot commands print progress themselves.
    configure_logging(settings.log_level if args.command == "serve" else "warning")
    try:
        return args.handler(settings, args)
    except ConfigurationError as error:
        return _fail(str(error), EXIT_CONFIGURATION)
    except KeyboardInterrupt:
        return _fail("interrupted")
