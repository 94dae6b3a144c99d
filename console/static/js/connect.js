// The Connect protocol over fetch, JSON mapping: a unary call is one POST, a server stream is enveloped JSON
// messages read as they arrive. Errors become ConnectError with the service's code, message and details
// (google.rpc.BadRequest field violations and RetryInfo decoded; other details kept as they came).

const ACCESS_TOKEN_KEY = "costest.accessToken";

/** An access token the user pasted (beyond loopback); kept for this tab only, sent as a header, never in a URL. */
export function accessToken() { return sessionStorage.getItem(ACCESS_TOKEN_KEY) || ""; }
export function setAccessToken(token) {
  if (token) sessionStorage.setItem(ACCESS_TOKEN_KEY, token); else sessionStorage.removeItem(ACCESS_TOKEN_KEY);
}

export class ConnectError extends Error {
  constructor(code, message, details = []) {
    super(message || "");
    this.code = code;                 // "invalid_argument", "unavailable", ...
    this.details = details;           // [{type, value (bytes)}]
    this.fieldViolations = [];        // [{field, description}]
    this.retryAfterSeconds = null;
    for (const d of details) {
      if (d.type === "google.rpc.BadRequest") this.fieldViolations.push(...decodeBadRequest(d.bytes));
      if (d.type === "google.rpc.RetryInfo") this.retryAfterSeconds = decodeRetryInfo(d.bytes);
    }
  }
}

function headers(extra) {
  const h = { "connect-protocol-version": "1", ...extra };
  const token = accessToken();
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

/** One unary call; resolves to the response message (JSON object). */
export async function unary(method, request, { timeoutMs = 15000, signal } = {}) {
  let response;
  try {
    response = await fetch(method.path, {
      method: "POST", body: JSON.stringify(request), signal, cache: "no-store", credentials: "same-origin",
      headers: headers({ "content-type": "application/json", "connect-timeout-ms": String(timeoutMs) }),
    });
  } catch (e) {
    if (e.name === "AbortError") throw new ConnectError("canceled", "cancelled");
    throw new ConnectError("unavailable", "the console cannot reach its server");
  }
  if (response.ok) return response.json();
  throw await errorFromResponse(response);
}

async function errorFromResponse(response) {
  try {
    return errorFromJson(await response.json());
  } catch {
    return new ConnectError(response.status === 503 ? "unavailable" : "unknown", `HTTP ${response.status}`);
  }
}

function errorFromJson(body) {
  const details = (body.details || []).map((d) => ({ type: d.type, bytes: base64Bytes(d.value || "") }));
  return new ConnectError(body.code || "unknown", body.message || "", details);
}

/**
 * A server stream: `onMessage(message)` for each message as it arrives; resolves when the stream ends well,
 * rejects with ConnectError otherwise. `signal` (AbortController) cancels it.
 */
export async function serverStream(method, request, onMessage, { timeoutMs, signal } = {}) {
  const json = new TextEncoder().encode(JSON.stringify(request));
  const body = new Uint8Array(5 + json.length);
  new DataView(body.buffer).setUint32(1, json.length);
  body.set(json, 5);
  const extra = { "content-type": "application/connect+json" };
  if (timeoutMs) extra["connect-timeout-ms"] = String(timeoutMs);
  let response;
  try {
    response = await fetch(method.path, { method: "POST", body, signal, cache: "no-store", headers: headers(extra) });
  } catch (e) {
    if (e.name === "AbortError") throw new ConnectError("canceled", "cancelled");
    throw new ConnectError("unavailable", "the console cannot reach its server");
  }
  if (!response.ok) throw await errorFromResponse(response);
  const reader = response.body.getReader();
  let buffer = new Uint8Array(0);
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (value) buffer = concat(buffer, value);
      while (buffer.length >= 5) {
        const flags = buffer[0];
        const length = new DataView(buffer.buffer, buffer.byteOffset).getUint32(1);
        if (buffer.length < 5 + length) break;
        const payload = JSON.parse(decoder.decode(buffer.subarray(5, 5 + length)) || "{}");
        buffer = buffer.subarray(5 + length);
        if (flags & 0x02) {                       // end of stream: {error?, metadata?}
          if (payload.error) throw errorFromJson(payload.error);
          return;
        }
        onMessage(payload);
      }
      if (done) throw new ConnectError("unavailable", "the stream ended early");
    }
  } catch (e) {
    if (e instanceof ConnectError) throw e;
    if (e.name === "AbortError") throw new ConnectError("canceled", "cancelled");
    throw new ConnectError("unavailable", "the connection was lost");
  } finally {
    reader.releaseLock?.();
  }
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function base64Bytes(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const raw = atob(padded);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

// ---- the two error details the console reads, from their protobuf wire format (google/rpc/error_details.proto)

function* fields(bytes) {
  let i = 0;
  const varint = () => {
    let result = 0n, shift = 0n;
    for (;;) {
      const b = bytes[i++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  };
  while (i < bytes.length) {
    const key = Number(varint());
    const number = key >> 3, wire = key & 7;
    if (wire === 0) yield [number, varint()];
    else if (wire === 2) { const n = Number(varint()); yield [number, bytes.subarray(i, i + n)]; i += n; }
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return;
  }
}

const utf8 = new TextDecoder();

function decodeBadRequest(bytes) {   // BadRequest { repeated FieldViolation field_violations = 1; }
  const out = [];
  for (const [n, v] of fields(bytes)) {
    if (n !== 1) continue;
    const violation = { field: "", description: "" };  // FieldViolation { string field = 1; string description = 2; }
    for (const [m, w] of fields(v)) {
      if (m === 1) violation.field = utf8.decode(w);
      if (m === 2) violation.description = utf8.decode(w);
    }
    out.push(violation);
  }
  return out;
}

function decodeRetryInfo(bytes) {    // RetryInfo { google.protobuf.Duration retry_delay = 1; }
  for (const [n, v] of fields(bytes)) {
    if (n !== 1) continue;
    let seconds = 0;
    for (const [m, w] of fields(v)) if (m === 1) seconds = Number(w);
    return seconds;
  }
  return null;
}
