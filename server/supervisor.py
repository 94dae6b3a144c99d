"""`COSTEST_WORKERS=N`: N server processes on one port (SO_REUSEPORT), each with its own event loop, supervised.

Each worker is `python -m server` (a fresh interpreter: gRPC does not survive fork) serving the same port; the
kernel spreads new connections over them. Shared state lives where every process sees it: the database (the
eligibility worker's claims are FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite, so each
submitted check is worked once), Redis for breaker state when REDIS_URL is set, and the data dir for the
development-token key and the page-token key (created here, before any worker starts).

Policy:
- Single instance: the port is probed without SO_REUSEPORT (a running server, single or multi-process, makes it
  fail: "in use", exit 2), then held by a bound, non-listening SO_REUSEPORT socket for the supervisor's life
  (no plain server can take it between worker restarts), and an exclusive lock file in the data dir keyed by
  the port closes the race between two supervisors starting at the same moment.
- Start: every worker must report "ready" within START_TIMEOUT_SECONDS, else all are stopped, exit code 1.
- A worker that dies later is restarted; more than MAX_RESTARTS within RESTART_WINDOW_SECONDS is a crash
  loop: everything stops, exit code 1.
- Metrics: worker i serves /metrics on COSTEST_METRICS_PORT + i (each process has its own counters).
- SIGTERM/SIGINT: forwarded to every worker, which turns NOT_SERVING and drains for COSTEST_GRACE_SECONDS; a
  worker still alive KILL_MARGIN_SECONDS after that is killed. Exit code 0.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from server.api.auth import DevelopmentAuth
from server.compose.eligibility import page_token_secret
from server.console_launch import launch_console
from server.datadir import ensure_private_dir
from server.ports import PortInUse, ensure_port_free, reserve_shared_port
from server.settings import Settings

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 120.0
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
KILL_MARGIN_SECONDS = 5.0


class WorkerFailed(Exception):
    """A worker exited (or hung) before reporting that it serves."""


@dataclass
class Worker:
    index: int  # 0..N-1, kept by a replacement (worker i serves /metrics on COSTEST_METRICS_PORT + i)
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid


def supervise(settings: Settings) -> int:
    """Run `settings.workers` server processes until SIGTERM/SIGINT; the exit code of `python -m server`."""
    host = settings.host
    try:
        ensure_port_free(host, settings.port)
        reservation = reserve_shared_port(host, settings.port)
    except PortInUse as exc:
        print(f"costestimator: cannot start: {exc}", file=sys.stderr)
        return 2
    with reservation:
        port = int(reservation.getsockname()[1])
        data_dir = ensure_private_dir(Path(settings.data_dir))
        lock = _single_instance_lock(data_dir, port)
        if lock is None:
            print(f"costestimator: cannot start: {PortInUse(host, port)}", file=sys.stderr)
            return 2
        with lock:
            dev_token = _prepare_shared_state(settings)
            return asyncio.run(Supervisor(settings, port, dev_token).run())


def _single_instance_lock(data_dir: Path, port: int) -> IO[bytes] | None:
    handle = open(data_dir / f"server-{port}.lock", "ab")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _prepare_shared_state(settings: Settings) -> str | None:
    """Create the data-dir secrets once, so that the workers read the same ones instead of racing to write; the
    development token (loopback without auth settings), which the console uses."""
    page_token_secret(settings)
    token: str | None = None
    if not settings.auth_configured:
        dev = DevelopmentAuth.load(Path(settings.data_dir), settings.dev_tenant, settings.auth_tenant_claim)
        dev.save()  # the port is reserved above: a second start never gets here
        dev.announce()
        token = dev.token
    if not settings.database_url:
        log.warning("COSTEST_WORKERS=%d with SQLite (no DATABASE_URL): the processes share one database file and "
                    "SQLite serialises their writes; use PostgreSQL for write-heavy loads", settings.workers)
    if not settings.redis_url:
        log.info("no REDIS_URL: each worker keeps its own circuit-breaker state")
    return token


class Supervisor:
    def __init__(self, settings: Settings, port: int, dev_token: str | None = None) -> None:
        self.settings = settings
        self.port = port
        self.dev_token = dev_token
        self.workers: list[Worker] = []
        self._restarts: collections.deque[float] = collections.deque()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await self._supervise(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self._stop_all()

    async def _supervise(self, stop: asyncio.Event) -> int:
        started = await asyncio.gather(*(self._spawn(i) for i in range(self.settings.workers)),
                                       return_exceptions=True)
        self.workers = [w for w in started if isinstance(w, Worker)]
        failures = [w for w in started if isinstance(w, BaseException)]
        if failures:
            log.error("%d of %d workers failed to start (%s): stopping", len(failures), len(started), failures[0])
            return 1
        log.info("%d workers serving on %s:%d (pids %s)", len(self.workers), self.settings.host, self.port,
                 ", ".join(str(w.pid) for w in self.workers))
        # one console for all workers, here: it is a client of the shared port like any other
        console = await launch_console(self.settings, self.port, self.dev_token)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                exits = {asyncio.ensure_future(w.process.wait()): w for w in self.workers}
                await asyncio.wait({stopping, *exits}, return_when=asyncio.FIRST_COMPLETED)
                for task in exits:
                    task.cancel()
                if stop.is_set():
                    log.info("stopping %d workers", len(self.workers))
                    return 0
                for worker in [w for w in self.workers if w.process.returncode is not None]:
                    self.workers.remove(worker)
                    if not await self._replace(worker):
                        return 1
        finally:
            stopping.cancel()
            if console is not None:
                await console.stop()

    async def _replace(self, dead: Worker) -> bool:
        """Restart a crashed worker unless it is a crash loop; False means: give up."""
        now = time.monotonic()
        self._restarts.append(now)
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW_SECONDS:
            self._restarts.popleft()
        if len(self._restarts) > MAX_RESTARTS:
            log.error("worker pid %d exited with code %s; more than %d restarts in %.0fs: stopping", dead.pid,
                      dead.process.returncode, MAX_RESTARTS, RESTART_WINDOW_SECONDS)
            return False
        log.error("worker pid %d exited with code %s: restarting it", dead.pid, dead.process.returncode)
        try:
            self.workers.append(await self._spawn(dead.index))
        except WorkerFailed as exc:
            log.error("replacement worker failed to start (%s): stopping", exc)
            return False
        return True

    async def _spawn(self, index: int) -> Worker:
        """Start one `python -m server` worker and wait for it to report ready on a pipe."""
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "COSTEST_PORT": str(self.port), "COSTEST_WORKERS": "1"}
        if self.settings.metrics_port:  # one registry per process: each worker has its own /metrics
            env["COSTEST_METRICS_PORT"] = str(self.settings.metrics_port + index)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", "--worker-ready-fd", str(write_fd),
                env=env, pass_fds=(write_fd,),
                start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only; it forwards SIGTERM
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        worker = Worker(index, process)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(read_fd, "rb", buffering=0))
        try:
            line = await asyncio.wait_for(reader.readline(), START_TIMEOUT_SECONDS)
        except TimeoutError:
            await self._terminate([worker])
            raise WorkerFailed(f"pid {worker.pid} not ready after {START_TIMEOUT_SECONDS:.0f}s") from None
        finally:
            transport.close()
        if not line.strip():
            code = await process.wait()
            raise WorkerFailed(f"pid {worker.pid} exited with code {code} before serving")
        return worker

    async def _stop_all(self) -> None:
        workers, self.workers = self.workers, []
        await self._terminate(workers)

    async def _terminate(self, workers: list[Worker]) -> None:
        """SIGTERM (graceful drain), then SIGKILL whatever is still alive after the grace period and a margin."""
        alive = [w for w in workers if w.process.returncode is None]
        for worker in alive:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        if not alive:
            return
        try:
            async with asyncio.timeout(self.settings.grace_seconds + KILL_MARGIN_SECONDS):
                await asyncio.gather(*(w.process.wait() for w in alive))
        except TimeoutError:
            for worker in alive:
                if worker.process.returncode is None:
                    log.error("worker pid %d did not stop in time: killing it", worker.pid)
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
            await asyncio.gather(*(w.process.wait() for w in alive))
