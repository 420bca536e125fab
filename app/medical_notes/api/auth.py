"""Bearer authentication with scopes: the bootstrap API_TOKEN (admin) and client keys from PostgreSQL.

Each worker keeps the clients it has seen in a small cache, valid only while it LISTENs on the
`api_clients_changed` channel (a trigger on api_clients notifies on every change): a revoke or rotate
empties every worker's cache as soon as its commit is delivered. Without a working listener (database
restarting) every request looks its client up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections import OrderedDict

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from medical_notes import clients, db
from medical_notes.api.context import current_request
from medical_notes.api.errors import error_response
from medical_notes.api.responses import send_json
from medical_notes.clients import BOOTSTRAP_CLIENT, Client, token_digest
from medical_notes.config import Settings
from medical_notes.db import Database, DatabaseUnavailable, describe_connection_error

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "api_clients_changed"
CACHE_ENTRIES = 1024
LISTENER_RETRY_SECONDS = 1.0
LISTENER_PING_SECONDS = 30.0

# Paths anyone may fetch: the health probe and the API description (Swagger UI must load before its
# Authorize button can be used; the schema holds no data), and the console, which signs in with an
# API token into a session of its own (medical_notes.ui) and applies the same scopes.
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/ui"})
PUBLIC_PREFIXES = ("/ui/", "/static/")
ADMIN_PATHS = frozenset({"/audit", "/metrics", "/status"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def required_scope(method: str, path: str) -> clients.Scope | None:
    """The scope a request needs; None for public paths. Anything not listed needs at least read."""
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    if path in ADMIN_PATHS or path == "/clients" or path.startswith("/clients/"):
        return "admin"
    if (path == "/documents" or path.startswith("/documents/")) and method not in READ_METHODS:
        return "write"
    return "read"


class ClientRegistry:
    """Client keys of one worker: lookups by token hash, cached while change notifications arrive."""

    def __init__(self, settings: Settings, database: Database, cache_entries: int = CACHE_ENTRIES) -> None:
        self._settings = settings
        self._database = database
        self._cache: OrderedDict[bytes, Client] = OrderedDict()
        self._cache_entries = cache_entries
        self._generation = 0
        self._listening = False
        self._listener_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener_task = asyncio.create_task(self._listen_forever(), name="api-clients-listener")

    async def close(self) -> None:
        if self._listener_task is not None:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener_task
            self._listener_task = None

    @property
    def listening(self) -> bool:
        """True while change notifications arrive (the cache is in use)."""
        return self._listening

    def forget(self, *_: object) -> None:
        """Drop every cached client (also the signature of an asyncpg notification callback)."""
        self._generation += 1
        self._cache.clear()

    async def authenticate(self, digest: bytes) -> Client | None:
        if self._listening:
            client = self._cache.get(digest)
            if client is not None:
                return client
        generation = self._generation
        client = await self._database.run(clients.find, digest)
        # Cache only what no notification can have overtaken: a change committed after this lookup
        # read the table bumps the generation before (or after, then clearing) this insert.
        if client is not None and self._listening and generation == self._generation:
            self._cache[digest] = client
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return client

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen_once()
            except db.UNAVAILABLE_ERRORS as error:
                log.debug("client change listener down: %s", describe_connection_error(error))
            await asyncio.sleep(LISTENER_RETRY_SECONDS)

    async def _listen_once(self) -> None:
        connection = await db.connect(self._settings)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(NOTIFY_CHANNEL, self.forget)
            # Lookups that started before LISTEN was active may hold results older than a change
            # we were not told about: bump the generation so they are not cached.
            self.forget()
            self._listening = True
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), timeout=LISTENER_PING_SECONDS)
                except TimeoutError:
                    await connection.fetchval("SELECT 1", timeout=self._settings.db_connect_timeout)
        finally:
            self._listening = False
            self.forget()
            connection.terminate()


def _challenge(error: str | None = None, scope: str | None = None) -> list[tuple[bytes, bytes]]:
    value = 'Bearer realm="medical-notes"'
    if error:
        value += f', error="{error}"'
    if scope:
        value += f', scope="{scope}"'
    return [(b"www-authenticate", value.encode())]


class AuthMiddleware:
    """401 without a known token, 403 when its scope is too small; records the client for the audit."""

    def __init__(self, app: ASGIApp, registry: ClientRegistry, bootstrap_token: SecretStr | None) -> None:
        self.app = app
        self.registry = registry
        self.bootstrap_digest = (
            token_digest(bootstrap_token.get_secret_value().encode()) if bootstrap_token is not None else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        required = required_scope(scope["method"], scope["path"])
        if required is None:
            await self.app(scope, receive, send)
            return
        presented = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                presented = value
                break
        if not presented:
            await send_json(send, 401, {"detail": "missing bearer token"}, _challenge())
            return
        scheme, _, credentials = presented.partition(b" ")
        client = None
        if scheme.lower() == b"bearer" and (credentials := credentials.strip()):
            digest = token_digest(credentials)
            # Equal-length digests compared in constant time: no timing hint about API_TOKEN.
            if self.bootstrap_digest is not None and hmac.compare_digest(digest, self.bootstrap_digest):
                client = Client(BOOTSTRAP_CLIENT, "admin")
            else:
                try:
                    client = await self.registry.authenticate(digest)
                except DatabaseUnavailable as error:
                    response = error_response(error)
                    assert response is not None
                    await response(scope, receive, send)
                    return
        if client is None:
            await send_json(send, 401, {"detail": "invalid bearer token"}, _challenge("invalid_token"))
            return
        context = current_request.get()
        if context is not None:
            context.client = client.name
        if not client.allows(required):
            await send_json(
                send,
                403,
                {"detail": f"client {client.name!r} has scope {client.scope!r}; this needs {required!r}"},
                _challenge("insufficient_scope", required),
            )
            return
        await self.app(scope, receive, send)
