"""The `costestimator` command: global options (target, token, deadline) and its commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from costestimator_cli import eligibility
from costestimator_cli.connection import DEFAULT_TARGET, TARGET_ENV, TOKEN_ENV
from costestimator_cli.context import Options
from costestimator_cli.estimate import estimate

app = typer.Typer(
    name="costestimator",
    help="A terminal client of the cost estimator: compare providers live, check eligibility.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a failure is printed as a sentence (costestimator_cli/errors.py), never a trace
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command()(estimate)
app.add_typer(eligibility.app, name="eligibility")


@app.callback()
def main_options(
    ctx: typer.Context,
    target: Annotated[str, typer.Option(envvar=TARGET_ENV, help="the server, host:port")] = DEFAULT_TARGET,
    token: Annotated[str | None, typer.Option(
        envvar=TOKEN_ENV, show_default=False,
        help="the bearer token (JWT); default for a loopback target: the local server's development token "
        "(<data dir>/dev-token)")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="the local server's data dir, where it wrote its development token (default: $COSTEST_DATA_DIR, "
        "else .data)", file_okay=False)] = None,
    deadline: Annotated[float, typer.Option(min=0.1, help="seconds each call (or a whole stream) may take")] = 30.0,
    ca_file: Annotated[Path | None, typer.Option(
        help="call with TLS, verifying the server with this CA certificate (PEM)", dir_okay=False)] = None,
) -> None:
    ctx.obj = Options(target=target, token=token, data_dir=data_dir, deadline=deadline, ca_file=ca_file)


def main() -> None:
    app()
