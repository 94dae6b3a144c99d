"""Builds the eligibility capability: store, clearinghouse client (or the embedded Stedi sandbox), use case, worker.

Everything started here is pushed onto `resources.exit`, so shutdown runs in reverse: the worker stops (in-flight
checks finish or release their leases), pending hand-over writes land, the HTTP session and the sandbox close,
and the database engine closes last.

On PostgreSQL a `DatabaseMonitor` pings the database about every second: `Eligibility.health` turns the
EligibilityService's gRPC health status NOT_SERVING while it is unreachable (and SERVING again when it returns),
and its return cuts short the backoff of final writes waiting for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiohttp import web
from costestimator.v1 import eligibility_service_pb2
from grpc_health.v1 import health, health_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from server.api.eligibility_servicer import EligibilityServicer
from server.api.observability import ServiceMetrics
from server.clients.http import UpstreamConfig, UpstreamSession
from server.clients.stedi import STEDI_RETRY_WAITS, STEDI_UPSTREAM, StediClient, eligibility_url
from server.compose.shared import Resources
from server.sandbox.stedi import StediSandboxConfig, create_stedi_app
from server.settings import Settings, SettingsError
from server.store import (
    DataKeyError,
    EligibilityRepository,
    Sealer,
    PoolOptions,
    close,
    create_engine_for,
    current_revision,
    head_revision,
    migrate,
    redacted,
)
from server.datadir import ensure_private_dir, read_or_create_secret
from server.store.keyfiles import load_keyring
from server.store.keycheck import verify_data_keys
from server.store.rotation import has_plaintext_rows, reseal
from server.store.backlog import pending_backlog
from server.store.monitor import DatabaseMonitor
from server.usecases.durable_writes import DurableWrites
from server.usecases.eligibility import (
    FRESHNESS,
    STEDI_ATTEMPT_TIMEOUT,
    CheckRunner,
    EligibilityChecks,
    EligibilityPolicy,
)
from server.usecases.eligibility_backlog import BacklogSampler
from server.usecases.eligibility_worker import EligibilityWorker

log = logging.getLogger(__name__)

PAGE_TOKEN_SECRET_FILE: Final = "page-token-secret"
# HTTP-level tries per call: 429 five times (spec §3.3); 5xx/connection errors stop after three (client rule).
# The waits between them are the spec's too (`STEDI_RETRY_WAITS`), not the payers' generic backoff.
STEDI_HTTP_ATTEMPTS: Final = 5
STEDI_BREAKER_WINDOW_SECONDS: Final = 60.0  # the clearinghouse breaker's window at least (see stedi_upstream_config)
HEALTH_SERVICE: Final = eligibility_service_pb2.DESCRIPTOR.services_by_name["EligibilityService"].full_name
MONITOR_INTERVAL_SECONDS: Final = 1.0
BACKLOG_SAMPLE_SECONDS: Final = 5.0  # PENDING gauge and worker lag (metrics)


@dataclass
class EligibilityHealth:
    """Follows the database monitor into the EligibilityService's gRPC health status (the "" status, the
    process's, is not touched: the process is up). Without a monitor (SQLite) the status stays as set."""

    monitor: DatabaseMonitor | None = None
    _servicer: health.aio.HealthServicer | None = field(default=None, repr=False)
    _updates: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    async def attach(self, servicer: health.aio.HealthServicer) -> None:
        """Called once the gRPC server (and its health servicer) exists."""
        self._servicer = servicer
        if self.monitor is not None:
            self.monitor.subscribe(self._follow)

    def _follow(self, up: bool) -> None:
        if self._servicer is None:
            return
        status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
        # HealthServicer.set only updates a dict and wakes watchers: safe to run as a task from a callback.
        task = asyncio.get_running_loop().create_task(self._servicer.set(HEALTH_SERVICE, status))
        self._updates.add(task)
        task.add_done_callback(self._updates.discard)


