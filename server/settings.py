"""One typed settings object, read from environment variables and validated at start.

Every variable is `COSTEST_<FIELD>` (upper case); `DATABASE_URL` and `REDIS_URL` are also read under their
conventional names. A bad value stops the start with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
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
    # OpenTelemetry spans per RPC and per upstream attempt, exported with OTLP/gRPC as configured by
    # the standard OTEL_* variables (endpoint, headers, sampler, service name); off costs nothing
    tracing: bool = Field(False, description="export OpenTelemetry traces (OTLP, OTEL_* variables)")
    # Inbound TLS, mTLS when a client CA is set (grpc Python can only require-and-verify a
    # client certificate or not ask for one: an "optional" certificate would go unverified), and several
    # server processes on one port
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    workers: int = Field(1, ge=1, le=64, description="server processes sharing the port (SO_REUSEPORT)")

    # --- storage
    data_dir: Path = Path(".data")
    database_url: str | None = Field(None, validation_alias=AliasChoices("COSTEST_DATABASE_URL", "DATABASE_URL"))
    migrate_on_start: bool = True
    redis_url: str | None = Field(None, validation_alias=AliasChoices("COSTEST_REDIS_URL", "REDIS_URL"))
    # (helper crypto) member data sealed at rest: the keyring text, or a file holding it (see README)
    data_key: SecretStr | None = None
    data_key_file: Path | None = None
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
    breaker_ttl_seconds: float = Field(30.0, gt=0, le=3600, description="how long an opened circuit stays open")
    tls_verify: bool = True
    ca_bundle: Path | None = None
    token_refresh_margin_seconds: float = Field(30.0, ge=0, le=3600)
    # --- Circuits open on a failure rate over a window (one outcome per request)
    breaker_failure_rate: float = Field(0.5, gt=0, le=1, description="share of failed requests that opens")
    breaker_min_requests: int = Field(20, ge=1, le=100_000, description="requests in the window before it may open")
    breaker_window_seconds: float = Field(10.0, gt=0, le=3600)
    breaker_sync_seconds: float = Field(1.0, gt=0, le=60, description="how often shared (Redis) state is read")
    breaker_threshold: int | None = Field(None, description="removed: refused with a message naming its replacement")

    # --- estimates
    max_providers: int = Field(100, ge=1, le=1000)
    # Unset = the HTTP pool size (the pool, not a fixed width, bounds a request's fan-out)
    benefit_fanout: int | None = Field(None, ge=1, le=10_000, description="concurrent benefit calls per request")
    # --- benefit cache
    benefit_cache_ttl_seconds: float = Field(900.0, ge=0, le=86_400, description="0 = no benefit cache")
    benefit_cache_max_entries: int = Field(10_000, ge=1, le=10_000_000)
    cache_key_secret: SecretStr | None = None

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

    # --- Bad input and token hardening
    max_request_bytes: int = Field(1024 * 1024, ge=4096, le=64 * 1024 * 1024,
                                   description="larger requests are refused with RESOURCE_EXHAUSTED")
    auth_max_token_lifetime_seconds: int = Field(3600, ge=60, le=30 * 86400,
                                                 description="exp - iat of a caller's JWT; iat and exp required")

    # --- The web console (console/), a Connect bridge to this gRPC port; unset = 8080 on
    # loopback and off beyond it, 0 = off
    console_port: int | None = Field(None, ge=0, le=65535, description="web console port; 0 = off")
    # With inbound TLS the console serves HTTPS with the port's own certificate and key, and reaches the port as a
    # TLS client: trusting this CA (else the system roots), checking this name (else the first DNS name of
    # COSTEST_TLS_CERT_FILE) and, when the port requires client certificates (mTLS), presenting this one
    console_ca_file: Path | None = None
    console_server_name: str | None = Field(None, min_length=1, max_length=253)
    console_cert_file: Path | None = None
    console_key_file: Path | None = None

    # --- The event loop
    uvloop: bool = Field(True, description="run on uvloop; false = the standard asyncio event loop")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        """`info`, `Debug`, `JSON` are fine too (levels upper case, formats lower case)."""
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()

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
        if self.breaker_threshold is not None:
            raise ValueError(
                f"{_env('breaker_threshold')} is no longer used: circuits open on a failure rate; set "
                f"{_env('breaker_failure_rate')}, {_env('breaker_min_requests')} and {_env('breaker_window_seconds')}"
            )
        if self.auth_hs256_secret and self.auth_rs256_public_key_file:
            raise ValueError(f"set one of {_env('auth_hs256_secret')} or {_env('auth_rs256_public_key_file')}")
        # An HS256 secret shorter than the hash (32 bytes) can be brute-forced offline
        if self.auth_hs256_secret and len(self.auth_hs256_secret.get_secret_value().encode()) < 32:
            raise ValueError(f"{_env('auth_hs256_secret')} must be at least 32 bytes (e.g. `openssl rand -hex 32`)")
        if self.auth_configured and not (self.auth_issuer and self.auth_audience):
            raise ValueError(f"caller authentication needs {_env('auth_issuer')} and {_env('auth_audience')}")
        if not self.auth_configured and not self.is_loopback:
            raise ValueError(
                f"{_env('host')}={self.host} listens beyond loopback but no caller authentication is configured; "
                f"set {_env('auth_hs256_secret')} or {_env('auth_rs256_public_key_file')}"
            )
        return self

    # (helper crypto) beyond loopback a data key must be configured; on loopback one is generated in the data dir.
    @model_validator(mode="after")
    def _check_data_key(self) -> Settings:
        if self.data_key and self.data_key_file:
            raise ValueError(f"set one of {_env('data_key')} or {_env('data_key_file')}")
        if not self.data_key_configured and not self.is_loopback:
            raise ValueError(
                f"{_env('host')}={self.host} listens beyond loopback but no data key is configured (member data is "
                f"encrypted at rest); set {_env('data_key')} (base64 of 32 random bytes) or {_env('data_key_file')}"
            )
        return self

    @property
    def data_key_configured(self) -> bool:
        return bool(self.data_key or self.data_key_file)

    @model_validator(mode="after")
    def _check_transport(self) -> Settings:
        """Inbound TLS files come as a pair of readable, matching PEM files; metrics ports fit."""
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError(f"set both {_env('tls_cert_file')} and {_env('tls_key_file')}, or neither")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ValueError(f"{_env('tls_client_ca_file')} (mTLS) needs {_env('tls_cert_file')} and "
                             f"{_env('tls_key_file')}")
        if self.metrics_port and self.workers > 1 and self.metrics_port + self.workers - 1 > 65535:
            raise ValueError(f"{_env('metrics_port')} + {_env('workers')} - 1 must be a port number "
                             "(worker i serves /metrics on the port + i)")
        if bool(self.console_cert_file) != bool(self.console_key_file):
            raise ValueError(f"set both {_env('console_cert_file')} and {_env('console_key_file')}, or neither")
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file", "console_ca_file", "console_cert_file",
                     "console_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{_env(name)}: no such file: {path}")
        _check_tls_files(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)
        _check_tls_files(self.console_cert_file, self.console_key_file, self.console_ca_file, prefix="console")
        return self

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

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
    def effective_console_port(self) -> int:
        """The console's port, 0 when it is off (beyond loopback it must be asked for)."""
        if self.console_port is not None:
            return self.console_port
        return 8080 if self.is_loopback else 0

    @property
    def effective_benefit_fanout(self) -> int:
        """Concurrent benefit calls per request: the configured width, else the benefits upstream's pool size."""
        return self.benefit_fanout if self.benefit_fanout is not None else self.http_pool_size

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'costestimator.sqlite3').resolve()}"


