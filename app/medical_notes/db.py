"""PostgreSQL access: the connection pool, the schema migrations and what "the database is down" means."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg
import orjson

from medical_notes.config import Settings

log = logging.getLogger(__name__)

# Any constant works as long as nothing else in the database uses it for pg_advisory_xact_lock.
MIGRATION_LOCK_KEY = 7_346_020_118_391_551_421

# Append only: a deployed database has run every earlier entry, in order, exactly once.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE documents (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            title varchar(255) NOT NULL CHECK (length(title) > 0),
            content text NOT NULL CHECK (length(content) > 0),
            doc_type varchar(64) NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            source_key text UNIQUE,
            content_hash char(64) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON COLUMN documents.source_key IS
            'stem of the shipped note file this row was seeded from; NULL for documents users created';
        CREATE TABLE llm_cache (
            operation text NOT NULL,
            provider text NOT NULL,
            model text NOT NULL,
            input_hash char(64) NOT NULL,
            response jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (operation, provider, model, input_hash)
        );
        """,
    ),
    (
        2,
        # Cached results become traceable to the note they were computed from (note_hash: the
        # documents.content_hash of that text) and to the provider set-up and prompt templates
        # (config_hash). Rows from version 1 have neither, so they cannot be invalidated: dropped.
        # The trigger removes a note's results when the note is deleted or its text changes, in the
        # same transaction, whoever changes it (API, seed, psql), and tells every API worker.
        """
        DROP TABLE llm_cache;
        CREATE TABLE llm_cache (
            operation text NOT NULL,
            config_hash char(64) NOT NULL,
            input_hash char(64) NOT NULL,
            note_hash char(64),
            provider text NOT NULL,
            model text NOT NULL,
            response jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (operation, config_hash, input_hash)
        );
        COMMENT ON COLUMN llm_cache.note_hash IS
            'sha256 of the note text the result was computed from (documents.content_hash); NULL when none';
        CREATE INDEX llm_cache_note_hash ON llm_cache (note_hash) WHERE note_hash IS NOT NULL;
        CREATE INDEX llm_cache_created_at ON llm_cache (created_at);
        CREATE INDEX documents_content_hash ON documents (content_hash);
        CREATE FUNCTION llm_cache_forget_note() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' OR NEW.content_hash IS DISTINCT FROM OLD.content_hash THEN
                DELETE FROM llm_cache WHERE note_hash = OLD.content_hash;
                PERFORM pg_notify('llm_cache_evict', OLD.content_hash);
            END IF;
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER documents_forget_cached_results
            AFTER UPDATE OR DELETE ON documents
            FOR EACH ROW EXECUTE FUNCTION llm_cache_forget_note();
        """,
    ),
    (
        3,
        """
        CREATE TABLE api_clients (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name varchar(64) NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'),
            scope text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
            token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
            created_at timestamptz NOT NULL DEFAULT now(),
            rotated_at timestamptz,
            revoked_at timestamptz
        );
        COMMENT ON COLUMN api_clients.token_sha256 IS
            'SHA-256 of the token (a random 256-bit value); the token itself is never stored';
        -- Workers cache authenticated clients; any change to the table tells them to forget.
        CREATE FUNCTION notify_api_clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('api_clients_changed', '');
            RETURN NULL;
        END $$;
        CREATE TRIGGER api_clients_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_clients
            FOR EACH STATEMENT EXECUTE FUNCTION notify_api_clients_changed();
        CREATE TABLE audit_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            client text NOT NULL,
            action text NOT NULL,
            document_id bigint,
            status smallint NOT NULL,
            request_id text NOT NULL
        );
        COMMENT ON TABLE audit_log IS
            'who read or changed which note, when; never note content, questions or tokens';
        CREATE INDEX audit_log_at ON audit_log (at);
        CREATE INDEX audit_log_document_at ON audit_log (document_id, at);
        CREATE INDEX audit_log_client_at ON audit_log (client, at);
        """,
    ),
    (
        4,
        """
        CREATE TABLE extractions (
            extraction_id text PRIMARY KEY,
            document_id bigint REFERENCES documents (id) ON DELETE CASCADE,
            source_sha256 char(64) NOT NULL,
            pipeline_version text NOT NULL,
            provider text NOT NULL,
            model text NOT NULL,
            result jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX extractions_document_id ON extractions (document_id);
        COMMENT ON TABLE extractions IS
            'structured extraction results; a document''s rows go when its content changes or it is deleted';
        CREATE FUNCTION forget_extractions() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM extractions WHERE document_id = NEW.id;
            RETURN NEW;
        END;
        $$;
        CREATE TRIGGER documents_content_changed
            AFTER UPDATE OF content ON documents
            FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content)
            EXECUTE FUNCTION forget_extractions();
        """,
    ),
    (
        5,
        """
        CREATE TABLE ui_sessions (
            id_hash char(64) PRIMARY KEY,
            client_name text NOT NULL,
            scope text NOT NULL,
            token_hash char(64) NOT NULL,
            csrf_token text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            last_seen_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX ui_sessions_last_seen ON ui_sessions (last_seen_at);
        COMMENT ON TABLE ui_sessions IS
            'clinician console sign-ins: only hashes of the session id and of the API token are kept';
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# NOTIFY channel of the trigger above; the payload is the note_hash whose results were removed.
CACHE_EVICTION_CHANNEL = "llm_cache_evict"

# The server gave up on a statement (statement_timeout, lock_timeout, a cancel request): the database
# is up and the next statement may well succeed. QueryCanceledError is an OperatorInterventionError
# subclass, so this is checked before CONNECTION_ERRORS.
STATEMENT_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.LockNotAvailableError,
)

# Errors that mean "no usable connection to PostgreSQL right now", as opposed to a bad query.
# InternalClientError is asyncpg finding a connection's protocol in a failed state after the server
# went away mid-statement ("cannot switch to state ...; protocol is in the failed state").
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)

# What can go wrong while connecting and migrating: the above, or the server refusing us
# (authentication, unknown database, missing privileges).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)

# After a failed connection attempt, requests fail fast for this long instead of each one waiting
# for its own connect timeout.
RECONNECT_BACKOFF_SECONDS = 0.5


# The server's statement_timeout normally fires first; the client-side limit catches a server that
# does not answer at all (stopped, or the network dropped without a reset).
CLIENT_TIMEOUT_MARGIN_SECONDS = 2.0


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached or is not ready, or no pooled connection came free in time;
    `reason` is safe to show (it becomes a 503 with Retry-After)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DatabaseTimeout(Exception):
    """A statement did not finish within DB_STATEMENT_TIMEOUT / DB_LOCK_TIMEOUT; the database itself
    is up. `reason` is safe to show (it becomes a 504 with Retry-After)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_timeout(error: BaseException, settings: Settings) -> str:
    if isinstance(error, asyncpg.exceptions.LockNotAvailableError):
        return (
            "database timeout: a lock was not granted within DB_LOCK_TIMEOUT "
            f"({settings.db_lock_timeout:g} s)"
        )
    if isinstance(error, asyncpg.exceptions.QueryCanceledError) and "statement timeout" in str(error):
        return (
            f"database timeout: statement exceeded DB_STATEMENT_TIMEOUT ({settings.db_statement_timeout:g} s)"
        )
    if isinstance(error, asyncpg.exceptions.QueryCanceledError):
        return "database timeout: statement cancelled by the server"
    client_limit = settings.db_statement_timeout + CLIENT_TIMEOUT_MARGIN_SECONDS
    return f"database timeout: no answer within {client_limit:g} s"


def describe_connection_error(error: BaseException) -> str:
    """One line for clients and logs. Never includes the DSN (it may carry a password)."""
    if isinstance(error, TimeoutError):
        return "database unavailable: connection timed out"
    if isinstance(error, DatabaseUnavailable):
        return error.reason
    if isinstance(error, asyncpg.exceptions.InternalClientError):
        return "database unavailable: connection lost"
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, OSError):
        detail = error.strerror or type(error).__name__
    return f"database unavailable: {detail}"