@dataclass
class Eligibility:
    """What the composition root needs from this capability."""

    servicer: EligibilityServicer
    health: EligibilityHealth
    checks: EligibilityChecks  # the use case, for tests and diagnostics
    engine: AsyncEngine  # for tests and diagnostics (statement counting); closed by the builder's exit stack
    backlog: BacklogSampler | None = None  # PENDING gauge and worker lag; tests take a sample at will
    worker: EligibilityWorker | None = None  # the background worker, for tests and diagnostics


def page_token_secret(settings: Settings) -> bytes:
    """The configured secret, else a random one kept in the data dir so tokens survive a restart.

    Several processes sharing PostgreSQL must share the secret too: set COSTEST_PAGE_TOKEN_SECRET there.
    """
    if settings.page_token_secret is not None:
        return settings.page_token_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / PAGE_TOKEN_SECRET_FILE
    secret = read_or_create_secret(path)
    if settings.database_url:
        log.warning("COSTEST_PAGE_TOKEN_SECRET is not set: page tokens are signed with %s and only valid on "
                    "servers sharing that file", path)
    return secret.encode()


def data_sealer(settings: Settings) -> Sealer:
    """The sealer of member data at rest: the configured keyring, or on loopback a development key in the data dir."""
    try:
        keyring, source = load_keyring(
            key_text=None if settings.data_key is None else settings.data_key.get_secret_value(),
            key_file=settings.data_key_file,
            data_dir=Path(settings.data_dir),
            dev_key="generate" if settings.is_loopback else "never",
        )
    except DataKeyError as exc:
        raise SettingsError(str(exc)) from None
    log.info("data at rest: sealed with AES-256-GCM, current key id %s, %d key(s), from %s",
             keyring.current.key_id, len(keyring.ids), source)
    return Sealer(keyring)


async def _check_data_keys(engine: AsyncEngine, sealer: Sealer) -> None:
    """Stop the start on a wrong key; seal rows stored before sealing existed (see the 0002 migration)."""
    try:
        await verify_data_keys(engine, sealer)
        if await has_plaintext_rows(engine):
            report = await reseal(engine, sealer, only_plaintext=True)
            log.warning("data at rest: sealed %d stored value row(s) written before encryption at rest",
                        report.plaintext)
    except DataKeyError as exc:
        raise SettingsError(str(exc)) from None


async def _start_stedi_sandbox(resources: Resources) -> tuple[str, str]:
    """The Stedi stand-in on loopback with a fresh test key; knobs from SANDBOX_* environment variables."""
    key = "test_" + secrets.token_urlsafe(18)
    config = dataclasses.replace(StediSandboxConfig.from_env(), api_keys=frozenset({key}))
    runner = web.AppRunner(create_stedi_app(config), handler_cancellation=True, access_log=None)
    await runner.setup()
    resources.exit.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    log.warning("eligibility clearinghouse: EMBEDDED STEDI SANDBOX on %s (set COSTEST_STEDI_URL and "
                "COSTEST_STEDI_API_KEY for the real clearinghouse)", url)
    return url, key


def stedi_upstream_config(resources: Resources, base_url: str) -> UpstreamConfig:
    """The clearinghouse upstream: spec §1.1's attempt timeout, §3.3's attempts and waits, the settings' pool."""
    s = resources.settings
    return resources.upstream_config(
        STEDI_UPSTREAM,
        base_url,
        routes=(eligibility_url(base_url),),
        timeout=STEDI_ATTEMPT_TIMEOUT,
        total_timeout=max(STEDI_ATTEMPT_TIMEOUT, s.eligibility_retry_budget_seconds),
        attempts=STEDI_HTTP_ATTEMPTS,
        retry_waits=STEDI_RETRY_WAITS,
        connect_limit=max(s.stedi_concurrency, 1),
        # Under those waits a failing call lasts 5 s or more: in a 10 s window at most 2 x concurrency calls could
        # fail, fewer than the breaker's minimum, and the circuit would never open. A longer window lets it.
        breaker_window=max(s.breaker_window_seconds, STEDI_BREAKER_WINDOW_SECONDS),
    )


