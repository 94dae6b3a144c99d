// Estimate from a verified check (EstimateFromEligibility): a service, its place and up to 100 providers with
// their allowed amounts -> per provider the point estimate, the range low–high, how complete it is, the
// assumptions made and the service type used; the breakdown and the trace on demand. Only the check's id is sent:
// the member's data stays on the server.
import { EstimateService, enums } from "./gen/services.js";
import { unary, ConnectError } from "./connect.js";
import { h, moneyCents, formatCents, formatMoney, showError, clearErrors } from "./ui.js";
import { breakdownList, traceInWords, CODE_NAMES } from "./compare.js";

export const MAX_PROVIDERS = 100;

// Common sandbox choices: [value, label, place of service it usually goes with]. "" = service types only.
export const PROCEDURES = [
  ["99213", "99213 — office visit, established patient", "11"],
  ["99214", "99214 — office visit, established patient (longer)", "11"],
  ["99285", "99285 — emergency room visit", "23"],
  ["99395", "99395 — preventive visit", "11"],
  ["97110", "97110 — physical therapy", "11"],
  ["70551", "70551 — MRI of the brain", "22"],
  ["", "None: use the service type codes below", ""],
];
const PLACES = [["11", "11 — office"], ["20", "20 — urgent care"], ["23", "23 — emergency room"],
  ["22", "22 — outpatient hospital"], ["02", "02 — telehealth"], ["", "Not given"]];
const NETWORKS = [["NETWORK_CATEGORY_IN_NETWORK", "In network"], ["NETWORK_CATEGORY_OUT_OF_NETWORK", "Out of network"]];
const ROLES = [["PROVIDER_ROLE_UNSPECIFIED", "Any (largest copay)"], ["PROVIDER_ROLE_PRIMARY_CARE", "Primary care"],
  ["PROVIDER_ROLE_SPECIALIST", "Specialist"]];
/** The default pair: the same visit in and out of network. */
export const DEFAULT_PROVIDERS = [
  { providerId: "pcp", displayName: "Riverbend Family Medicine", networkCategory: "NETWORK_CATEGORY_IN_NETWORK", amount: "180.00", role: "PROVIDER_ROLE_PRIMARY_CARE" },
  { providerId: "oon", displayName: "Lakeside Clinic (out of network)", networkCategory: "NETWORK_CATEGORY_OUT_OF_NETWORK", amount: "180.00", role: "PROVIDER_ROLE_UNSPECIFIED" },
];

const COMPLETENESS = {
  ESTIMATE_COMPLETENESS_COMPLETE: ["Complete", "one amount: every reading of the check gives the same, nothing is missing"],
  ESTIMATE_COMPLETENESS_AMBIGUOUS: ["Ambiguous", "the check allows several readings: the member pays somewhere in the range"],
  ESTIMATE_COMPLETENESS_INCOMPLETE: ["Incomplete", "the check lacks a value the estimate needed (see the assumptions)"],
};
const KINDS = { ASSUMPTION_KIND_GAP: "missing from the check", ASSUMPTION_KIND_AMBIGUITY: "several readings",
  ASSUMPTION_KIND_INFO: "default or note" };

const option = ([value, label], selected) => h("option", { value, selected: value === selected }, label);
const select = (id, field, choices, selected, label) =>
  h("select", { id, "data-field": field, "aria-label": label }, choices.map((c) => option(c, selected)));

/** "180.00" -> google.type.Money (JSON mapping), exact; null when it is not an amount at all. The service judges
 * the rest (negative, more than two decimals) and answers with a field violation. */
export function moneyFromText(text) {
  const m = /^(-?)\$?(\d{1,15})(?:\.(\d{1,9}))?$/.exec(text.trim().replace(/,/g, ""));
  if (!m) return null;
  const nanos = Number((m[3] || "").padEnd(9, "0"));
  return { currencyCode: "USD", units: `${m[1]}${m[2]}`.replace(/^-0+$/, "0"), nanos: m[1] ? -nanos : nanos };
}

