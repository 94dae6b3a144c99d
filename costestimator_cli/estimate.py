"""`costestimator estimate`: StreamEstimates into a live table sorted by what the member pays."""

from __future__ import annotations

import enum
from importlib import resources
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.live import Live

from costestimator.v1 import common_pb2, estimate_service_pb2, estimate_service_pb2_grpc

from costestimator_cli.comparison import Comparison, live_view, new_progress, trace_view
from costestimator_cli.context import fail, fail_rpc, options, stdout
from costestimator_cli.errors import CODES_BY_NUMBER, Details, ExitCode, describe
from costestimator_cli.formatting import to_json
from costestimator_cli.providers import PROVIDER_HELP, ProviderSpecError, provider_from_flag, providers_from_csv

# The README's sandbox example: a member with $380 of the deductible left, an MRI, 20 imaging providers
EXAMPLE_MEMBER = "5~186103331+10+7+20260101+793854+8A+829"
EXAMPLE_PLAN = "3~"
EXAMPLE_SERVICE = "70551"
EXAMPLE_PLACE = "11"
EXAMPLE_CSV = "sandbox-mri-20-providers.csv"


class CodeType(str, enum.Enum):
    cpt4 = "cpt4"
    hcpcs = "hcpcs"
    icd10 = "icd10"
    revenue = "revenue"
    cdt = "cdt"


class Product(str, enum.Enum):
    medical = "medical"
    dental = "dental"
    vision = "vision"


def example_providers() -> list[estimate_service_pb2.Provider]:
    with resources.as_file(resources.files("costestimator_cli") / "examples" / EXAMPLE_CSV) as path:
        return providers_from_csv(path)


def estimate(
    ctx: typer.Context,
    member: Annotated[str | None, typer.Option(help="the member's membership id")] = None,
    plan: Annotated[str | None, typer.Option(help="the member's plan identifier")] = None,
    service: Annotated[str | None, typer.Option(help="the service code, e.g. 70551")] = None,
    code_type: Annotated[CodeType, typer.Option(help="the service code's type")] = CodeType.cpt4,
    place: Annotated[str, typer.Option(help="the place-of-service code, e.g. 11 (office)")] = "",
    product: Annotated[Product, typer.Option(help="the benefit product")] = Product.medical,
    provider: Annotated[list[str] | None, typer.Option("--provider", "-p", help=PROVIDER_HELP)] = None,
    providers_csv: Annotated[Path | None, typer.Option(
        "--providers-csv", help="a CSV of providers, header = the --provider keys", dir_okay=False)] = None,
    example: Annotated[bool, typer.Option(
        "--example", help="the sandbox example: an MRI at 20 providers for a member with $380 of deductible left "
        "(other options override its parts)")] = False,
    explain: Annotated[str | None, typer.Option(
        metavar="PROVIDER", help="after the table, why this provider costs what it does (the trace)")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the estimates as proto3 JSON, no table")] = False,
) -> None:
    """Estimate what the member pays at each provider; rows appear as results arrive, sorted by member cost.

    Exit code 5 when the table is complete but some providers failed (their status says why).
    """
    try:
        providers = [provider_from_flag(text) for text in provider or []]
        if providers_csv is not None:
            providers += providers_from_csv(providers_csv)
        if example and not providers:
            providers = example_providers()
    except ProviderSpecError as exc:
        fail([str(exc)], ExitCode.BAD_INPUT)
    if example:
        member, plan = member or EXAMPLE_MEMBER, plan or EXAMPLE_PLAN
        service, place = service or EXAMPLE_SERVICE, place or EXAMPLE_PLACE
    missing = [flag for flag, value in (("--member", member), ("--plan", plan), ("--service", service)) if not value]
    if not providers:
        missing.append("--provider or --providers-csv")
    if missing:
        fail([f"missing {', '.join(missing)} (or --example for the sandbox example)"], ExitCode.BAD_INPUT)
    ids = [p.provider_id for p in providers]
    if explain is not None and explain not in ids:
        fail([f"--explain {explain!r} is not one of the providers: {', '.join(ids)}"], ExitCode.BAD_INPUT)

    request = estimate_service_pb2.StreamEstimatesRequest(
        member=common_pb2.Member(membership_id=member or "", plan_identifier=plan or ""),
        product_type=common_pb2.BenefitProductType.Value(f"BENEFIT_PRODUCT_TYPE_{product.value.upper()}"),
        service=estimate_service_pb2.RequestedService(
            code=service or "", code_type=common_pb2.CodeType.Value(f"CODE_TYPE_{code_type.value.upper()}"),
            place_of_service_code=place),
        providers=providers, include_trace=explain is not None)
    comparison = stream(ctx, request, json_output=json_output)

    console = stdout()
    if json_output:
        console.print_json(to_json([r.estimate for r in comparison.sorted_rows() if r.estimate is not None],
                                   "estimates"))
    else:
        for row in comparison.sorted_rows():
            if row.estimate is not None and row.code is not grpc.StatusCode.OK:
                status = row.estimate.status
                lines = describe(CODES_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN), status.message,
                                 Details.of(status))
                console.print(f"{row.provider.provider_id}: {lines[0]}", *lines[1:], sep="\n", markup=False)
        chosen = next((r.estimate for r in comparison.rows if r.provider.provider_id == explain and r.estimate), None)
        if chosen is not None:
            console.print(trace_view(chosen))
    if comparison.failed:
        raise typer.Exit(int(ExitCode.SOME_PROVIDERS_FAILED))


def stream(ctx: typer.Context, request: estimate_service_pb2.StreamEstimatesRequest, *,
           json_output: bool) -> Comparison:
    """Read the stream into the comparison, redrawing the live table per message (unless --json)."""
    connection = options(ctx).connection()
    comparison = Comparison.of(list(request.providers))
    title = (f"{request.service.code} at {len(request.providers)} providers, sorted by what the member pays")
    progress = new_progress()
    task = progress.add_task("estimating", total=len(request.providers), failed=0)
    console = stdout()
    with connection.channel() as channel:
        replies = estimate_service_pb2_grpc.EstimateServiceStub(channel).StreamEstimates(
            request, metadata=connection.metadata, timeout=connection.deadline)
        try:
            if json_output:
                for reply in replies:
                    comparison.record(reply.estimate)
                return comparison
            # Transient: redrawn in place while the stream runs, then printed once for good (so a failure before
            # any result leaves no empty table behind, and a pipe or a test gets the final table only).
            with Live(live_view(progress, comparison, title, console.width), console=console, refresh_per_second=8,
                      transient=True) as live:
                for reply in replies:
                    comparison.record(reply.estimate)
                    progress.update(task, completed=comparison.arrived, failed=comparison.failed)
                    live.update(live_view(progress, comparison, title, console.width))
        except grpc.RpcError as error:
            if comparison.arrived:
                console.print(live_view(progress, comparison, title, console.width))
            fail_rpc(error, connection)
        except KeyboardInterrupt:
            replies.cancel()  # the server cancels its outstanding upstream calls
            raise typer.Exit(130) from None
    console.print(live_view(progress, comparison, title, console.width))
    return comparison
