"""PostgreSQL access: the connection pool, the schema migrations and what "the database is down" means."""

from __future__ import annotations

import asyncio
import logging
import time

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
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Errors that mean "no usable connection to PostgreSQL right now", as opposed to a bad query.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)

# What can go wrong while connecting and migrating: the above, or the server refusing us
# (authentication, unknown database, missing privileges).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)

# After a failed connection attempt, requests fail fast for this long instead of each one waiting
# for its own connect timeout.
RECONNECT_BACKOFF_SECONDS = 0.5


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached or is not ready; `reason` is safe to show (it becomes a 503)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_connection_error(error: BaseException) -> str:
    """One line for clients and logs. Never includes the DSN (it may carry a password)."""
    if isinstance(error, TimeoutError):
        return "database unavailable: connection timed out"
    if isinstance(error, DatabaseUnavailable):
        return error.reason
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


class Database:
    """The API's pool. Created lazily so the service starts (and answers 503) while PostgreSQL is down."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
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
        return await self._open()

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
                    init=_init_connection,
                    connection_class=_PooledConnection,
                )
                async with pool.acquire(timeout=settings.db_connect_timeout) as connection:
                    self.schema_version = await migrate(connection)
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

    async def connection_lost(self) -> None:
        """Called after a connection error: drop every pooled connection, they all point at the old server."""
        pool = self._pool
        if pool is not None:
            await pool.expire_connections()

    async def ping(self) -> str | None:
        """None when a query round trip works, otherwise the reason it does not."""
        try:
            pool = await self.pool()
            await pool.fetchval("SELECT 1", timeout=self._settings.db_connect_timeout)
        except DatabaseUnavailable as error:
            return error.reason
        except CONNECTION_ERRORS as error:
            await self.connection_lost()
            return describe_connection_error(error)
        return None

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, *CONNECTION_ERRORS):
                pool.terminate()
