// /ws/tasks: live task events, resumed after a disconnect from the last sequence number seen.

import { auth } from "./api.js";

const BASE_DELAY = 1000;
const MAX_DELAY = 30_000;
const SILENCE_MS = 65_000; // about three missed heartbeats: the connection is dead
const UNAUTHORIZED = new Set([4401, 4403]);

/**
 * Keep one socket open while started. Callbacks:
 *   onEvent(event)      each task/reminder event, once, in order
 *   onStatus(state)     "connecting" | "live" | "reconnecting" | "signed-out" | "stopped"
 *   onOpen({resumed})   after each connect; resumed=false means events may have been missed
 *   onUnauthorized()    the server closed with 4401: the token is missing or bad
 */
export function liveUpdates({ onEvent, onStatus, onOpen = () => {}, onUnauthorized = () => {} }) {
  let socket = null;
  let lastSeq = null;
  let attempt = 0;
  let retryTimer = null;
  let silenceTimer = null;
  let running = false;
  let gap = null; // a heartbeat ahead of the events we saw; resync if the next one agrees

  const url = () => {
    const u = new URL("/ws/tasks", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (lastSeq !== null) u.searchParams.set("after", String(lastSeq));
    return u;
  };

  function setStatus(state) {
    onStatus(state);
  }

  function watchSilence(sock) {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => {
      if (socket !== sock) return;
      drop(sock);
      schedule(0);
    }, SILENCE_MS);
  }

  function drop(sock) {
    if (socket === sock) socket = null;
    clearTimeout(silenceTimer);
    try {
      sock.close(1000);
    } catch {
      /* already closed */
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (!running || socket) return;
    const token = auth.token;
    let sock;
    try {
      sock = token ? new WebSocket(url(), ["todo.bearer", token]) : new WebSocket(url());
    } catch {
      // A token with characters a subprotocol may not carry: send it in the query instead.
      const u = url();
      u.searchParams.set("token", token);
      sock = new WebSocket(u);
    }
    socket = sock;
    setStatus(attempt === 0 && lastSeq === null ? "connecting" : "reconnecting");

    sock.addEventListener("open", () => {
      if (socket !== sock) return;
      setStatus("live");
      watchSilence(sock);
      onOpen({ resumed: lastSeq !== null });
    });

    sock.addEventListener("message", (message) => {
      if (socket !== sock) return;
      watchSilence(sock);
      attempt = 0;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (!event || typeof event !== "object") return;
      const seq = typeof event.seq === "number" ? event.seq : null;
      if (event.type === "heartbeat") {
        if (seq === null) return;
        if (lastSeq === null) lastSeq = seq; // where this stream stands
        else if (seq > lastSeq) {
          // Missed something? Two heartbeats in a row ahead of us: reconnect and replay.
          if (gap === seq) {
            gap = null;
            drop(sock);
            schedule(0);
          } else gap = seq;
        } else gap = null;
        return;
      }
      if (seq !== null) {
        if (lastSeq !== null && seq <= lastSeq) return; // already applied (replay overlap)
        lastSeq = seq;
        gap = null;
      }
      onEvent(event);
    });

    sock.addEventListener("close", (close) => {
      if (socket !== sock) return;
      socket = null;
      clearTimeout(silenceTimer);
      if (!running) return;
      if (UNAUTHORIZED.has(close.code)) {
        running = false;
        setStatus("signed-out");
        onUnauthorized();
        return;
      }
      schedule();
    });
  }

  /** Reconnect after a backoff: 1 s doubling to 30 s, with jitter (or after `delay` ms). */
  function schedule(delay) {
    if (!running || retryTimer) return;
    setStatus("reconnecting");
    let wait = delay;
    if (wait === undefined) {
      const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** attempt);
      wait = ceiling / 2 + Math.random() * (ceiling / 2);
      attempt += 1;
    }
    retryTimer = setTimeout(connect, wait);
  }

  function soon() {
    if (!running || socket) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    attempt = 0;
    connect();
  }

  window.addEventListener("online", soon);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") soon();
  });

  return {
    start() {
      running = true;
      connect();
    },
    /** Close and reconnect now, e.g. with a new token. */
    restart() {
      running = true;
      if (socket) drop(socket);
      clearTimeout(retryTimer);
      retryTimer = null;
      attempt = 0;
      connect();
    },
    stop(state = "stopped") {
      running = false;
      clearTimeout(retryTimer);
      retryTimer = null;
      if (socket) drop(socket);
      setStatus(state);
    },
    /** Start over from "now" (after sign-out: another user's sequence). */
    forget() {
      lastSeq = null;
      gap = null;
    },
    get lastSeq() {
      return lastSeq;
    },
  };
}
