"""Where to call and as whom: the target, the bearer token (found the way a developer would) and the channel."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

DEFAULT_TARGET = "127.0.0.1:50051"
TARGET_ENV = "COSTESTIMATOR_TARGET"
TOKEN_ENV = "COSTESTIMATOR_TOKEN"
# The server's own setting for its data dir: a local server started with it writes its dev token there.
SERVER_DATA_DIR_ENV = "COSTEST_DATA_DIR"
DEV_TOKEN_FILE = "dev-token"  # server/api/auth.py: DEV_TOKEN_FILE, inside the server's data dir
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class ConfigurationError(Exception):
    """The CLI cannot even try the call (no token, unreadable CA file); the message says what to do."""


@dataclass(frozen=True)
class Connection:
    target: str
    token: str
    deadline: float
    ca_file: Path | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def channel(self) -> grpc.Channel:
        if self.ca_file is None:
            return grpc.insecure_channel(self.target)
        try:
            roots = self.ca_file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the CA file {self.ca_file}: {exc.strerror}") from None
        return grpc.secure_channel(self.target, grpc.ssl_channel_credentials(root_certificates=roots))


def is_loopback(target: str) -> bool:
    host = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:").rsplit(":", 1)[0]
    return host in LOOPBACK_HOSTS


def dev_token_path(data_dir: Path | None) -> Path:
    """Where a local `./dev serve` (or `python -m server`) from this directory keeps its development token."""
    directory = data_dir or Path(os.environ.get(SERVER_DATA_DIR_ENV) or ".data")
    return directory / DEV_TOKEN_FILE


def resolve_token(token: str | None, target: str, data_dir: Path | None) -> str:
    """--token (or COSTESTIMATOR_TOKEN, filled in by the option), else a loopback server's development token."""
    if token:
        return token.strip()
    if is_loopback(target):
        path = dev_token_path(data_dir)
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise ConfigurationError(
                f"no token: pass --token or set {TOKEN_ENV}; a local server writes its development token to "
                f"{path} (start one with ./dev serve, or point --data-dir at its data dir)") from None
        except OSError as exc:
            raise ConfigurationError(f"cannot read the development token {path}: {exc.strerror}") from None
    raise ConfigurationError(f"no token for {target}: pass --token or set {TOKEN_ENV}")
