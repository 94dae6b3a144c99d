// Compare providers: StreamEstimates, each provider's row inserted (sorted by what the member pays) as it arrives.
import { EstimateService, enums } from "./gen/services.js";
import { serverStream, ConnectError } from "./connect.js";
import { h, moneyCents, decimalCents, formatCents, formatMoney, bar, showError, clearErrors } from "./ui.js";

const MAX_PROVIDERS = 100;
const $ = (id) => document.getElementById(id);

// The sandbox example: a member with a deductible partly met, an office visit at 20 providers.
const EXAMPLE_MEMBER = "5~186103331+10+7+20260101+793854+8A+829";
const SPECIALTIES = ["08", "01", "11", "20", "37", "38", "30", "06", "07", "10", "13", "16", "18", "19", "22", "25", "26", "29", "33", "34"];
export function exampleProviders(count = 20) {
  const lines = ["id,name,network,tier,provider type,specialty,negotiated amount"];
  for (let i = 0; i < count; i++) {
    const network = i % 5 === 4 ? "out" : "in";
    const tier = network === "out" ? "" : i % 3 === 2 ? "2" : "1";
    lines.push(`p${String(i + 1).padStart(2, "0")},Clinic ${i + 1},${network},${tier},,${SPECIALTIES[i % SPECIALTIES.length]},${120 + i * 7}.${i % 2 ? "50" : "00"}`);
  }
  return lines.join("\n");
}

/** CSV text -> Provider messages (JSON mapping); a bad line is reported by its number. */
export function parseProviders(text) {
  const providers = [];
  const problems = [];
  const rows = text.split(/\r?\n/);
  rows.forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const cells = line.split(",").map((c) => c.trim().replace(/^"(.*)"$/, "$1"));
    if (index === 0 && /^(provider[ _]?)?id$/i.test(cells[0])) return; // header
    const [id, name, network, tier, type, specialty, amount] = cells;
    if (!id) { problems.push(`line ${index + 1}: a provider id is needed`); return; }
    const p = { providerId: id };
    if (name) p.displayName = name;
    const net = (network || "").toLowerCase();
    if (net.startsWith("in")) p.networkCategory = "NETWORK_CATEGORY_IN_NETWORK";
    else if (net.startsWith("out")) p.networkCategory = "NETWORK_CATEGORY_OUT_OF_NETWORK";
    else if (net) { problems.push(`line ${index + 1}: network must be "in" or "out"`); return; }
    if (tier) p.benefitTierName = tier;
    if (type) p.providerTypeCode = type;
    if (specialty) p.providerSpecialtyCode = specialty;
    if (amount) {
      const m = /^\$?(\d{1,12})(?:\.(\d{1,2}))?$/.exec(amount.replace(/,/g, ""));
      if (!m) { problems.push(`line ${index + 1}: the negotiated amount must be dollars and cents, e.g. 850.00`); return; }
      p.negotiatedAmount = { currencyCode: "USD", units: m[1], nanos: Number((m[2] || "").padEnd(2, "0")) * 10_000_000 };
    }
    providers.push(p);
  });
  return { providers, problems };
}

const HANDLER_WORDS = {
  H1: "Is the service covered?", H2: "Benefit limit", H3: "Out-of-pocket maximum", H4: "Copay once the out-of-pocket maximum is met",
  H5: "Deductible", H6: "Copay", H7: "Deductible, then copay", H8: "Deductible and copay", H9: "Deductible toward the out-of-pocket maximum",
  H10: "Coinsurance", warning: "Note",
};
const VALUE_WORDS = {
  O: "out-of-pocket left", D: "deductible left", L: "limit left", amount_left: "amount not yet shared", covered: "covered",
  copay_left: "copay still due", percent: "coinsurance %", limit_type: "limit type", ded_first: "deductible before copay",
  copay_after_oop: "copay continues after the OOP max", copay_after_ded: "copay continues after the deductible",
  copay_to_oop: "copay counts to the OOP max", copay_to_ded: "copay counts to the deductible", ded_to_oop: "deductible counts to the OOP max",
  coins_to_oop: "coinsurance counts to the OOP max",
};

