"""One typed settings object, read from environment variables and validated at start.

Every variable is `COSTEST_<FIELD>` (upper case); `DATABASE_URL` and `REDIS_URL` are also read under their
conventional names. A bad value stops the start with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "COSTEST_"


class SettingsError(Exception):
    """Raised when the environment holds an invalid configuration; the message names the variables."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- gRPC server
    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    grace_seconds: float = Field(10.0, ge=0, le=600, description="in-flight RPCs drain this long on shutdown")
    max_concurrent_rpcs: int = Field(1000, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics port; 0 = off")

    # --- storage
    data_dir: Path = Path(".data")
    database_url: str | None = Field(None, validation_alias=AliasChoices("COSTEST_DATABASE_URL", "DATABASE_URL"))
    migrate_on_start: bool = True
    redis_url: str | None = Field(None, validation_alias=AliasChoices("COSTEST_REDIS_URL", "REDIS_URL"))
    # (helper eligfast) every database call: connect, pool wait, statement; always also the caller's deadline
    db_timeout_seconds: float = Field(2.0, gt=0, le=600, description="bound of one database call")
    db_pool_size: int = Field(20, ge=1, le=1000, description="PostgreSQL connections kept per process")
    db_pool_overflow: int = Field(10, ge=0, le=1000, description="extra PostgreSQL connections under load")

    # --- payer upstreams (all unset: the embedded sandbox stands in)
    benefits_url: str | None = None
    accumulators_url: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # --- clearinghouse (Stedi real-time eligibility v3)
    stedi_url: str | None = None
    stedi_api_key: SecretStr | None = None

    # --- resilience of outbound HTTP
    upstream_timeout_seconds: float = Field(10.0, gt=0, le=120, description="per attempt, within the deadline")
    upstream_attempts: int = Field(3, ge=1, le=10)
    upstream_backoff_seconds: float = Field(0.1, ge=0, le=10)
    upstream_backoff_max_seconds: float = Field(2.0, ge=0, le=60)
    upstream_default_deadline_seconds: float = Field(15.0, gt=0, le=600, description="when the caller sets none")
    http_pool_size: int = Field(100, ge=1, le=10_000)
    breaker_threshold: int = Field(5, ge=1, le=1000)
    breaker_ttl_seconds: float = Field(30.0, gt=0, le=3600)
    tls_verify: bool = True
    ca_bundle: Path | None = None
    token_refresh_margin_seconds: float = Field(30.0, ge=0, le=3600)

    # --- estimates
    max_providers: int = Field(100, ge=1, le=1000)
    benefit_fanout: int = Field(16, ge=1, le=256, description="concurrent benefit calls per request")

    # --- eligibility
    stedi_concurrency: int = Field(8, ge=1, le=50)
    eligibility_retry_budget_seconds: float = Field(120.0, gt=0, le=3600)
    worker_poll_seconds: float = Field(0.5, gt=0, le=60)
    worker_concurrency: int = Field(8, ge=1, le=256)
    stale_pending_seconds: float = Field(600.0, gt=0)
    page_token_secret: SecretStr | None = None

    # --- caller authentication (JWT bearer)
    auth_hs256_secret: SecretStr | None = None
    auth_rs256_public_key_file: Path | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_tenant_claim: str = "tenant_id"
    dev_tenant: str = "dev-tenant"

    # --- embedded sandbox
    sandbox_latency_ms: int = Field(0, ge=0, le=60_000)

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        payer = {"benefits_url": self.benefits_url, "accumulators_url": self.accumulators_url,
                 "token_url": self.token_url, "client_id": self.client_id, "client_secret": self.client_secret}
        given = [k for k, v in payer.items() if v]
        if given and len(given) != len(payer):
            missing = ", ".join(_env(k) for k in payer if k not in given)
            raise ValueError(f"payer upstream partly configured; also set {missing}")
        if bool(self.stedi_url) != bool(self.stedi_api_key):
            raise ValueError(f"set both {_env('stedi_url')} and {_env('stedi_api_key')}, or neither")
        if self.auth_hs256_secret and self.auth_rs256_public_key_file:
            raise ValueError(f"set one of {_env('auth_hs256_secret')} or {_env('auth_rs256_public_key_file')}")
        if self.auth_configured and not (self.auth_issuer and self.auth_audience):
            raise ValueError(f"caller authentication needs {_env('auth_issuer')} and {_env('auth_audience')}")
        if not self.auth_configured and not self.is_loopback:
            raise ValueError(
                f"{_env('host')}={self.host} listens beyond loopback but no caller authentication is configured; "
                f"set {_env('auth_hs256_secret')} or {_env('auth_rs256_public_key_file')}"
            )
        return self

    @property
    def use_payer_sandbox(self) -> bool:
        return not self.benefits_url

    @property
    def use_stedi_sandbox(self) -> bool:
        return not self.stedi_url

    @property
    def auth_configured(self) -> bool:
        return bool(self.auth_hs256_secret or self.auth_rs256_public_key_file)

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'costestimator.sqlite3').resolve()}"


def _env(field: str) -> str:
    return {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}.get(field, ENV_PREFIX + field.upper())


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides, used by tests) or raise SettingsError naming the variables."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"] if p != "__root__"]
            name = _env(loc[0]) if loc else "configuration"
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None