function providerRow(i, p) {
  const id = (name) => `x-p-${name}-${i}`;
  const field = (name) => `providers[${i}].${name}`;
  const label = (what) => `${what}, provider ${i + 1}`;
  const remove = h("button", { type: "button", class: "remove", "aria-label": `Remove provider ${i + 1}` }, "Remove");
  const row = h("tr", { "data-row": String(i) },
    h("td", {}, h("input", { id: id("id"), "data-field": field("provider_id"), value: p.providerId, autocomplete: "off", "aria-label": label("Provider id"), size: "8" })),
    h("td", {}, h("input", { id: id("name"), "data-field": field("display_name"), value: p.displayName || "", autocomplete: "off", "aria-label": label("Name") })),
    h("td", {}, select(id("net"), field("network_category"), NETWORKS, p.networkCategory, label("Network"))),
    h("td", {}, h("input", { id: id("amount"), "data-field": field("allowed_amount"), value: p.amount, inputmode: "decimal", autocomplete: "off", "aria-label": label("Allowed amount in dollars"), size: "9" })),
    h("td", {}, select(id("role"), field("role"), ROLES, p.role, label("Role"))),
    h("td", {}, remove));
  return { row, remove };
}

function readProviders(tbody) {
  return [...tbody.querySelectorAll("tr[data-row]")].map((tr) => {
    const [id, name, net, amount, role] = tr.querySelectorAll("input, select");
    return { providerId: id.value.trim(), displayName: name.value.trim(), networkCategory: net.value, amount: amount.value, role: role.value };
  });
}

// ---- the answer

function band(low, high, point, scale) {
  const at = (c) => scale > 0n && c !== null ? Number((c < 0n ? 0n : c > scale ? scale : c) * 1000n / scale) / 10 : 0;
  const fill = h("span", { class: "range" });
  fill.style.left = `${at(low)}%`;
  fill.style.width = `${Math.max(at(high) - at(low), 0.6)}%`;
  const mark = h("span", { class: "point" });
  mark.style.left = `${at(point)}%`;
  return h("div", { class: "band", "aria-hidden": "true" }, fill, mark);
}

function serviceTypeName(check, code) {
  const share = ((check.summary || {}).serviceCostShares || []).find((c) => c.serviceTypeCode === code);
  return share && share.serviceTypeName ? `${code} — ${share.serviceTypeName}` : code;
}

