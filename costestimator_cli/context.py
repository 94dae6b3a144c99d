"""The global options every command shares, and one way to run a call and report its failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import grpc
import typer
from rich.console import Console

from costestimator_cli.connection import ConfigurationError, Connection, resolve_token
from costestimator_cli.errors import ExitCode, describe_rpc_error

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    target: str
    token: str | None
    data_dir: Path | None
    deadline: float
    ca_file: Path | None

    def connection(self) -> Connection:
        """Resolved only when a command calls, so `--help` needs no token."""
        try:
            token = resolve_token(self.token, self.target, self.data_dir)
        except ConfigurationError as exc:
            fail([str(exc)], ExitCode.NOT_ALLOWED)
        return Connection(self.target, token, self.deadline, self.ca_file)


def options(ctx: typer.Context) -> Options:
    found = ctx.find_object(Options)
    assert found is not None, "the app callback stores the Options"
    return found


def stdout() -> Console:
    """Created per command (not at import) so a redirected or captured stdout is honoured."""
    return Console(highlight=False)


def fail(lines: list[str], code: ExitCode) -> NoReturn:
    err = Console(stderr=True, highlight=False)
    err.print(f"[bold red]error:[/] {lines[0]}" if lines else "[bold red]error[/]")
    for line in lines[1:]:
        err.print(line, markup=False)
    raise typer.Exit(int(code))


def fail_rpc(error: grpc.RpcError, connection: Connection) -> NoReturn:
    lines, code = describe_rpc_error(error, target=connection.target, deadline=connection.deadline)
    fail(lines, code)


def call(connection: Connection, rpc: Callable[[grpc.Channel], T]) -> T:
    """Run `rpc` on a fresh channel; a failure is printed for people and ends the command with its exit code."""
    try:
        with connection.channel() as channel:
            return rpc(channel)
    except ConfigurationError as exc:
        fail([str(exc)], ExitCode.BAD_INPUT)
    except grpc.RpcError as error:
        fail_rpc(error, connection)
