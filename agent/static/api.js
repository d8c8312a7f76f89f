// Talking to the server: the bearer token, JSON fetches with readable errors, and an SSE reader.

import { emitter } from "./dom.js";
import { timezone } from "./format.js";

const TOKEN_KEY = "todo-chatbot.token";

function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage disabled: signed in for this page only
  }
}

let memoryToken = readToken();

/** The bearer token (empty when none), and who to tell when the server asks for one. */
export const auth = {
  changed: emitter(), // (token) after sign-in / sign-out, here or in another tab
  needed: emitter(), // (message) when the server answered 401 or closed the socket with 4401
  get token() {
    return memoryToken;
  },
  set(token) {
    memoryToken = token || "";
    try {
      if (memoryToken) localStorage.setItem(TOKEN_KEY, memoryToken);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      /* private mode: keep it in memory */
    }
    auth.changed.emit(memoryToken);
  },
  /** Drop the token without telling listeners (it was refused; the sign-in panel is showing). */
  forget() {
    memoryToken = "";
    try {
      localStorage.removeItem(TOKEN_KEY);
    } catch {
      /* private mode */
    }
  },
  required(message) {
    auth.needed.emit(message);
  },
  headers() {
    return memoryToken ? { Authorization: `Bearer ${memoryToken}` } : {};
  },
};

window.addEventListener("storage", (event) => {
  if (event.key !== TOKEN_KEY) return;
  memoryToken = event.newValue || "";
  auth.changed.emit(memoryToken);
});

export class ApiError extends Error {
  constructor(status, message, { retryAfter = null, detail = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfter = retryAfter;
    this.detail = detail;
  }
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const where = (item.loc || []).filter((p) => p !== "body" && p !== "query" && p !== "path").join(".");
        return where ? `${where}: ${item.msg}` : String(item.msg || "");
      })
      .filter(Boolean)
      .join("; ");
  }
  return "";
}

/** A readable ApiError from a non-2xx response (and a sign-in prompt on 401). */
export async function errorFrom(response) {
  let detail = null;
  try {
    const body = await response.clone().json();
    detail = body && "detail" in body ? body.detail : body;
  } catch {
    /* not JSON */
  }
  const said = describeDetail(detail);
  const status = response.status;
  if (status === 401) {
    auth.required(auth.token ? "That token was not accepted (expired or wrong). Paste a new one." : "");
    return new ApiError(401, "Please sign in to continue.", { detail });
  }
  if (status === 422) return new ApiError(422, said ? `Please check: ${said}` : "The request was not valid.", { detail });
  if (status === 404) return new ApiError(404, said || "Not found. It may have been deleted.", { detail });
  if (status === 503 || status === 429) {
    const seconds = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    const when = Number.isFinite(seconds) ? `in ${seconds} second${seconds === 1 ? "" : "s"}` : "in a moment";
    return new ApiError(status, `The service is busy or unavailable. Please try again ${when}.`, {
      retryAfter: Number.isFinite(seconds) ? seconds : null,
      detail,
    });
  }
  if (status >= 500) return new ApiError(status, `Something went wrong on the server (HTTP ${status}).`, { detail });
  return new ApiError(status, said || `The request failed (HTTP ${status}).`, { detail });
}

export const OFFLINE_MESSAGE = "Cannot reach the server. Check that it is running and try again.";

/** fetch() with our headers; throws ApiError (status 0 when the server cannot be reached). */
export async function request(path, { method = "GET", params, json, signal, accept = "application/json" } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  const headers = { Accept: accept, "X-Timezone": timezone, ...auth.headers() };
  const init = { method, headers, signal, credentials: "same-origin", cache: "no-store" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, OFFLINE_MESSAGE);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** JSON from `path` (null for 204). */
export async function api(path, options = {}) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  return response.json();
}

/**
 * Server-sent events from a fetch() body: yields {event, data} with `data` as text.
 * Handles chunks split anywhere, CRLF or LF, comments, multi-line data.
 */
export async function* readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let finished = false;
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      buffer += value;
      // Normalise line ends, but keep a trailing CR: its LF may be in the next chunk.
      const keep = buffer.endsWith("\r") ? "\r" : "";
      buffer = buffer.slice(0, buffer.length - keep.length).replace(/\r\n?/g, "\n") + keep;
      let end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parseBlock(block);
        if (event) yield event;
      }
    }
    const last = parseBlock(buffer.replace(/\r\n?/g, "\n"));
    if (last) yield last;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) reader.cancel().catch(() => {}); // the reader stopped early: close the stream

  }
}

function parseBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

/** JSON.parse that returns `fallback` instead of throwing. */
export function parseJson(text, fallback = null) {
  if (typeof text !== "string") return text ?? fallback;
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}
