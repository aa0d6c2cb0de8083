"""All configuration, read once from ``JOBGRAPH_*`` environment variables.

A bad value stops start-up with one line naming the variable (``SettingsError``).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from repository.limits import Limits
from repository.retry import MAX_DELAY_SECONDS, Backoff

ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


MIN_METRICS_TOKEN = 16


class SettingsError(Exception):
    """One clear line for the operator, instead of a traceback."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBGRAPH_", extra="ignore", frozen=True)

    # database
    mongodb_uri: str | None = None
    database: str = "jobgraph"
    data_dir: Path | None = None
    mongodb_timeout_ms: int = Field(5000, ge=100, le=120_000)

    # auth
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: Annotated[list[str], NoDecode] = ["HS256", "RS256", "ES256"]
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    dev_trust_user_header: bool = False

    # http
    cors_origins: Annotated[list[str], NoDecode] = []
    graphiql: bool = True
    dashboard: bool = True
    introspection: bool = True
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_body_depth: int = Field(64, ge=8, le=1000)

    # query limits
    max_query_depth: int = Field(12, ge=2)
    max_aliases: int = Field(30, ge=1)
    max_query_fields: int = Field(2000, ge=10)
    max_tokens: int = Field(2000, ge=50)
    max_page_size: int = Field(100, ge=1, le=1000)

    # stored data limits
    max_payload_bytes: int = Field(64 * 1024, ge=1024, le=8 * 1024 * 1024)
    max_log_message_length: int = Field(4096, ge=16)
    max_logs_per_job: int = Field(1000, ge=1, le=100_000)
    max_jobs_per_batch: int = Field(1000, ge=1, le=100_000)

    # workers
    lease_seconds: float = Field(300.0, gt=0)
    default_max_attempts: int = Field(3, ge=1, le=100)
    retry_backoff: Backoff = Backoff.EXPONENTIAL
    retry_base_seconds: float = Field(5.0, ge=0, le=MAX_DELAY_SECONDS)
    retry_cap_seconds: float = Field(3600.0, ge=0, le=MAX_DELAY_SECONDS)
    reaper_interval_seconds: float = Field(5.0, gt=0)
    finished_job_ttl_seconds: int | None = Field(None, ge=60)

    # job history and bulk operations (see README, "Job history" and "Bulk operations")
    history_days: float = Field(30.0, gt=0, le=3650)
    history_poll_seconds: float = Field(0.5, gt=0, le=60)
    max_bulk_jobs: int = Field(1000, ge=1, le=100_000)

    # schedules and webhooks (see README, "Schedules" and "Webhooks")
    dispatcher: bool = True
    scheduler_interval_seconds: float = Field(1.0, gt=0, le=3600)
    schedule_misfire_grace_seconds: float = Field(60.0, ge=0)
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=300)
    webhook_lease_seconds: float = Field(60.0, gt=0, le=3600)
    webhook_max_attempts: int = Field(10, ge=1, le=50)
    webhook_retry_seconds: float = Field(30.0, gt=0, le=86400)
    webhook_poll_seconds: float = Field(1.0, gt=0, le=60)
    webhook_concurrency: int = Field(4, ge=1, le=100)

    # subscriptions
    max_subscriptions_per_connection: int = Field(20, ge=1)
    websocket_compression: bool = False
    """permessage-deflate for clients that offer it (browsers and the npm ``ws`` client
    do): off, as the ``ws`` server's default, because each connection then holds its
    own zlib state (~50 KB) and every frame is compressed once per subscriber."""
    websocket_init_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    """A ``graphql-transport-ws`` socket that sends no ``connection_init`` within it is
    closed with 4408."""
    max_subscriptions_per_process: int = Field(10_000, ge=1)
    max_subscriptions_per_user: int = Field(100, ge=1)
    max_anonymous_subscriptions: int = Field(1000, ge=1)
    subscriber_queue_size: int = Field(256, ge=1)
    shared_subscriptions: bool = True
    """Subscribers whose events provably read the same execute each event once, and
    WebSocket subscriptions are delivered without a task each (see README, Performance)."""

    # metrics
    metrics_token: SecretStr | None = None
    metrics_jobs_interval_seconds: float = Field(15.0, ge=0, le=3600)

    # logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("jwt_algorithms", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com "
                                 "(scheme and host, optional port, no path) or *")
        return value

    @field_validator("retry_backoff", mode="before")
    @classmethod
    def _backoff(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_METRICS_TOKEN:
            raise ValueError(f"must be at least {MIN_METRICS_TOKEN} characters "
                             "(e.g. openssl rand -hex 32)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.jwt_secret is not None and len(self.jwt_secret) < 32:
            raise ValueError("JOBGRAPH_JWT_SECRET must be at least 32 characters")
        if self.retry_cap_seconds < self.retry_base_seconds:
            raise ValueError("JOBGRAPH_RETRY_CAP_SECONDS must not be below "
                             "JOBGRAPH_RETRY_BASE_SECONDS")
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_delivery(self) -> Settings:
        # a claim that ran out while its request is still in flight would be sent twice
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("JOBGRAPH_WEBHOOK_LEASE_SECONDS must be longer than "
                             "JOBGRAPH_WEBHOOK_TIMEOUT_SECONDS")
        return self

    @cached_property
    def limits(self) -> Limits:
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_log_message_length=self.max_log_message_length,
            max_logs_per_job=self.max_logs_per_job,
            max_jobs_per_batch=self.max_jobs_per_batch,
            max_page_size=self.max_page_size,
            lease_seconds=self.lease_seconds,
            default_max_attempts=self.default_max_attempts,
            database_timeout_seconds=self.mongodb_timeout_ms / 1000,
            retry_backoff=self.retry_backoff,
            retry_base_seconds=self.retry_base_seconds,
            retry_cap_seconds=self.retry_cap_seconds,
            history_days=self.history_days,
            max_bulk_jobs=self.max_bulk_jobs,
        )


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        location = error.get("loc") or ()
        name = f"JOBGRAPH_{str(location[0]).upper()}" if location else "configuration"
        message = error["msg"].removeprefix("Value error, ")
        raise SettingsError(f"invalid {name}: {message}") from None
