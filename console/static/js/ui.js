// Shared helpers: building elements, exact money from the JSON mapping, bars, and errors as people read them.

/** h("p", {class: "x"}, "text", child): an element; strings become text nodes (never HTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

// ---- money and decimals, exact: cents as BigInt (google.type.Money: units int64 as a string, nanos int32)

export function moneyCents(m) {
  if (!m) return null;
  return BigInt(m.units || "0") * 100n + BigInt(Math.trunc((m.nanos || 0) / 10_000_000));
}

export function decimalCents(d) {
  const text = typeof d === "string" ? d : d && d.value;
  if (!text || !/^-?\d+(\.\d+)?$/.test(text)) return null;
  const [whole, frac = ""] = text.replace("-", "").split(".");
  const cents = BigInt(whole) * 100n + BigInt((frac + "00").slice(0, 2));
  return text.startsWith("-") ? -cents : cents;
}

export function formatCents(cents) {
  if (cents === null || cents === undefined) return "—";
  const negative = cents < 0n;
  const abs = negative ? -cents : cents;
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "−" : ""}$${whole}.${(abs % 100n).toString().padStart(2, "0")}`;
}

export const formatMoney = (m) => formatCents(moneyCents(m));

export function formatPercent(d) { return d && d.value !== undefined ? `${d.value} %` : "—"; }

export function formatDate(d) {
  if (!d || !d.year) return "—";
  return `${d.year}-${String(d.month).padStart(2, "0")}-${String(d.day).padStart(2, "0")}`;
}

export function formatTimestamp(ts) {
  if (!ts) return "—";
  const when = new Date(ts);
  return Number.isNaN(when.getTime()) ? ts : when.toLocaleString();
}

/** A bar: `part` of `whole` (BigInt cents or counts); the words carry the numbers, the bar is decoration. */
export function bar(part, whole, { after = false } = {}) {
  let permille = 0n;
  if (whole !== null && whole > 0n && part !== null) {
    permille = (part < 0n ? 0n : part > whole ? whole : part) * 1000n / whole;
  }
  const fill = h("span");
  fill.style.width = `${Number(permille) / 10}%`;
  return h("div", { class: after ? "bar after" : "bar", "aria-hidden": "true" }, fill);
}

// ---- errors

const CODE_WORDS = {
  invalid_argument: "Some values need attention.",
  unavailable: "The service is not available right now.",
  deadline_exceeded: "That took too long.",
  resource_exhausted: "The service is busy.",
  unauthenticated: "The console is not signed in: open \u201cAccess token\u201d at the top and paste a token.",
  permission_denied: "This token may not do that.",
  not_found: "Not found.",
  failed_precondition: "The service could not do that in the current state.",
  data_loss: "A stored record could not be read.",
  canceled: "Stopped.",
};

const TRY_AGAIN = new Set(["unavailable", "deadline_exceeded", "resource_exhausted"]);

/** What a person reads for an error (no stack trace, no raw payload). */
export function errorText(error) {
  const code = error && error.code;
  const words = CODE_WORDS[code] || "Something went wrong on our side.";
  const generic = code === "internal" || code === "unknown" || (code === "invalid_argument" && (error.fieldViolations || []).length);
  const detail = error && error.message && !generic ? error.message : "";
  return detail && !words.includes(detail) ? `${words} ${capitalise(detail)}${/[.!?]$/.test(detail) ? "" : "."}` : words;
}

function capitalise(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

/** Clear field errors of a form. */
export function clearErrors(form, box) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  box.hidden = true;
  box.replaceChildren();
}

/**
 * Show an error: field violations next to their fields (the closest `data-field` prefix), the rest in the box;
 * a "try again" button for transient failures.
 */
export function showError(form, box, error, retry) {
  clearErrors(form, box);
  const unplaced = [];
  let first = null;
  for (const v of error.fieldViolations || []) {
    const target = fieldFor(form, v.field);
    if (!target) { unplaced.push(v); continue; }
    target.setAttribute("aria-invalid", "true");
    const id = `${target.id}-error`;
    let note = document.getElementById(id);
    if (!note) {
      note = h("p", { class: "field-error", id });
      target.insertAdjacentElement("afterend", note);
      target.setAttribute("aria-describedby", [target.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
    }
    const where = v.field.startsWith(target.dataset.field + "[") ? `${readableField(v.field.slice(target.dataset.field.length))}: ` : "";
    note.append(h("span", {}, `${where}${v.description}`));
    first = first || target;
  }
  box.append(h("p", {}, errorText(error)));
  if (unplaced.length) box.append(h("ul", {}, unplaced.map((v) => h("li", {}, `${readableField(v.field)}: ${v.description}`))));
  if (TRY_AGAIN.has(error.code) && retry) {
    const after = error.retryAfterSeconds ? ` (after about ${error.retryAfterSeconds} s)` : "";
    box.append(h("button", { type: "button", onclick: retry }, `Try again${after}`));
  }
  box.hidden = false;
  (first || box).focus();
}

function fieldFor(form, path) {
  let best = null;
  for (const el of form.querySelectorAll("[data-field]")) {
    const f = el.dataset.field;
    if ((path === f || path.startsWith(f + ".") || path.startsWith(f + "[")) && (!best || f.length > best.dataset.field.length)) best = el;
  }
  return best;
}

function readableField(path) {
  return path.replace(/^\[(\d+)\]/, (_, i) => `#${Number(i) + 1}`).replace(/\[(\d+)\]/g, (_, i) => ` ${Number(i) + 1}`)
    .replace(/^\./, "").replace(/_/g, " ").replace(/\./g, " › ");
}