function renderEstimate(item, provider, check) {
  const e = item.estimate || {};
  const ok = !(e.status && e.status.code);
  const title = `${provider.displayName ? `${provider.displayName} (${provider.providerId})` : provider.providerId}`;
  const network = provider.networkCategory === "NETWORK_CATEGORY_OUT_OF_NETWORK" ? "out of network" : "in network";
  const li = h("li", { class: "estimate", "data-provider": provider.providerId },
    h("h5", {}, title, h("span", { class: "hint" }, ` · ${network} · allowed ${formatMoney(e.serviceAmount) !== "—" ? formatMoney(e.serviceAmount) : provider.amount}`),
      " ", h("span", { class: `badge ${ok ? "status-ok" : "status-bad"}`, "data-role": "status" }, ok ? "OK" : CODE_NAMES[e.status.code] || String(e.status.code))));
  if (!ok) {
    li.append(h("p", { class: "status-bad" }, e.status.message || "No estimate for this provider."));
    return li;
  }
  const low = moneyCents(item.memberPaysLow), high = moneyCents(item.memberPaysHigh), point = moneyCents(e.memberPays);
  const allowed = moneyCents(e.serviceAmount) || 0n;
  const scale = [allowed, high || 0n].reduce((a, b) => (a > b ? a : b));
  const [word, meaning] = COMPLETENESS[item.completeness] || ["Unknown", "the service did not say"];
  li.dataset.completeness = word.toUpperCase();
  li.append(
    h("dl", { class: "kv" },
      h("dt", {}, "Member pays"), h("dd", { "data-role": "member-pays" }, formatCents(point)),
      h("dt", {}, "Plan pays"), h("dd", { "data-role": "plan-pays" }, formatMoney(e.planPays)),
      h("dt", {}, "Range"), h("dd", { "data-role": "range" }, low === high ? `${formatCents(low)} (one amount)` : `${formatCents(low)} – ${formatCents(high)}`),
      h("dt", {}, "Completeness"), h("dd", { "data-role": "completeness" }, h("strong", {}, word), `: ${meaning}`),
      h("dt", {}, "Service type used"), h("dd", { "data-role": "service-type" }, serviceTypeName(check, item.serviceTypeCode) || "—")),
    h("div", { class: "band-row" }, h("span", { class: "bar-text" }, "$0"), band(low, high, point, scale),
      h("span", { class: "bar-text" }, formatCents(scale))));
  const assumptions = item.assumptions || [];
  li.append(h("h6", {}, "Assumptions"), assumptions.length
    ? h("ul", { class: "assumptions" }, assumptions.map((a) => h("li", { "data-code": a.code },
      h("code", {}, a.code), ` (${KINDS[a.kind] || "note"}): `, a.text)))
    : h("p", { class: "hint" }, "None: the check said everything the estimate needed."));
  li.append(h("details", {}, h("summary", {}, "Breakdown and why this amount"),
    breakdownList(e), h("ol", { class: "trace" }, (e.trace || []).map((l) => h("li", {}, traceInWords(l))))));
  return li;
}