async def build_eligibility(resources: Resources) -> Eligibility:
    s = resources.settings
    exit_stack = resources.exit

    ensure_private_dir(Path(s.data_dir))
    sealer = data_sealer(s)
    url = s.effective_database_url
    if s.migrate_on_start:
        await migrate(url)
    elif (current := await current_revision(url)) != (head := head_revision()):
        raise SettingsError(f"the database is at revision {current or 'none'}, this code needs {head}: run "
                            "`python -m server.store migrate` (or unset COSTEST_MIGRATE_ON_START=false)")
    postgres = not url.startswith("sqlite")
    engine = create_engine_for(
        url,
        pool=PoolOptions(pool_size=s.db_pool_size, max_overflow=s.db_pool_overflow) if postgres else None,
        timeout=s.db_timeout_seconds,
    )
    exit_stack.push_async_callback(close, engine)
    log.info("eligibility store: %s", redacted(url))
    await _check_data_keys(engine, sealer)
    secret = page_token_secret(s)
    # SQLite is a local file: its writers queue for one lock, bounded by its busy timeout (30 s), not by ours.
    repo = EligibilityRepository(engine, page_token_secret=secret, sealer=sealer, freshness=FRESHNESS,
                                 timeout=s.db_timeout_seconds if postgres else None)
    writes = DurableWrites()
    monitor: DatabaseMonitor | None = None
    if postgres:
        monitor = DatabaseMonitor(url, interval=MONITOR_INTERVAL_SECONDS,
                                  timeout=min(1.0, s.db_timeout_seconds))
        await monitor.start()
        exit_stack.push_async_callback(monitor.stop)
        monitor.subscribe(lambda up: writes.nudge() if up else None)

    if s.use_stedi_sandbox:
        base_url, api_key = await _start_stedi_sandbox(resources)
    else:
        assert s.stedi_url is not None and s.stedi_api_key is not None  # settings enforce both or neither
        base_url, api_key = s.stedi_url, s.stedi_api_key.get_secret_value()
        log.info("eligibility clearinghouse: %s", base_url)
    session = UpstreamSession(stedi_upstream_config(resources, base_url))
    await session.start()
    exit_stack.push_async_callback(session.close)
    client = StediClient(session, resources.resilience, api_key, concurrency=s.stedi_concurrency)

    policy = EligibilityPolicy(retry_budget_seconds=s.eligibility_retry_budget_seconds,
                               default_deadline_seconds=s.upstream_default_deadline_seconds)
    metrics = ServiceMetrics.for_registry(resources.registry)
    runner = CheckRunner(repo, client, policy, writes=writes, on_final=metrics.check_completed)
    checks = EligibilityChecks(runner, external_id_key=secret)
    exit_stack.push_async_callback(checks.close)

    worker = EligibilityWorker(
        runner,
        concurrency=s.worker_concurrency,
        poll_seconds=s.worker_poll_seconds,
        stale_after_seconds=s.stale_pending_seconds,
    )
    checks.on_work_available(worker.wake)
    await worker.start()
    exit_stack.push_async_callback(worker.stop)
    sampler = BacklogSampler(lambda: pending_backlog(engine), metrics.pending, metrics.worker_lag,
                             interval=BACKLOG_SAMPLE_SECONDS, timeout=s.db_timeout_seconds)
    await sampler.start()
    exit_stack.push_async_callback(sampler.stop)
    log.info("eligibility: retry budget %.0fs, freshness %d days", policy.retry_budget_seconds, FRESHNESS.days)
    return Eligibility(EligibilityServicer(checks), EligibilityHealth(monitor), checks, engine, sampler, worker)

