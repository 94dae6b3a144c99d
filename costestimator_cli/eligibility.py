"""`costestimator eligibility check|submit|watch|get|list|stats`: the eligibility console in a terminal."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

import grpc
import typer
from google.type import date_pb2
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import eligibility_service_pb2_grpc

from costestimator_cli.context import call, fail, fail_rpc, options, stdout
from costestimator_cli.errors import ExitCode
from costestimator_cli.formatting import (date_text, decimal_text, enum_text, message_json, money_text,
                                          timestamp_text, to_json)

app = typer.Typer(help="Check a patient's eligibility, follow a check, list the history, show the stats.",
                  no_args_is_help=True)

FINAL = {pb.ELIGIBILITY_STATUS_VERIFIED, pb.ELIGIBILITY_STATUS_FAILED, pb.ELIGIBILITY_STATUS_NOT_FOUND,
         pb.ELIGIBILITY_STATUS_EXPIRED}
STATUS_STYLE = {pb.ELIGIBILITY_STATUS_VERIFIED: "green", pb.ELIGIBILITY_STATUS_PENDING: "yellow",
                pb.ELIGIBILITY_STATUS_FAILED: "red", pb.ELIGIBILITY_STATUS_NOT_FOUND: "red"}
JsonOption = Annotated[bool, typer.Option("--json", help="print proto3 JSON instead of tables")]


class Status(str, enum.Enum):
    pending = "pending"
    verified = "verified"
    failed = "failed"
    not_found = "not_found"
    expired = "expired"


def _date(text: str | None, flag: str) -> date_pb2.Date | None:
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        fail([f"{flag} must be a date like 1985-04-12, not {text!r}"], ExitCode.BAD_INPUT)
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def status_text(status: pb.EligibilityStatus.ValueType) -> Text:
    return Text(enum_text(pb.EligibilityStatus.Name(status), "ELIGIBILITY_STATUS_").upper().replace(" ", "_"),
                style=STATUS_STYLE.get(status, ""))


def _bucket_rows(table: Table, label: str, levels: pb.LevelBuckets) -> None:
    for level_name in ("individual", "family"):
        networks: pb.NetworkBuckets = getattr(levels, level_name)
        for network_name, network_label in (("in_network", "in network"), ("out_of_network", "out of network")):
            if not networks.HasField(network_name):  # type: ignore[arg-type]
                continue
            bucket: pb.AccumulatorBucket = getattr(networks, network_name)
            table.add_row(label, level_name, network_label, money_text(bucket.total), money_text(bucket.met),
                          money_text(bucket.remaining), ", ".join(bucket.flags))


def check_view(check: pb.EligibilityCheck) -> RenderableType:
    """The check as a card: state, plan, deductible and OOP met/remaining, office-visit copays, flags."""
    card = Table.grid(padding=(0, 2))
    card.add_column(style="bold")
    card.add_column()
    card.add_row("check", check.id)
    card.add_row("status", status_text(check.status))
    for label, value in (("policy", check.policy_id), ("patient", check.patient_id), ("payer", check.payer_id),
                         ("requested (UTC)", timestamp_text(check.requested_at)),
                         ("completed (UTC)", timestamp_text(check.completed_at)),
                         ("attempts", str(check.attempts) if check.attempts else ""),
                         ("failure", check.failure_reason)):
        if value:
            card.add_row(label, value)
    parts: list[RenderableType] = [card]
    if check.HasField("summary"):
        summary = check.summary
        plan = card  # one card: the check, then what the payer said
        for label, value in (
                ("coverage", enum_text(pb.CoverageActivity.Name(summary.activity), "COVERAGE_ACTIVITY_")),
                ("plan", " ".join(filter(None, (summary.plan_name,
                                                summary.plan_number and f"({summary.plan_number})")))),
                ("group", " ".join(filter(None, (summary.group_name, summary.group_number)))),
                ("payer name", summary.payer_name),
                ("effective", date_text(summary.effective_date)),
                ("terminated", date_text(summary.termination_date)),
                ("flags", ", ".join(summary.flags))):
            if value:
                plan.add_row(label, value)
        for label, headline in (("office visit, in network", summary.office_visit_in_network),
                                ("office visit, out of network", summary.office_visit_out_of_network)):
            shares = [text for text in (money_text(headline.copay) if headline.HasField("copay") else "",
                                        f"{decimal_text(headline.coinsurance_percent)} % coinsurance"
                                        if headline.HasField("coinsurance_percent") else "") if text]
            if shares:
                plan.add_row(label, " + ".join(shares))
        buckets = Table("", "level", "network")
        for header in ("total", "met", "remaining"):
            buckets.add_column(header, justify="right", no_wrap=True)
        buckets.add_column("flags")
        _bucket_rows(buckets, "deductible", summary.deductible)
        _bucket_rows(buckets, "OOP max", summary.out_of_pocket)
        if buckets.row_count:
            parts.append(buckets)
    return Group(*parts)


def _inquiry(payer: str, npi: str, organization: str | None, member_id: str, first_name: str, last_name: str,
             dob: str, service_type: list[str] | None, date_of_service: str | None, policy_id: str,
             patient_id: str, dependent_first_name: str | None, dependent_last_name: str | None,
             dependent_dob: str | None, relationship: str | None) -> pb.EligibilityInquiry:
    inquiry = pb.EligibilityInquiry(
        payer_id=payer, provider=pb.ProviderIdentity(npi=npi, organization_name=organization or ""),
        subscriber=pb.Person(member_id=member_id, first_name=first_name, last_name=last_name,
                             date_of_birth=_date(dob, "--dob")),
        service_type_codes=service_type or ["30"], policy_id=policy_id, patient_id=patient_id,
        dependent_relationship_code=relationship or "")
    if (service_date := _date(date_of_service, "--date-of-service")) is not None:
        inquiry.date_of_service.CopyFrom(service_date)
    if dependent_first_name or dependent_last_name or dependent_dob:
        inquiry.dependent.CopyFrom(pb.Person(first_name=dependent_first_name or "",
                                             last_name=dependent_last_name or "",
                                             date_of_birth=_date(dependent_dob, "--dependent-dob")))
    return inquiry


@app.command("check")
@app.command("submit")
def check_or_submit(
    ctx: typer.Context,
    payer: Annotated[str, typer.Option(help="the payer id, e.g. SBX01 (sandbox)")],
    npi: Annotated[str, typer.Option(help="the requesting provider's NPI")],
    member_id: Annotated[str, typer.Option(help="the subscriber's member id")],
    first_name: Annotated[str, typer.Option(help="the subscriber's first name")],
    last_name: Annotated[str, typer.Option(help="the subscriber's last name")],
    dob: Annotated[str, typer.Option(help="the subscriber's date of birth, YYYY-MM-DD")],
    policy_id: Annotated[str, typer.Option(help="your policy id (the history is kept per policy)")],
    patient_id: Annotated[str, typer.Option(help="your patient id")],
    organization: Annotated[str | None, typer.Option(help="the provider's organization name")] = None,
    service_type: Annotated[list[str] | None, typer.Option(help="X12 service type code(s), default 30")] = None,
    date_of_service: Annotated[str | None, typer.Option(help="YYYY-MM-DD, default today")] = None,
    dependent_first_name: Annotated[str | None, typer.Option(help="the patient, when a dependent")] = None,
    dependent_last_name: Annotated[str | None, typer.Option()] = None,
    dependent_dob: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    relationship: Annotated[str | None, typer.Option(help="the dependent's relationship code, e.g. 19")] = None,
    watch_it: Annotated[bool, typer.Option("--watch", help="submit: follow the check until it is final")] = False,
    json_output: JsonOption = False,
) -> None:
    """check: verify now and show the result. submit: queue the check and print its id at once (PENDING)."""
    inquiry = _inquiry(payer, npi, organization, member_id, first_name, last_name, dob, service_type,
                       date_of_service, policy_id, patient_id, dependent_first_name, dependent_last_name,
                       dependent_dob, relationship)
    connection = options(ctx).connection()
    stub = eligibility_service_pb2_grpc.EligibilityServiceStub
    if ctx.info_name == "check":
        if watch_it:
            fail(["--watch goes with submit (check answers when the check is final)"], ExitCode.BAD_INPUT)
        check = call(connection, lambda ch: stub(ch).CheckEligibility(
            pb.CheckEligibilityRequest(inquiry=inquiry), metadata=connection.metadata,
            timeout=connection.deadline)).check
    else:
        check = call(connection, lambda ch: stub(ch).SubmitEligibilityCheck(
            pb.SubmitEligibilityCheckRequest(inquiry=inquiry), metadata=connection.metadata,
            timeout=connection.deadline)).check
        if watch_it:
            _watch(ctx, check.id, json_output)
            return
    _show(check, json_output)


def _show(check: pb.EligibilityCheck, json_output: bool) -> None:
    console = stdout()
    if json_output:
        console.print_json(message_json(check))
    else:
        console.print(check_view(check))
    if check.status in (pb.ELIGIBILITY_STATUS_FAILED, pb.ELIGIBILITY_STATUS_NOT_FOUND):
        raise typer.Exit(int(ExitCode.FAILED))


def _watch(ctx: typer.Context, check_id: str, json_output: bool) -> None:
    connection = options(ctx).connection()
    console = stdout()
    last: pb.EligibilityCheck | None = None
    with connection.channel() as channel:
        updates = eligibility_service_pb2_grpc.EligibilityServiceStub(channel).WatchEligibilityCheck(
            pb.WatchEligibilityCheckRequest(id=check_id), metadata=connection.metadata, timeout=connection.deadline)
        try:
            for update in updates:
                last = update.check
                if json_output:
                    console.print(message_json(last).replace("\n", " "), markup=False, soft_wrap=True)
                else:
                    console.print(Text.assemble(f"{dt.datetime.now():%H:%M:%S}  ", status_text(last.status),
                                                f"  attempts {last.attempts}" if last.attempts else ""))
        except grpc.RpcError as error:
            fail_rpc(error, connection)
        except KeyboardInterrupt:
            updates.cancel()
            raise typer.Exit(130) from None
    if last is None:
        fail([f"the watch of {check_id} ended without a state"], ExitCode.FAILED)
    if not json_output:
        console.print(check_view(last))
    if last.status not in FINAL:
        fail([f"the check is still {pb.EligibilityStatus.Name(last.status)} after --deadline "
              f"{connection.deadline:g} s", "try again with a longer --deadline"], ExitCode.TRY_AGAIN)
    if last.status in (pb.ELIGIBILITY_STATUS_FAILED, pb.ELIGIBILITY_STATUS_NOT_FOUND):
        raise typer.Exit(int(ExitCode.FAILED))


@app.command()
def watch(ctx: typer.Context, check_id: Annotated[str, typer.Argument(metavar="ID", help="the check's id")],
          json_output: JsonOption = False) -> None:
    """Follow a check (PENDING -> VERIFIED / FAILED / NOT_FOUND) until it is final; one line per state."""
    _watch(ctx, check_id, json_output)


@app.command()
def get(ctx: typer.Context, check_id: Annotated[str, typer.Argument(metavar="ID", help="the check's id")],
        json_output: JsonOption = False) -> None:
    """Show one check."""
    connection = options(ctx).connection()
    check = call(connection, lambda ch: eligibility_service_pb2_grpc.EligibilityServiceStub(ch).GetEligibilityCheck(
        pb.GetEligibilityCheckRequest(id=check_id), metadata=connection.metadata, timeout=connection.deadline)).check
    _show(check, json_output)


@app.command("list")
def list_checks(
    ctx: typer.Context,
    policy_id: Annotated[str, typer.Option(help="only this policy's checks")] = "",
    patient_id: Annotated[str, typer.Option(help="only this patient's checks")] = "",
    status: Annotated[Status | None, typer.Option(help="only checks in this state")] = None,
    page_size: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    page_token: Annotated[str, typer.Option(help="the token a previous page printed")] = "",
    all_pages: Annotated[bool, typer.Option("--all", help="follow every page")] = False,
    json_output: JsonOption = False,
) -> None:
    """The history of checks, newest first, a page at a time."""
    connection = options(ctx).connection()
    request = pb.ListEligibilityChecksRequest(
        policy_id=policy_id, patient_id=patient_id, page_size=page_size, page_token=page_token,
        status=pb.EligibilityStatus.Value(f"ELIGIBILITY_STATUS_{status.value.upper()}") if status
        else pb.ELIGIBILITY_STATUS_UNSPECIFIED)
    checks: list[pb.EligibilityCheck] = []
    while True:
        page = call(connection, lambda ch: eligibility_service_pb2_grpc.EligibilityServiceStub(ch)
                    .ListEligibilityChecks(request, metadata=connection.metadata, timeout=connection.deadline))
        checks += page.checks
        request.page_token = page.next_page_token
        if not (all_pages and page.next_page_token):
            break
    console = stdout()
    if json_output:
        console.print_json(to_json(checks, "checks", next_page_token=request.page_token))
        return
    table = Table(title=f"{len(checks)} checks", title_justify="left")
    table.add_column("check", no_wrap=True)
    for header in ("status", "policy", "patient", "payer", "requested (UTC)", "completed (UTC)"):
        table.add_column(header)
    for check in checks:
        table.add_row(check.id, status_text(check.status), check.policy_id, check.patient_id, check.payer_id,
                      timestamp_text(check.requested_at), timestamp_text(check.completed_at))
    console.print(table)
    if request.page_token:
        console.print(f"more: --page-token {request.page_token}", markup=False, soft_wrap=True)


@app.command()
def stats(ctx: typer.Context, policy_id: Annotated[str, typer.Option(help="only this policy")] = "",
          json_output: JsonOption = False) -> None:
    """How many checks are in each state, and when the last one ran and completed."""
    connection = options(ctx).connection()
    answer = call(connection, lambda ch: eligibility_service_pb2_grpc.EligibilityServiceStub(ch).GetEligibilityStats(
        pb.GetEligibilityStatsRequest(policy_id=policy_id), metadata=connection.metadata,
        timeout=connection.deadline))
    console = stdout()
    if json_output:
        console.print_json(message_json(answer))
        return
    table = Table("checks", "count", title="eligibility checks" + (f" of {policy_id}" if policy_id else ""),
                  title_justify="left")
    for label in ("total", "pending", "verified", "failed", "not_found", "expired"):
        table.add_row(label.replace("_", " "), str(getattr(answer, label)))
    table.add_row("last checked (UTC)", timestamp_text(answer.last_checked_at))
    table.add_row("last completed (UTC)", timestamp_text(answer.last_completed_at))
    console.print(table)
