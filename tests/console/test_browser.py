"""The console in headless Chromium against the real service and its sandbox (see conftest: skipped without
Chromium unless COSTEST_REQUIRE_BROWSER=1)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from costestimator.v1 import eligibility_service_pb2 as el
from costestimator.v1 import eligibility_service_pb2_grpc as el_grpc
from google.type import date_pb2
from playwright.async_api import expect

from server.app import Application
from server.sandbox.faults import Fault
from tests.conftest import auth, payer_sandbox

BENEFITS = "/benefits/v3/retrieve"


async def test_a_twenty_provider_comparison_fills_in_as_the_stream_delivers(page: Any,
                                                                           console_app: Application) -> None:
    # each benefit answer comes 0.15 s after the previous one: rows must appear while the stream is still open
    payer_sandbox(console_app).faults.script(BENEFITS, *[Fault(status=None, delay=0.15 * i) for i in range(20)])
    await page.click("#compare-example")
    await page.click("#compare-run")
    await page.wait_for_selector("#compare-results tbody tr[data-provider]")
    early_rows = await page.locator("#compare-results tbody tr[data-provider]").count()
    still_streaming = await page.get_attribute("#compare-progress", "data-done") is None
    early_progress = await page.inner_text("#compare-count")
    assert still_streaming and 1 <= early_rows < 20, (early_rows, early_progress)

    await page.wait_for_selector("#compare-progress[data-done=true]", timeout=20_000)
    assert await page.inner_text("#compare-count") == "Done: 20 of 20 providers"
    cells = await page.locator("#compare-results tbody tr[data-provider] td.member-pays").all_inner_texts()
    amounts = [Decimal(c.replace("$", "").replace(",", "")) for c in cells]
    assert len(amounts) == 20 and amounts == sorted(amounts)

    first = page.locator("#compare-results tbody tr[data-provider]").first
    await first.get_by_role("button", name="Breakdown").click()
    detail = page.locator("#compare-results tr.detail:not([hidden])")
    assert "Why this amount" in await detail.inner_text()
    assert await detail.locator("ol.trace li").count() >= 3
    assert await detail.locator(".bar-row").count() >= 1  # accumulators before/after


async def test_a_failed_provider_shows_its_status_last(page: Any) -> None:
    await page.click("#compare-example")
    text = await page.input_value("#c-providers")
    await page.fill("#c-providers", text + "\nbad-tier,Nowhere,in,9,,08,100.00")
    await page.click("#compare-run")
    await page.wait_for_selector("#compare-progress[data-done=true]", timeout=20_000)
    last = page.locator("#compare-results tbody tr[data-provider]").last
    assert await last.get_attribute("data-provider") == "bad-tier"
    assert "failed" in (await last.get_attribute("class") or "")
    assert "1 failed" in await page.inner_text("#compare-count")


async def test_a_submitted_check_turns_verified_on_screen(page: Any) -> None:
    await page.click("#tab-eligibility")
    await page.select_option("#e-example", label="SBX700001: slow payer (8 s): watch it complete")
    await page.click("#elig-example")
    await page.click("#elig-submit")
    await page.wait_for_selector("#elig-card [data-status=PENDING]", timeout=10_000)
    assert await page.inner_text("#elig-live") == "Check PENDING"
    await page.wait_for_selector("#elig-card [data-status=VERIFIED]", timeout=15_000)
    assert await page.inner_text("#elig-live") == "Check VERIFIED"
    card = await page.inner_text("#elig-card")
    assert "Deductible" in card and "Out-of-pocket maximum" in card
    # the history and the stats refreshed when the check completed
    await expect(page.locator("#history tbody td.status-ok")).to_have_text("VERIFIED")
    await expect(page.locator("[data-stat=Verified]")).to_have_text("1")


async def test_the_summary_flags_ambiguous_values(page: Any) -> None:
    await page.click("#tab-eligibility")
    await page.click("#elig-example")  # SBX100001: office copay $30 or $60
    await page.click("#elig-check")
    await page.wait_for_selector("#elig-card [data-status=VERIFIED]", timeout=10_000)
    flags = await page.locator("#elig-card .flag").all_inner_texts()
    assert any("ambiguous copay" in f and "$30.00" in f and "$60.00" in f for f in flags), flags


async def test_a_bad_input_shows_its_field_error_next_to_the_field(page: Any) -> None:
    await page.click("#tab-eligibility")
    await page.click("#elig-example")
    await page.fill("#e-npi", "123")
    await page.click("#elig-check")
    await page.wait_for_selector("#e-npi-error")
    assert await page.get_attribute("#e-npi", "aria-invalid") == "true"
    assert "10 digits" in await page.inner_text("#e-npi-error")
    assert "Some values need attention" in await page.inner_text("#elig-error")
    assert await page.locator("#e-member[aria-invalid]").count() == 0
    assert "Traceback" not in await page.content()


async def test_history_paginates(page: Any, console_app: Application) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{console_app.port}") as channel:
        stub = el_grpc.EligibilityServiceStub(channel)
        for _ in range(7):
            await stub.CheckEligibility(el.CheckEligibilityRequest(inquiry=el.EligibilityInquiry(
                payer_id="SBX01", provider=el.ProviderIdentity(npi="1999999984", organization_name="Riverbend"),
                subscriber=el.Person(member_id="SBX100001", first_name="Alex", last_name="Rivera",
                                     date_of_birth=date_pb2.Date(year=1985, month=4, day=12)),
                service_type_codes=["30"], policy_id="policy-pages")), metadata=auth(console_app), timeout=10)
    await page.click("#tab-eligibility")
    await page.fill("#e-policy", "policy-pages")
    await page.press("#e-policy", "Tab")  # change event: the history of that policy
    rows = page.locator("#history tbody tr[data-check]")
    await expect(rows).to_have_count(5)
    first_page = await rows.evaluate_all("rs => rs.map(r => r.dataset.check)")
    assert await page.is_enabled("#history-next") and not await page.is_enabled("#history-prev")
    await page.click("#history-next")
    await expect(rows).to_have_count(2)
    second_page = await rows.evaluate_all("rs => rs.map(r => r.dataset.check)")
    assert not set(first_page) & set(second_page)
    assert await page.inner_text("#history-page") == "Page 2"
    assert not await page.is_enabled("#history-next")
    await page.click("#history-prev")
    await expect(rows).to_have_count(5)
    await expect(page.locator("[data-stat=Total]")).to_have_text("7")


async def test_tabs_work_from_the_keyboard(page: Any) -> None:
    await page.focus("#tab-compare")
    await page.keyboard.press("ArrowRight")
    assert await page.get_attribute("#tab-eligibility", "aria-selected") == "true"
    assert await page.is_visible("#screen-eligibility") and not await page.is_visible("#screen-compare")
    assert await page.evaluate("document.activeElement.id") == "tab-eligibility"


async def test_an_unreachable_service_says_try_again(console_app: Application) -> None:
    from console.server import ConsoleConfig, ConsoleServer
    from tests.console.conftest import open_page

    nowhere = ConsoleServer(ConsoleConfig(host="127.0.0.1", port=0, grpc_target="127.0.0.1:1", loopback=True))
    await nowhere.start()
    try:
        async with open_page(nowhere.url, "unreachable_service") as page:
            await page.click("#tab-eligibility")
            await page.click("#elig-example")
            await page.click("#elig-check")
            await expect(page.locator("#elig-error")).to_contain_text("not available right now")
            await expect(page.locator("#elig-error button")).to_have_text("Try again")
            await expect(page.locator("#elig-error")).not_to_contain_text("Traceback")
    finally:
        await nowhere.stop()


async def test_providers_load_from_a_csv_file_and_more_than_100_are_refused(page: Any, tmp_path: Path) -> None:
    csv = tmp_path / "providers.csv"
    csv.write_text("provider_id,name,network,tier,type,specialty,amount\n"
                   "alpha,Alpha Clinic,in,1,,08,90.00\nbeta,Beta Imaging,out,,,20,1900.50\n")
    await page.set_input_files("#c-csv", str(csv))
    await expect(page.locator("#c-providers")).to_have_value(csv.read_text())
    await page.fill("#c-membership", "5~186103331+10+7+20260101+793854+8A+829")
    await page.fill("#c-code", "99214")
    await page.click("#compare-run")
    await page.wait_for_selector("#compare-progress[data-done=true]", timeout=20_000)
    assert await page.locator("#compare-results tbody tr[data-provider]").count() == 2

    await page.fill("#c-providers", "\n".join(f"p{i},P {i},in,1,,08,100.00" for i in range(101)))
    await page.click("#compare-run")
    await expect(page.locator("#c-providers-error")).to_contain_text("at most 100 providers (101 given)")
