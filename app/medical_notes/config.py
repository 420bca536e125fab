"""Service configuration, read from the environment (and an optional .env file)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, model_validator
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

    api_token: SecretStr | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_note_chars: int = Field(default=200_000, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # JSON written by the backup job ({"last_success_at", "last_error", ...}); shown by /health, /metrics.
    backup_status_file: Path | None = None

    docs_enabled: bool = True
    ui_enabled: bool = True
    ui_session_idle_minutes: int = Field(default=15, ge=1, le=24 * 60)
    ui_cookie_secure: Literal["auto", "true", "false"] = "auto"

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
        if self.api_token is not None and not self.api_token.get_secret_value():
            self.api_token = None
        return self

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


class ServerSettings(BaseSettings):
    """Options of `serve` that the image entrypoint and the deployment set (API_HOST, API_PORT, ...)."""

    model_config = SettingsConfigDict(
        env_prefix="API_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = "0.0.0.0"  # noqa: S104 - a container listens on all its interfaces
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    reload: bool = False
