"""Estimate from a verified check in headless Chromium (issue 12): the console's panel on the eligibility card,
against the real service and its sandbox; the amounts on screen are compared with a direct gRPC call of
`EstimateFromEligibility` on the same check (see conftest: skipped without Chromium unless
COSTEST_REQUIRE_BROWSER=1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_estimate_pb2 as xpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc as epb_grpc
from google.type import money_pb2
from playwright.async_api import expect

from server.app import Application
from tests.conftest import auth
from tests.console.conftest import ARTIFACTS

#: The panel's default pair (console/static/js/estimate_from_check.js DEFAULT_PROVIDERS), as the RPC's providers.
DEFAULT_PAIR = (("pcp", cpb.NETWORK_CATEGORY_IN_NETWORK, xpb.PROVIDER_ROLE_PRIMARY_CARE),
                ("oon", cpb.NETWORK_CATEGORY_OUT_OF_NETWORK, xpb.PROVIDER_ROLE_UNSPECIFIED))
ALLOWED = money_pb2.Money(currency_code="USD", units=180)
WORDS = {xpb.ESTIMATE_COMPLETENESS_COMPLETE: "Complete", xpb.ESTIMATE_COMPLETENESS_AMBIGUOUS: "Ambiguous",
         xpb.ESTIMATE_COMPLETENESS_INCOMPLETE: "Incomplete"}


def shown(m: money_pb2.Money) -> str:
    """How the console writes an amount: $1,234.50."""
    amount = Decimal(m.units) + Decimal(m.nanos) / Decimal(1_000_000_000)
    return f"${amount:,.2f}"


async def verified_card(page: Any, member_label: str | None = None) -> str:
    """Check a sandbox member now; the VERIFIED card's check id."""
    await page.click("#tab-eligibility")
    if member_label:
        await page.select_option("#e-example", label=member_label)
    await page.click("#elig-example")
    await page.click("#elig-check")
    card = page.locator("#elig-card [data-status=VERIFIED]")
    await card.wait_for(timeout=10_000)
    check_id: str | None = await card.get_attribute("data-check")
    assert check_id
    return check_id


async def direct_estimate(app: Application, check_id: str) -> epb.EstimateFromEligibilityResponse:
    """The same request as the panel's defaults (99213 at place 11, the default pair), straight to the gRPC port."""
    request = xpb.EstimateFromEligibilityRequest(
        check_id=check_id, include_trace=True,
        service=xpb.ServiceToEstimate(procedure=cpb.ServiceCode(code="99213", code_type=cpb.CODE_TYPE_CPT4),
                                      place_of_service_code="11"),
        providers=[xpb.EligibilityProvider(provider_id=pid, network_category=net, role=role, allowed_amount=ALLOWED)
                   for pid, net, role in DEFAULT_PAIR])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        reply: epb.EstimateFromEligibilityResponse = await epb_grpc.EstimateServiceStub(channel).EstimateFromEligibility(
            request, metadata=auth(app), timeout=10)
    return reply


