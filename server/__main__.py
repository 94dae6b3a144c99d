"""`python -m server`: start the gRPC service with settings from the environment."""

from __future__ import annotations

import asyncio
import sys

from server import event_loop
from server.app import Application
from server.logging_setup import configure_logging
from server.settings import SettingsError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"costestimator: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    event_loop.install(settings.uvloop)  # helper "perf": uvloop unless COSTEST_UVLOOP=false
    try:
        asyncio.run(Application(settings).run())
    except SettingsError as exc:  # found while building dependencies (e.g. an unmigrated database)
        print(f"costestimator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