/** A trace line in words: "Deductible: D > 0 … — looked at deductible left 380.00; charged $380.00 to the deductible". */
export function traceInWords(line) {
  const key = (line.handler || "").split(" ")[0];
  const values = line.values || {};
  const looked = [], charged = [];
  for (const [k, v] of Object.entries(values)) {
    const shown = v === "True" ? "yes" : v === "False" ? "no" : v;
    if (k.startsWith("charged.")) charged.push(`${formatCents(decimalCents(v))} to the ${k.slice(8).replace(/_/g, " ")}`);
    else looked.push(`${VALUE_WORDS[k] || k.replace(/_/g, " ")} ${shown}`);
  }
  let text = `${HANDLER_WORDS[key] || line.handler}: ${line.decision}`;
  if (looked.length) text += ` — looked at ${looked.join(", ")}`;
  if (charged.length) text += `; charged ${charged.join(", ")}`;
  return text;
}

const KIND = { ACCUMULATOR_KIND_DEDUCTIBLE: "Deductible", ACCUMULATOR_KIND_OUT_OF_POCKET_MAX: "Out-of-pocket max", ACCUMULATOR_KIND_LIMIT: "Limit" };
const LEVEL = { ACCUMULATOR_LEVEL_INDIVIDUAL: "individual", ACCUMULATOR_LEVEL_FAMILY: "family" };
const NETWORK = { NETWORK_CATEGORY_IN_NETWORK: "in network", NETWORK_CATEGORY_OUT_OF_NETWORK: "out of network" };

function accumulatorBars(states) {
  if (!states || !states.length) return h("p", { class: "hint" }, "No accumulators applied.");
  return h("div", { class: "bars" }, states.map((s) => {
    const counter = s.limitType === "LIMIT_TYPE_COUNTER";
    const total = decimalCents(s.limitValue), before = decimalCents(s.remainingBefore), after = decimalCents(s.remainingAfter);
    const show = (c) => c === null ? "unknown" : counter ? `${(c / 100n).toString()} visits` : formatCents(c);
    const name = `${KIND[s.kind] || "Accumulator"} · ${LEVEL[s.level] || ""} · ${NETWORK[s.network] || ""}`;
    const usedBefore = total !== null && before !== null ? total - before : null;
    const usedAfter = total !== null && after !== null ? total - after : null;
    return h("div", { class: "bar-row" },
      h("div", {}, h("strong", {}, name), h("div", { class: "bar-text" },
        `left before: ${show(before)} → after: ${show(after)}${total !== null ? ` of ${show(total)}` : ""}`)),
      h("div", {}, h("div", { class: "bar-text" }, "used before"), bar(usedBefore, total),
        h("div", { class: "bar-text" }, "used after"), bar(usedAfter, total, { after: true })));
  }));
}

function breakdownList(e) {
  const b = e.breakdown || {};
  const lines = [["Deductible", b.deductible], ["Copay", b.copay], ["Coinsurance", b.coinsurance], ["Not covered", b.notCovered], ["Over the limit", b.overLimit]];
  return h("dl", { class: "kv" }, lines.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, formatMoney(v || { units: "0" }))]),
    h("dt", {}, "Benefit"), h("dd", {}, (e.matchedBenefit && e.matchedBenefit.benefitName) || "—"));
}

function statusOf(e) { return { ok: !(e.status && e.status.code) }; }

const CODE_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
  "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

