"""`python -m medical_notes seed|index|status|serve`: one JSON result on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from medical_notes import db
from medical_notes.config import ConfigurationError, ServerSettings, Settings
from medical_notes.logs import configure_logging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIGURATION = 2


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
    try:
        server = ServerSettings()
    except ValueError as error:
        return _fail(f"invalid server configuration: {error}".replace("\n", " "), EXIT_CONFIGURATION)
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
        proxy_headers=False,
    )
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
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
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