async def test_a_verified_check_estimates_in_and_out_of_network_with_range_and_assumptions(
        page: Any, console_app: Application) -> None:
    check_id = await verified_card(page)  # SBX100001: deductible partly met, ambiguous copay
    panel = page.locator("#elig-card .estimate-panel")
    assert await panel.locator("#x-procedure").input_value() == "99213"
    assert await panel.locator("#x-pos").input_value() == "11"
    await panel.get_by_role("button", name="Estimate from this check").click()
    items = panel.locator("#x-results li.estimate")
    await expect(items).to_have_count(2)
    await expect(page.locator("#x-live")).to_contain_text("2 estimates")

    expected = await direct_estimate(console_app, check_id)
    codes_on_screen: set[str] = set()
    for item, want in zip(await items.all(), expected.estimates, strict=True):
        assert await item.get_attribute("data-provider") == want.estimate.provider_id
        assert await item.locator("[data-role=status]").inner_text() == "OK"
        assert await item.locator("[data-role=member-pays]").inner_text() == shown(want.estimate.member_pays)
        assert await item.locator("[data-role=plan-pays]").inner_text() == shown(want.estimate.plan_pays)
        low, high = shown(want.member_pays_low), shown(want.member_pays_high)
        range_text = await item.locator("[data-role=range]").inner_text()
        assert range_text == (f"{low} (one amount)" if low == high else f"{low} – {high}"), range_text
        assert (await item.locator("[data-role=completeness]").inner_text()).startswith(WORDS[want.completeness])
        assert want.service_type_code in await item.locator("[data-role=service-type]").inner_text()
        listed = await item.locator("ul.assumptions li").evaluate_all("ls => ls.map(l => [l.dataset.code, l.textContent])")
        assert [code for code, _ in listed] == [a.code for a in want.assumptions]
        for (_, text), a in zip(listed, want.assumptions, strict=True):
            assert a.text in text
        codes_on_screen.update(code for code, _ in listed)
    # the sandbox member's 271 is ambiguous somewhere: a range and the assumption that explains it are on screen
    assert codes_on_screen & {"AMBIGUOUS_COPAY", "DEDUCTIBLE_APPLICABILITY_UNKNOWN"}, codes_on_screen
    assert any(e.member_pays_low != e.member_pays_high for e in expected.estimates)
    await expect(panel.locator("[data-role=range]").filter(has_text="–")).not_to_have_count(0)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await panel.screenshot(path=str(ARTIFACTS / "estimate_panel.png"))  # the README's picture (docs/img/)

    # breakdown and trace on demand, from the keyboard
    summary = items.nth(1).locator("summary")
    await summary.focus()
    await page.keyboard.press("Enter")
    details = items.nth(1).locator("details")
    await expect(details).to_have_attribute("open", "")
    assert "Deductible" in await details.inner_text()
    assert await details.locator("ol.trace li").count() >= 1
    assert check_id not in page.url and "SBX" not in page.url  # nothing about the member in the address


async def test_an_inactive_member_is_refused_in_words(page: Any) -> None:
    await verified_card(page, "SBX500001: verified, coverage inactive")
    await page.click("#x-run")
    box = page.locator("#x-error")
    await expect(box).to_be_visible()
    await expect(box).to_have_attribute("data-reason", "COVERAGE_INACTIVE")
    await expect(box).to_contain_text("coverage is not active on the date of service")
    await expect(box.locator("button")).to_have_count(0)  # a refusal, not a "try again"
    assert await page.locator("#x-results li").count() == 0
    assert "Traceback" not in await page.content()


async def test_a_bad_allowed_amount_shows_its_field_error_next_to_the_field(page: Any) -> None:
    await verified_card(page)
    await page.fill("#x-p-amount-1", "180.005")  # the service refuses more than two decimals
    await page.click("#x-run")
    note = page.locator("#x-p-amount-1-error")
    await expect(note).to_contain_text("two decimal places")
    assert await page.get_attribute("#x-p-amount-1", "aria-invalid") == "true"
    assert await page.locator("#x-p-amount-0[aria-invalid]").count() == 0
    await expect(page.locator("#x-error")).to_contain_text("Some values need attention")

    # not an amount at all: said next to the field before anything is sent; a third provider from the keyboard
    await page.fill("#x-p-amount-1", "a lot")
    await page.focus("#x-add")
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "x-p-id-2"
    await page.click("#x-run")
    await expect(page.locator("#x-p-amount-1-error")).to_contain_text("dollars and cents")
    await expect(page.locator("#x-p-amount-2-error")).to_contain_text("dollars and cents")
    assert await page.locator("#x-results li").count() == 0


async def test_explicit_service_types_replace_the_procedure(page: Any) -> None:
    await verified_card(page)
    await page.select_option("#x-procedure", "99285")
    assert await page.input_value("#x-pos") == "23"  # the procedure's usual place comes along
    await page.select_option("#x-procedure", "")  # none: service type codes only
    await page.fill("#x-stc", "ZZZ")
    await page.click("#x-run")
    await expect(page.locator("#x-stc-error")).to_contain_text("service type code")
    assert await page.get_attribute("#x-stc", "aria-invalid") == "true"

    await page.fill("#x-stc", "uc")
    await page.select_option("#x-pos", "20")
    await page.click("#x-run")
    items = page.locator("#x-results li.estimate")
    await expect(items).to_have_count(2)
    await expect(items.first.locator("[data-role=service-type]")).to_contain_text("UC")
    assert await page.locator("#x-stc[aria-invalid]").count() == 0