def _check_tls_files(cert: Path | None, key: Path | None, ca: Path | None, *, prefix: str = "tls") -> None:
    """A bad PEM or a key that does not match the certificate stops the start, named (`prefix`: which settings,
    `tls_*` for the port, `console_*` for the console's own connection to it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca_name = "tls_client_ca_file" if prefix == "tls" else f"{prefix}_ca_file"
    if cert is not None and key is not None:
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"{_env(prefix + '_cert_file')} / {_env(prefix + '_key_file')}: not a matching PEM "
                             f"certificate chain and key ({exc.__class__.__name__})") from None
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"{_env(ca_name)}: not a PEM CA certificate ({exc.__class__.__name__})") from None


def _env(field: str) -> str:
    return {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}.get(field, ENV_PREFIX + field.upper())


# COSTEST_* variables that are not server settings but are read elsewhere (python -m server.healthcheck,
# the test suite), so they are not reported as unknown.
OTHER_VARIABLES: Final = frozenset({"COSTEST_DATABASE_URL", "COSTEST_REDIS_URL"})
OTHER_PREFIXES: Final = ("COSTEST_HEALTHCHECK_", "COSTEST_TEST_", "COSTEST_REQUIRE_")


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """The COSTEST_* names in the environment that nothing reads — a typo or a removed setting would otherwise be
    ignored silently. Names only: values may be secrets."""
    known = {_env(name) for name in Settings.model_fields} | OTHER_VARIABLES
    env = os.environ if environ is None else environ
    return sorted(name for name in env if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
                  and not name.upper().startswith(OTHER_PREFIXES))


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
