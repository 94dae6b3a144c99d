// Eligibility: check now (CheckEligibility) or submit and watch (SubmitEligibilityCheck + WatchEligibilityCheck),
// the summary as a card, history per policy (paginated) and stats, refreshed whenever a check completes.
import { EligibilityService } from "./gen/services.js";
import { unary, serverStream } from "./connect.js";
import { h, moneyCents, formatCents, formatMoney, formatPercent, formatDate, formatTimestamp, bar, showError, clearErrors, errorText } from "./ui.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 5;
const FINAL = new Set(["ELIGIBILITY_STATUS_VERIFIED", "ELIGIBILITY_STATUS_FAILED", "ELIGIBILITY_STATUS_NOT_FOUND", "ELIGIBILITY_STATUS_EXPIRED"]);
const STATUS_WORDS = { ELIGIBILITY_STATUS_PENDING: "PENDING", ELIGIBILITY_STATUS_VERIFIED: "VERIFIED", ELIGIBILITY_STATUS_FAILED: "FAILED",
  ELIGIBILITY_STATUS_NOT_FOUND: "NOT_FOUND", ELIGIBILITY_STATUS_EXPIRED: "EXPIRED" };
// X12 time period qualifiers the summary reports buckets in (the common ones; others are left out).
const PERIODS = { "21": "years", "22": "service year", "23": "calendar year", "24": "year to date", "25": "contract", "26": "episode", "27": "visit", "29": "remaining", "32": "lifetime" };
const statusWord = (s) => STATUS_WORDS[s] || "UNKNOWN";
const statusClass = (s) => s === "ELIGIBILITY_STATUS_VERIFIED" ? "status-ok" : s === "ELIGIBILITY_STATUS_PENDING" ? "status-pending" : "status-bad";

// The stand-in clearinghouse's members (README "Eligibility test members"): name, birth date, what they show.
export const SANDBOX_MEMBERS = [
  ["SBX100001", "Alex", "Rivera", "1985-04-12", "verified, deductible partly met, ambiguous copay"],
  ["SBX300001", "Jordan", "Lee", "1990-02-14", "verified, deductible met"],
  ["SBX400001", "Sam", "Patel", "1972-09-30", "verified, out-of-pocket maximum met"],
  ["SBX500001", "Chris", "Morgan", "1968-11-11", "verified, coverage inactive"],
  ["SBX420002", "Pat", "Quinn", "1980-01-01", "payer busy twice, then verified"],
  ["SBX420001", "Pat", "Quinn", "1980-01-01", "payer unable to respond: failed"],
  ["SBX700001", "Dana", "Kim", "1992-07-07", "slow payer (8 s): watch it complete"],
  ["SBX999999", "Alex", "Rivera", "1985-04-12", "unknown member: not found"],
];

function inquiry() {
  const dob = $("e-dob").value; // yyyy-mm-dd from the date picker, or empty
  const [year, month, day] = dob ? dob.split("-").map(Number) : [0, 0, 0];
  const subscriber = { memberId: $("e-member").value.trim(), firstName: $("e-first").value.trim(), lastName: $("e-last").value.trim() };
  if (dob) subscriber.dateOfBirth = { year, month, day };
  return {
    payerId: $("e-payer").value.trim(),
    provider: { npi: $("e-npi").value.trim(), organizationName: $("e-org").value.trim() },
    subscriber,
    serviceTypeCodes: $("e-stc").value.split(",").map((s) => s.trim()).filter(Boolean),
    policyId: $("e-policy").value.trim(),
    patientId: $("e-patient").value.trim(),
  };
}

// ---- the card

function bucketBars(title, levels) {
  const rows = [];
  for (const [levelKey, levelName] of [["individual", "Individual"], ["family", "Family"]]) {
    const networks = levels && levels[levelKey];
    if (!networks) continue;
    for (const [netKey, netName] of [["inNetwork", "in network"], ["outOfNetwork", "out of network"]]) {
      const b = networks[netKey];
      if (!b || (!b.total && !b.met && !b.remaining)) continue;
      const total = moneyCents(b.total), met = moneyCents(b.met), remaining = moneyCents(b.remaining);
      const flags = (b.flags || []).filter((f) => f.startsWith("AMBIGUOUS"));
      rows.push(h("div", { class: "bar-row" },
        h("div", {}, h("strong", {}, `${levelName} · ${netName}`),
          h("div", { class: "bar-text" }, `met ${formatCents(met)} · remaining ${formatCents(remaining)} of ${formatCents(total)}${PERIODS[b.period] ? ` (${PERIODS[b.period]})` : ""}`),
          flags.length ? h("div", { class: "flag" }, `⚠ ambiguous: ${flags.map((f) => f.replace("AMBIGUOUS_", "").toLowerCase()).join(", ")} (the payer sent several values)`) : null),
        bar(met, total)));
    }
  }
  return h("section", {}, h("h4", {}, title), rows.length ? h("div", { class: "bars" }, rows) : h("p", { class: "hint" }, "Not reported."));
}