class _PooledConnection(asyncpg.Connection):
    def get_reset_query(self) -> str:
        # The pool runs this on every release (a second round trip per request). We hold no session
        # state to undo: no LISTEN, no session advisory locks, no SET, no cursors across requests.
        return ""


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
    )


async def connect(settings: Settings) -> asyncpg.Connection:
    """A single connection, for the command line."""
    connection = await asyncpg.connect(settings.database_url, timeout=settings.db_connect_timeout)
    await _init_connection(connection)
    return connection


async def migrate(connection: asyncpg.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; safe to run from several processes at once."""
    async with connection.transaction():
        # The API's per-statement limits are for requests: a migration, or waiting for another
        # process's migration, may take longer.
        await connection.execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0")
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_version (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        current = await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            log.info("applying schema migration %d", version)
            await connection.execute(statements)
            await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
            current = version
    return current


async def read_schema_version(connection: asyncpg.Connection) -> int | None:
    """The applied version, or None when the app never ran against this database."""
    if await connection.fetchval("SELECT to_regclass('schema_version')") is None:
        return None
    return await connection.fetchval("SELECT max(version) FROM schema_version")


P = ParamSpec("P")
T = TypeVar("T")

ErrorObserver = Callable[[str], None]


def _milliseconds(seconds: float) -> str:
    return str(max(int(seconds * 1000), 1))


class Database:
    """The API's pool. Created lazily so the service starts (and answers 503) while PostgreSQL is down.

    Every request's statement goes through run(), which bounds the wait for a connection and the
    statement itself and turns what went wrong into DatabaseUnavailable (503) or DatabaseTimeout (504).
    `observe_error` is told the kind of each failure: "unavailable", "busy" or "timeout"."""

    def __init__(self, settings: Settings, observe_error: ErrorObserver | None = None) -> None:
        self._settings = settings
        self._observe_error = observe_error or (lambda kind: None)
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._failed_at = 0.0
        self._last_error: str | None = None
        self.schema_version: int | None = None

    async def start(self) -> None:
        """Connect and migrate now if possible; a database that is down is retried on later requests."""
        try:
            await self.pool()
        except DatabaseUnavailable as error:
            log.warning("starting without the database: %s", error.reason)

    async def pool(self) -> asyncpg.Pool:
        pool = self._pool
        if pool is not None:
            return pool
        try:
            return await self._open()
        except DatabaseUnavailable:
            self._observe_error("unavailable")
            raise

    async def _open(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is not None:
                return self._pool
            if time.monotonic() - self._failed_at < RECONNECT_BACKOFF_SECONDS and self._last_error:
                raise DatabaseUnavailable(self._last_error)
            settings = self._settings
            pool: asyncpg.Pool | None = None
            try:
                pool = await asyncpg.create_pool(
                    settings.database_url,
                    min_size=min(settings.db_pool_min_size, settings.db_pool_max_size),
                    max_size=settings.db_pool_max_size,
                    timeout=settings.db_connect_timeout,
                    command_timeout=settings.db_statement_timeout + CLIENT_TIMEOUT_MARGIN_SECONDS,
                    server_settings={
                        "application_name": "medical-notes-api",
                        "statement_timeout": _milliseconds(settings.db_statement_timeout),
                        "lock_timeout": _milliseconds(settings.db_lock_timeout),
                    },
                    init=_init_connection,
                    connection_class=_PooledConnection,
                )
                # Migrations run on their own connection, free of the per-request time limits.
                connection = await connect(settings)
                try:
                    self.schema_version = await migrate(connection)
                finally:
                    await connection.close()
            except UNAVAILABLE_ERRORS as error:
                # Wrong password, missing database, no right to create tables: the service cannot
                # work, but that is a 503 with the server's reason, retried later, not a crash.
                if pool is not None:
                    pool.terminate()
                self._failed_at = time.monotonic()
                self._last_error = describe_connection_error(error)
                log.warning("%s", self._last_error)
                raise DatabaseUnavailable(self._last_error) from error
            self._pool = pool
            self._last_error = None
            return pool

    async def run(
        self,
        query: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """query(connection, *args, **kwargs) on a pooled connection, within the configured limits."""
        settings = self._settings
        pool = await self.pool()
        try:
            if pool.get_idle_size():
                # A free connection is there: no wait to bound (and no timer on the hot path).
                connection = await pool.acquire()
            else:
                async with asyncio.timeout(settings.db_acquire_timeout):
                    connection = await pool.acquire()
        except TimeoutError:
            self._observe_error("busy")
            raise DatabaseUnavailable(
                "database busy: no connection free within DB_ACQUIRE_TIMEOUT "
                f"({settings.db_acquire_timeout:g} s)"
            ) from None
        except CONNECTION_ERRORS as error:
            raise await self._unavailable(error) from error
        try:
            return await query(connection, *args, **kwargs)
        except STATEMENT_TIMEOUT_ERRORS as error:
            self._observe_error("timeout")
            raise DatabaseTimeout(describe_timeout(error, settings)) from error
        except TimeoutError as error:
            # The server did not answer at all: do not wait for it to confirm the cancel request.
            connection.terminate()
            self._observe_error("timeout")
            raise DatabaseTimeout(describe_timeout(error, settings)) from error
        except CONNECTION_ERRORS as error:
            raise await self._unavailable(error) from error
        except asyncio.CancelledError:
            # The request is being cancelled (shutdown): do not wait for the server to confirm.
            connection.terminate()
            raise
        finally:
            await self._release(pool, connection)

    async def _release(self, pool: asyncpg.Pool, connection: asyncpg.Connection) -> None:
        # Without a timeout: a connection whose statement did not complete normally was terminated
        # above, so release never waits for a server to confirm a cancel request.
        try:
            await pool.release(connection)
        except CONNECTION_ERRORS as error:
            # The pool has already terminated the connection; a new one replaces it when needed.
            log.debug("pooled connection dropped on release: %s", type(error).__name__)

    async def _unavailable(self, error: BaseException) -> DatabaseUnavailable:
        self._observe_error("unavailable")
        await self.connection_lost()
        return DatabaseUnavailable(describe_connection_error(error))

    async def connection_lost(self) -> None:
        """Called after a connection error: drop every pooled connection, they all point at the old server."""
        pool = self._pool
        if pool is not None:
            await pool.expire_connections()

    def connections(self) -> tuple[int, int]:
        """(in use, open) connections of the pool; (0, 0) before it exists."""
        pool = self._pool
        if pool is None:
            return 0, 0
        size = pool.get_size()
        return size - pool.get_idle_size(), size

    async def ping(self) -> str | None:
        """None when a query round trip works, otherwise the reason it does not."""
        try:
            await self.run(_select_one)
        except (DatabaseUnavailable, DatabaseTimeout) as error:
            return error.reason
        return None

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, *CONNECTION_ERRORS):
                pool.terminate()


async def _select_one(connection: asyncpg.Connection) -> Any:
    return await connection.fetchval("SELECT 1")
