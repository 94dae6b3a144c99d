"""`python -m server`: start the gRPC service with settings from the environment.

`--help` only prints the usage (no settings read, nothing touched); a port already in use is one line on stderr
and exit code 2, found before anything is started or written.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from server import event_loop
from server.app import Application
from server.logging_setup import configure_logging
from server.ports import PortInUse
from server.settings import SettingsError, load_settings, unknown_variables

log = logging.getLogger("server")

USAGE_EPILOG = """\
Every setting is an environment variable (COSTEST_HOST, COSTEST_PORT, COSTEST_DATA_DIR, DATABASE_URL,
COSTEST_TLS_CERT_FILE, ...): see the README's configuration table. Exit codes: 0 after a clean shutdown,
1 when workers fail, 2 for a bad configuration or a port already in use."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Serve the cost estimator over gRPC until SIGTERM/SIGINT, then drain in-flight RPCs.",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=int, metavar="N",
                        help="server processes sharing the port (overrides COSTEST_WORKERS; default 1)")
    # Internal: set by server/supervisor.py on each worker process (the pipe on which it reports "ready").
    parser.add_argument("--worker-ready-fd", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    worker = args.worker_ready_fd is not None
    try:
        settings = load_settings(**({"workers": args.workers} if args.workers is not None else {}))
    except SettingsError as exc:
        print(f"costestimator: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, show_pid=worker or settings.workers > 1)
    if not worker and (unknown := unknown_variables()):  # the supervisor says it once for its workers
        log.warning("unknown environment variables ignored (no such setting, see README Configuration): %s",
                    ", ".join(unknown))
    if not worker and settings.workers > 1:
        from server.supervisor import supervise

        return supervise(settings)
    event_loop.install(settings.uvloop)  # uvloop unless COSTEST_UVLOOP=false
    application = Application(settings, reuse_port=worker)
    try:
        asyncio.run(_serve_worker(application, args.worker_ready_fd) if worker else _serve_with_console(application))
    except PortInUse as exc:
        print(f"costestimator: cannot start: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # found while building dependencies (e.g. an unmigrated database)
        print(f"costestimator: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve_with_console(application: Application) -> None:
    """The web console (console/) on its own port once the gRPC port serves; stopped after it."""
    from console.server import ConsoleServer

    from server.console_launch import launch_console

    started: list[ConsoleServer] = []

    async def start_console() -> None:
        console = await launch_console(application.settings, application.port, application.dev_token)
        if console is not None:
            started.append(console)

    def started_or_stop(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("the web console could not start (%s: %s): shutting down", type(exc).__name__, exc)
            application.request_stop()

    def ready() -> None:
        tasks.append(task := asyncio.get_running_loop().create_task(start_console()))
        task.add_done_callback(started_or_stop)

    tasks: list[asyncio.Task[None]] = []
    try:
        await application.run(on_ready=ready)
    finally:
        for console in started:
            await console.stop()


async def _serve_worker(application: Application, ready_fd: int) -> None:
    """One worker of a supervisor: report "ready" on the pipe, and stop if the supervisor disappears."""
    parent = os.getppid()
    watchers: list[asyncio.Task[None]] = []

    async def watch_parent() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        log.error("the supervisor (pid %d) is gone: shutting down", parent)
        application.request_stop()

    def ready() -> None:
        os.write(ready_fd, f"{os.getpid()}\n".encode())
        os.close(ready_fd)
        watchers.append(asyncio.get_running_loop().create_task(watch_parent()))

    try:
        await application.run(on_ready=ready)
    finally:
        for task in watchers:
            task.cancel()


if __name__ == "__main__":
    sys.exit(main())