export function setupCompare() {
  const form = $("compare-form"), box = $("compare-error"), tbody = $("compare-results").querySelector("tbody");
  const codeType = $("c-code-type");
  for (const name of enums["costestimator.v1.CodeType"].slice(1)) codeType.append(h("option", { value: name }, name.replace("CODE_TYPE_", "")));
  let controller = null;
  let providersById = new Map();

  $("compare-example").addEventListener("click", () => {
    $("c-membership").value = EXAMPLE_MEMBER; $("c-plan").value = "3~"; $("c-code").value = "99214";
    codeType.value = "CODE_TYPE_CPT4"; $("c-pos").value = "11"; $("c-providers").value = exampleProviders();
    clearErrors(form, box);
  });
  $("c-csv").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) $("c-providers").value = await file.text();
  });
  $("compare-stop").addEventListener("click", () => controller && controller.abort());

  const rows = []; // {cents, ok, tr, detail}
  function insertRow(estimate) {
    const st = statusOf(estimate);
    const cents = st.ok ? moneyCents(estimate.memberPays) : null;
    const provider = providersById.get(estimate.providerId) || {};
    const detailId = `detail-${rows.length}`;
    const toggle = h("button", { type: "button", "aria-expanded": "false", "aria-controls": detailId }, "Breakdown");
    const tr = h("tr", { class: st.ok ? "" : "failed", "data-provider": estimate.providerId },
      h("th", { scope: "row" }, provider.displayName ? `${provider.displayName} (${estimate.providerId})` : estimate.providerId),
      h("td", {}, `${NETWORK[provider.networkCategory] || "—"}${provider.benefitTierName ? `, tier ${provider.benefitTierName}` : ""}`),
      h("td", { class: "num" }, formatMoney(estimate.serviceAmount || provider.negotiatedAmount)),
      h("td", { class: "num member-pays" }, st.ok ? formatMoney(estimate.memberPays) : "—"),
      h("td", { class: "num" }, st.ok ? formatMoney(estimate.planPays) : "—"),
      h("td", { class: st.ok ? "status-ok" : "status-bad" }, st.ok ? "OK" : `${CODE_NAMES[estimate.status.code] || estimate.status.code}: ${estimate.status.message || ""}`),
      h("td", {}, st.ok ? toggle : ""));
    const detail = h("tr", { class: "detail", id: detailId, hidden: true },
      h("td", { colspan: "7" }, h("div", { class: "detail-grid" },
        h("div", {}, h("h4", {}, "Breakdown"), breakdownList(estimate)),
        h("div", {}, h("h4", {}, "Accumulators before and after"), accumulatorBars(estimate.accumulators))),
        h("h4", {}, "Why this amount"),
        h("ol", { class: "trace" }, (estimate.trace || []).map((l) => h("li", {}, traceInWords(l))))));
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      detail.hidden = !open;
    });
    const entry = { cents, ok: st.ok, tr, detail };
    // sorted by member pays; failures last; equal amounts keep their arrival order
    let at = rows.findIndex((r) => (!r.ok && entry.ok) || (r.ok && entry.ok && r.cents > entry.cents));
    if (at < 0) at = rows.length;
    const before = rows[at];
    rows.splice(at, 0, entry);
    if (before) { tbody.insertBefore(tr, before.tr); tbody.insertBefore(detail, before.tr); } else tbody.append(tr, detail);
  }

  async function run() {
    clearErrors(form, box);
    const { providers, problems } = parseProviders($("c-providers").value);
    if (problems.length || !providers.length || providers.length > MAX_PROVIDERS) {
      const violations = problems.map((p) => ({ field: "providers", description: p }));
      if (!providers.length && !problems.length) violations.push({ field: "providers", description: "enter at least one provider" });
      if (providers.length > MAX_PROVIDERS) violations.push({ field: "providers", description: `at most ${MAX_PROVIDERS} providers (${providers.length} given)` });
      const e = new ConnectError("invalid_argument", ""); e.fieldViolations = violations;
      showError(form, box, e);
      return;
    }
    providersById = new Map(providers.map((p) => [p.providerId, p]));
    const request = {
      member: { membershipId: $("c-membership").value.trim(), planIdentifier: $("c-plan").value.trim() },
      productType: "BENEFIT_PRODUCT_TYPE_MEDICAL",
      service: { code: $("c-code").value.trim(), codeType: codeType.value, placeOfServiceCode: $("c-pos").value.trim() },
      providers, includeTrace: true,
    };
    rows.length = 0; tbody.replaceChildren();
    $("compare-results").hidden = false; $("compare-progress-box").hidden = false;
    const progress = $("compare-progress"), count = $("compare-count");
    progress.max = providers.length; progress.value = 0; progress.removeAttribute("data-done");
    let received = 0, failed = 0;
    count.textContent = `0 of ${providers.length} providers`;
    controller = new AbortController();
    $("compare-run").disabled = true; $("compare-stop").disabled = false;
    try {
      await serverStream(EstimateService.streamEstimates, request, (message) => {
        received += 1;
        if (message.estimate.status && message.estimate.status.code) failed += 1;
        insertRow(message.estimate);
        progress.value = received;
        count.textContent = `${received} of ${providers.length} providers${failed ? `, ${failed} failed` : ""}`;
      }, { signal: controller.signal, timeoutMs: 60000 });
      count.textContent = `Done: ${received} of ${providers.length} providers${failed ? `, ${failed} failed` : ""}`;
      progress.dataset.done = "true";
    } catch (error) {
      if (error.code === "canceled") count.textContent = `Stopped after ${received} of ${providers.length} providers`;
      else { count.textContent = `${received} of ${providers.length} providers before the error`; showError(form, box, error, run); }
      progress.dataset.done = "error";
    } finally {
      controller = null;
      $("compare-run").disabled = false; $("compare-stop").disabled = true;
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
}