function costShareCell(n) {
  if (!n) return "—";
  const parts = [];
  if (n.copay) parts.push(`copay ${formatMoney(n.copay)}`);
  if (n.coinsurancePercent) parts.push(`coinsurance ${formatPercent(n.coinsurancePercent)}`);
  const out = [parts.join(", ") || "—"];
  if ((n.flags || []).includes("AMBIGUOUS_COPAY") && n.copayCandidates) {
    out.push(h("div", { class: "flag" }, `⚠ ambiguous copay: ${n.copayCandidates.map((c) => formatMoney(c.amount) + (c.placeOfService ? ` (place of service ${c.placeOfService})` : "")).join(" or ")}`));
  }
  if ((n.flags || []).includes("AMBIGUOUS_COINSURANCE") && n.coinsuranceCandidates) {
    out.push(h("div", { class: "flag" }, `⚠ ambiguous coinsurance: ${n.coinsuranceCandidates.map((c) => formatPercent(c.percent)).join(" or ")}`));
  }
  return out;
}

export function renderCard(check) {
  const s = check.summary || {};
  const card = h("article", { class: "card", "aria-labelledby": "card-title", "data-status": statusWord(check.status) },
    h("header", {},
      h("h3", { id: "card-title" }, s.planName || "Eligibility check"),
      h("span", { class: `badge ${statusClass(check.status)}` }, statusWord(check.status)),
      s.activity ? h("span", {}, `Coverage: ${s.activity.replace("COVERAGE_ACTIVITY_", "").toLowerCase()}`) : null),
    h("dl", { class: "kv" },
      h("dt", {}, "Payer"), h("dd", {}, s.payerName || check.payerId || "—"),
      h("dt", {}, "Plan / group"), h("dd", {}, [s.planNumber, s.groupName || s.groupNumber].filter(Boolean).join(" · ") || "—"),
      h("dt", {}, "Effective"), h("dd", {}, `${formatDate(s.effectiveDate)}${s.terminationDate ? ` to ${formatDate(s.terminationDate)}` : ""}`),
      h("dt", {}, "Requested / completed"), h("dd", {}, `${formatTimestamp(check.requestedAt)} / ${formatTimestamp(check.completedAt)}`),
      h("dt", {}, "Attempts"), h("dd", {}, String(check.attempts || 0)),
      check.failureReason ? [h("dt", {}, "Reason"), h("dd", {}, check.failureReason)] : null));
  if (check.status === "ELIGIBILITY_STATUS_VERIFIED") {
    card.append(h("div", { class: "detail-grid" }, bucketBars("Deductible", s.deductible), bucketBars("Out-of-pocket maximum", s.outOfPocket)));
    const shares = s.serviceCostShares || [];
    if (shares.length) {
      card.append(h("h4", {}, "Copays and coinsurance per service"),
        h("table", { class: "results" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Service"), h("th", { scope: "col" }, "In network"), h("th", { scope: "col" }, "Out of network"))),
          h("tbody", {}, shares.map((c) => h("tr", {}, h("th", { scope: "row" }, `${c.serviceTypeName || ""} (${c.serviceTypeCode})`),
            h("td", {}, costShareCell(c.inNetwork)), h("td", {}, costShareCell(c.outOfNetwork)))))));
    }
    const flags = (s.flags || []);
    if (flags.length) card.append(h("p", { class: "flag" }, `Flags: ${flags.join(", ")}`));
    const hook = estimateFromCheckHook(check);
    if (hook) card.append(hook);
  }
  return card;
}

// HOOK(EstimateFromEligibility) ----------------------------------------------------------------------------------
// Issue 12: "from a verified check, one click estimates a service from it (range and assumptions visible)".
// The RPC is being added by another change. Once it is in protos/, `scripts/gen_console.py` adds
// `EligibilityService.estimateFromEligibility` to gen/services.js and this section appears; fill in
// `estimateFromEligibilityRequest` with the request's fields and render the answer's range and assumptions.
export function estimateFromEligibilityRequest(check) { return null; /* e.g. { checkId: check.id, service: {...} } */ }

function estimateFromCheckHook(check) {
  const method = EligibilityService.estimateFromEligibility;
  const request = method && estimateFromEligibilityRequest(check);
  if (!request) return null;
  const out = h("div", { class: "hook", "aria-live": "polite" });
  const button = h("button", { type: "button" }, "Estimate a service from this check");
  button.addEventListener("click", async () => {
    try { out.replaceChildren(button, h("pre", {}, JSON.stringify(await unary(method, request), null, 2))); }
    catch (e) { out.replaceChildren(button, h("p", { class: "field-error" }, errorText(e))); }
  });
  out.append(button);
  return out;
}
// ----------------------------------------------------------------------------------------------------------------

export function setupEligibility() {
  const form = $("elig-form"), box = $("elig-error"), live = $("elig-live"), cardBox = $("elig-card");
  const example = $("e-example");
  SANDBOX_MEMBERS.forEach(([id, , , , what], i) => example.append(h("option", { value: String(i) }, `${id}: ${what}`)));
  $("elig-example").addEventListener("click", () => {
    const [id, first, last, dob] = SANDBOX_MEMBERS[Number(example.value)];
    $("e-payer").value = "SBX01"; $("e-npi").value = "1999999984"; $("e-org").value = "Riverbend Family Medicine";
    $("e-member").value = id; $("e-first").value = first; $("e-last").value = last; $("e-dob").value = dob;
    if (!$("e-policy").value) $("e-policy").value = "policy-1";
    if (!$("e-patient").value) $("e-patient").value = "patient-1";
    clearErrors(form, box);
  });

  // ---- history and stats of the form's policy
  let policy = "", tokens = [""], page = 0;
  async function loadHistory() {
    const tbody = $("history").querySelector("tbody");
    $("history-policy").textContent = policy || "—";
    $("stats-policy").textContent = policy || "—";
    if (!policy) { tbody.replaceChildren(); $("history-page").textContent = ""; return; }
    try {
      const reply = await unary(EligibilityService.listEligibilityChecks, { policyId: policy, pageSize: PAGE_SIZE, pageToken: tokens[page] });
      const checks = reply.checks || [];
      tbody.replaceChildren(...checks.map((c) => h("tr", { "data-check": c.id },
        h("td", {}, formatTimestamp(c.requestedAt)), h("td", { class: statusClass(c.status) }, statusWord(c.status)),
        h("td", {}, c.payerId || "—"), h("td", {}, String(c.attempts || 0)),
        h("td", {}, h("button", { type: "button", onclick: () => openCheck(c.id), "aria-label": `Open the check of ${formatTimestamp(c.requestedAt)}` }, "Open")))));
      if (!checks.length) tbody.append(h("tr", {}, h("td", { colspan: "5" }, "No checks yet.")));
      tokens = tokens.slice(0, page + 1);
      if (reply.nextPageToken) tokens.push(reply.nextPageToken);
      $("history-next").disabled = !reply.nextPageToken;
      $("history-prev").disabled = page === 0;
      $("history-page").textContent = `Page ${page + 1}`;
    } catch (e) {
      tbody.replaceChildren(h("tr", {}, h("td", { colspan: "5", class: "status-bad" }, errorText(e))));
    }
    try {
      const st = await unary(EligibilityService.getEligibilityStats, { policyId: policy });
      const n = (v) => String(v || 0);
      $("stats").replaceChildren(...[["Total", n(st.total)], ["Pending", n(st.pending)], ["Verified", n(st.verified)], ["Failed", n(st.failed)],
        ["Not found", n(st.notFound)], ["Last checked", formatTimestamp(st.lastCheckedAt)], ["Last completed", formatTimestamp(st.lastCompletedAt)]]
        .flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-stat": k }, v)]));
    } catch (e) {
      $("stats").replaceChildren(h("dd", { class: "status-bad" }, errorText(e)));
    }
  }
  function refresh(newPolicy) {
    if (newPolicy !== undefined && newPolicy !== policy) { policy = newPolicy; tokens = [""]; page = 0; }
    return loadHistory();
  }
  $("history-next").addEventListener("click", () => { page += 1; loadHistory(); });
  $("history-prev").addEventListener("click", () => { page = Math.max(0, page - 1); loadHistory(); });
  $("e-policy").addEventListener("change", () => refresh($("e-policy").value.trim()));

  function show(check) {
    cardBox.replaceChildren(renderCard(check));
    live.textContent = `Check ${statusWord(check.status)}`;
    live.className = `live ${statusClass(check.status)}`;
  }
  async function openCheck(id) {
    try { show((await unary(EligibilityService.getEligibilityCheck, { id })).check); }
    catch (e) { live.textContent = errorText(e); }
  }

  const buttons = [$("elig-check"), $("elig-submit")];
  const busy = (on) => buttons.forEach((b) => { b.disabled = on; });

  async function checkNow() {
    clearErrors(form, box);
    const request = { inquiry: inquiry() };
    busy(true); live.className = "live status-pending"; live.textContent = "Checking…"; cardBox.replaceChildren();
    try {
      const reply = await unary(EligibilityService.checkEligibility, request, { timeoutMs: 30000 });
      show(reply.check);
    } catch (e) {
      live.textContent = "";
      showError(form, box, e, checkNow);
      if (e.code === "deadline_exceeded") live.textContent = "The check goes on in the background: it will appear in the history.";
    } finally {
      busy(false);
      refresh(request.inquiry.policyId);
    }
  }

  async function submitAndWatch() {
    clearErrors(form, box);
    const request = { inquiry: inquiry() };
    busy(true); cardBox.replaceChildren();
    try {
      const submitted = (await unary(EligibilityService.submitEligibilityCheck, request)).check;
      show(submitted);
      refresh(request.inquiry.policyId);
      let last = submitted;
      await serverStream(EligibilityService.watchEligibilityCheck, { id: submitted.id }, (message) => {
        last = message.check;
        show(last);
      });
      if (!FINAL.has(last.status)) live.textContent = "The watch ended before the check did; open it from the history.";
    } catch (e) {
      showError(form, box, e, submitAndWatch);
    } finally {
      busy(false);
      refresh(request.inquiry.policyId);
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); checkNow(); });
  $("elig-submit").addEventListener("click", submitAndWatch);
  refresh($("e-policy").value.trim());
}
