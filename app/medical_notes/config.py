"""Service configuration, read from the environment (and an optional .env file)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
LOCAL_EMBEDDING_MODEL = "hashed-ngrams-v1"


def _seconds_or_duration(value: object) -> object:
    """Environment values are strings; pydantic reads "2592000" as a malformed duration, not seconds."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# Seconds ("2592000") or an ISO 8601 duration ("P30D").
Duration = Annotated[timedelta, BeforeValidator(_seconds_or_duration)]


class ConfigurationError(RuntimeError):
    """Raised at start-up when the configuration cannot work; the message is one clear line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "postgresql://medical_user:medical_password@localhost:5432/medical_notes"
    db_pool_min_size: int = Field(default=2, ge=1)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    # Seconds a request waits for a free pooled connection before it answers 503.
    db_acquire_timeout: float = Field(default=5.0, gt=0)
    # Server-side limits on every statement the API runs (statement_timeout, lock_timeout): 504.
    db_statement_timeout: float = Field(default=10.0, gt=0)
    db_lock_timeout: float = Field(default=5.0, gt=0)

    llm_provider: Literal["offline", "openai", "anthropic"] = "offline"
    llm_model: str = ""
    llm_api_key: SecretStr | None = None
    llm_base_url: str | None = None
    llm_timeout: float = Field(default=30.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    # Older cached LLM results are neither served nor kept.
    llm_cache_max_age: Duration = Field(default=timedelta(days=30), gt=timedelta(0))

    embedding_provider: Literal["local", "openai"] = "local"
    embedding_model: str = ""
    embedding_api_key: SecretStr | None = None
    embedding_base_url: str | None = None

    faiss_index_dir: Path = Path("/app/data/faiss_db")
    guidelines_dir: Path = PACKAGE_DATA_DIR / "guidelines"
    soap_notes_dir: Path = PACKAGE_DATA_DIR / "soap_notes"

    database_url_file: Path | None = None
    database_password_file: Path | None = None
    llm_api_key_file: Path | None = None
    embedding_api_key_file: Path | None = None

    # API_TOKEN is the bootstrap admin credential; API_AUTH=clients serves client keys only;
    # API_AUTH=disabled (explicit) serves without authentication. See docs/security.md.
    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    api_auth: Literal["clients", "disabled"] | None = None
    audit_enabled: bool = True
    audit_retention_days: int = Field(default=2190, ge=1, le=36500)
    audit_flush_ms: int = Field(default=200, ge=1, le=60_000)
    audit_flush_rows: int = Field(default=500, ge=1, le=100_000)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_note_chars: int = Field(default=200_000, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # JSON written by the backup job ({"last_success_at", "last_error", ...}); shown by /health, /metrics.
    backup_status_file: Path | None = None

    docs_enabled: bool = True
    ui_enabled: bool = True
    ui_session_idle_minutes: int = Field(default=15, ge=1, le=24 * 60)
    ui_cookie_secure: Literal["auto", "true", "false"] = "auto"

    @field_validator("api_token")
    @classmethod
    def _token_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("API_TOKEN is set but empty; unset it, or set API_AUTH=disabled explicitly")
        return value

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        """Secrets from files (*_FILE: Docker/Kubernetes secrets); a file that cannot be read is fatal."""
        if self.database_url_file is not None:
            if self.database_password_file is not None:
                raise ConfigurationError("set DATABASE_URL_FILE or DATABASE_PASSWORD_FILE, not both")
            if "database_url" in self.model_fields_set:
                raise ConfigurationError("set DATABASE_URL or DATABASE_URL_FILE, not both")
            self.database_url = _read_secret_file("DATABASE_URL_FILE", self.database_url_file)
        if self.database_password_file is not None:
            password = _read_secret_file("DATABASE_PASSWORD_FILE", self.database_password_file)
            self.database_url = _with_password(self.database_url, password)
        for name in ("llm_api_key", "embedding_api_key", "api_token"):
            path = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name) is not None:
                raise ConfigurationError(f"set {name.upper()} or {name.upper()}_FILE, not both")
            setattr(self, name, SecretStr(_read_secret_file(f"{name.upper()}_FILE", path)))
        return self

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.llm_model:
            self.llm_model = {
                "offline": "offline-extractive-v1",
                "openai": "gpt-4.1-mini",
                "anthropic": "claude-sonnet-4-5",
            }[self.llm_provider]
        if not self.embedding_model:
            self.embedding_model = {
                "local": LOCAL_EMBEDDING_MODEL,
                "openai": "text-embedding-3-small",
            }[self.embedding_provider]
        if self.embedding_api_key is None:
            self.embedding_api_key = self.llm_api_key
        if self.embedding_base_url is None and self.embedding_provider == "openai":
            self.embedding_base_url = self.llm_base_url
        return self

    def check_auth(self) -> None:
        """Fail closed: the server needs a credential, or an explicit API_AUTH=disabled."""
        if self.api_auth == "disabled" and self.api_token is not None:
            raise ConfigurationError("API_AUTH=disabled contradicts API_TOKEN; set only one of them")
        if self.api_auth is None and self.api_token is None:
            raise ConfigurationError(
                "no API credential configured: set API_TOKEN (or API_TOKEN_FILE), or API_AUTH=clients "
                "to accept client keys only, or API_AUTH=disabled to serve without authentication"
            )

    def check_credentials(self) -> None:
        """Fail fast, with one line, when the configured providers cannot work (no key, unknown model)."""
        self.check_llm_credentials()
        self.check_embedding_credentials()

    def check_llm_credentials(self) -> None:
        if self.llm_provider != "offline" and not _secret(self.llm_api_key):
            raise ConfigurationError(
                f"LLM_PROVIDER={self.llm_provider} needs LLM_API_KEY; set it or use LLM_PROVIDER=offline"
            )

    def check_embedding_credentials(self) -> None:
        if self.embedding_provider == "local" and self.embedding_model != LOCAL_EMBEDDING_MODEL:
            raise ConfigurationError(
                f"EMBEDDING_PROVIDER=local supports only EMBEDDING_MODEL={LOCAL_EMBEDDING_MODEL}, "
                f"not {self.embedding_model!r}"
            )
        if self.embedding_provider == "openai" and not _secret(self.embedding_api_key):
            raise ConfigurationError(
                "EMBEDDING_PROVIDER=openai needs EMBEDDING_API_KEY (or LLM_API_KEY); "
                "set it or use EMBEDDING_PROVIDER=local"
            )


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def _read_secret_file(setting: str, path: Path) -> str:
    """The file's content without its trailing line break; a one-line ConfigurationError otherwise."""
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigurationError(f"{setting}: cannot read {path}: {reason}") from None
    if not value.strip():
        raise ConfigurationError(f"{setting}: {path} is empty")
    return value


def _with_password(url: str, password: str) -> str:
    """DATABASE_URL with the password from DATABASE_PASSWORD_FILE put into its user part."""
    scheme, separator, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    user, at, hosts = authority.rpartition("@")
    if not separator or not at or not user:
        raise ConfigurationError("DATABASE_PASSWORD_FILE needs DATABASE_URL with a user name (user@host)")
    if ":" in user:
        raise ConfigurationError("DATABASE_PASSWORD_FILE is set but DATABASE_URL already has a password")
    return f"{scheme}://{user}:{quote(password, safe='')}@{hosts}{slash}{tail}"


class ServerSettings(BaseSettings):
    """Options of `serve` that the image entrypoint and the deployment set (API_HOST, API_PORT, ...)."""

    model_config = SettingsConfigDict(
        env_prefix="API_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = "0.0.0.0"  # noqa: S104 - a container listens on all its interfaces
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    reload: bool = False
    # Addresses or networks (comma-separated, e.g. "172.18.0.0/16") of the proxies whose
    # X-Forwarded-For and X-Forwarded-Proto are believed; empty believes none.
    forwarded_allow_ips: str = ""