/** The form and answer panel for one VERIFIED check (only its id is sent). */
export function estimatePanel(check) {
  const box = h("div", { id: "x-error", class: "error-box", role: "alert", tabindex: "-1", hidden: true });
  const procedure = select("x-procedure", "service.procedure.code", PROCEDURES, "99213", null);
  procedure.removeAttribute("aria-label");
  const stc = h("input", { id: "x-stc", "data-field": "service.service_type_codes", autocomplete: "off", "aria-describedby": "x-stc-help" });
  const place = h("select", { id: "x-pos", "data-field": "service.place_of_service_code" }, PLACES.map((c) => option(c, "11")));
  procedure.addEventListener("change", () => {
    const row = PROCEDURES.find(([v]) => v === procedure.value);
    if (row && row[2]) place.value = row[2];
  });
  const tbody = h("tbody");
  const add = h("button", { type: "button", id: "x-add" }, "Add provider");
  const render = (providers) => {
    tbody.replaceChildren();
    providers.forEach((p, i) => {
      const { row, remove } = providerRow(i, p);
      remove.addEventListener("click", () => {
        render(readProviders(tbody).filter((_, j) => j !== i));
        (tbody.querySelector(`#x-p-id-${Math.min(i, tbody.children.length - 1)}`) || add).focus();
      });
      tbody.append(row);
    });
    add.disabled = providers.length >= MAX_PROVIDERS;
  };
  render(DEFAULT_PROVIDERS);
  add.addEventListener("click", () => {
    const providers = readProviders(tbody);
    providers.push({ providerId: `p${providers.length + 1}`, displayName: "", networkCategory: "NETWORK_CATEGORY_IN_NETWORK", amount: "", role: "PROVIDER_ROLE_UNSPECIFIED" });
    render(providers);
    tbody.querySelector(`#x-p-id-${providers.length - 1}`).focus();
  });
  const run = h("button", { type: "submit", class: "primary", id: "x-run" }, "Estimate from this check");
  const status = h("p", { class: "live", id: "x-live", "aria-live": "polite" });
  const results = h("ol", { class: "estimates", id: "x-results", "aria-label": "Estimates per provider" });
  const form = h("form", { id: "x-form", novalidate: true, "aria-labelledby": "x-title" },
    h("fieldset", { class: "grid" }, h("legend", {}, "Service"),
      h("div", { class: "field" }, h("label", { for: "x-procedure" }, "Procedure"), procedure),
      h("div", { class: "field" }, h("label", { for: "x-stc" }, "Service type codes (optional)"), stc,
        h("p", { id: "x-stc-help", class: "hint" }, "X12 codes, comma separated, e.g. 98 or UC; they replace the procedure's mapping")),
      h("div", { class: "field" }, h("label", { for: "x-pos" }, "Place of service"), place)),
    h("fieldset", {}, h("legend", {}, `Providers (up to ${MAX_PROVIDERS})`),
      h("table", { class: "results providers", "data-field": "providers", id: "x-providers" },
        h("thead", {}, h("tr", {}, ["Provider id", "Name", "Network", "Allowed amount ($)", "Role"].map((t) => h("th", { scope: "col" }, t)),
          h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Remove")))),
        tbody),
      h("div", { class: "actions" }, add)),
    h("div", { class: "actions" }, run), box);

  async function estimate() {
    clearErrors(form, box);
    const providers = readProviders(tbody);
    const violations = [];
    const wire = providers.map((p, i) => {
      const allowed = moneyFromText(p.amount);
      if (!allowed) violations.push({ field: `providers[${i}].allowed_amount`, description: "enter dollars and cents, e.g. 180.00" });
      const out = { providerId: p.providerId, networkCategory: p.networkCategory, role: p.role };
      if (p.displayName) out.displayName = p.displayName;
      if (allowed) out.allowedAmount = allowed;
      return out;
    });
    if (violations.length) {
      const e = new ConnectError("invalid_argument", ""); e.fieldViolations = violations;
      showError(form, box, e);
      return;
    }
    const service = { placeOfServiceCode: place.value,
      serviceTypeCodes: stc.value.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean) };
    if (procedure.value) service.procedure = { code: procedure.value, codeType: /^[A-Z]/.test(procedure.value) ? "CODE_TYPE_HCPCS" : "CODE_TYPE_CPT4" };
    const request = { checkId: check.id, service, providers: wire, includeTrace: true };
    run.disabled = true; status.className = "live status-pending"; status.textContent = "Estimating…"; results.replaceChildren();
    try {
      const reply = await unary(EstimateService.estimateFromEligibility, request);
      const items = reply.estimates || [];
      results.replaceChildren(...items.map((item, i) => renderEstimate(item, providers[i], check)));
      const dos = reply.dateOfService;
      status.className = "live status-ok";
      status.textContent = `${items.length} estimate${items.length === 1 ? "" : "s"}${dos ? ` for ${dos.year}-${String(dos.month).padStart(2, "0")}-${String(dos.day).padStart(2, "0")}, the check's date of service` : ""}`;
    } catch (e) {
      status.textContent = ""; status.className = "live";
      showError(form, box, e, estimate);
      if (e.reason) {
        box.dataset.reason = e.reason;
        box.append(h("p", { class: "hint" }, `Reason code: ${e.reason}`));
      }
    } finally {
      run.disabled = false;
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); estimate(); });
  return h("section", { class: "estimate-panel", "aria-labelledby": "x-title" },
    h("h4", { id: "x-title" }, "Estimate a service from this check"),
    h("p", { class: "hint" }, "Uses this check's answer instead of the payer's benefit APIs; only the check's id is sent."),
    form, status, results);
}

// the enum names this module relies on exist in the generated module (a renamed enum fails loudly at load)
for (const [name, values] of [["costestimator.v1.EstimateCompleteness", Object.keys(COMPLETENESS)],
  ["costestimator.v1.ProviderRole", ROLES.map(([v]) => v)], ["costestimator.v1.NetworkCategory", NETWORKS.map(([v]) => v)]]) {
  for (const v of values) if (!(enums[name] || []).includes(v)) throw new Error(`${name} has no ${v}: regenerate gen/services.js`);
}
