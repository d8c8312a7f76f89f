// Toasts in the page (reminders, and Undo after a change made from the task list), the page's
// live regions, and desktop notifications once the user has allowed them.

import { $, h, icon } from "./dom.js";
import { formatLong, formatWhen } from "./format.js";

const TOAST_MS = 30_000;
const UNDO_MS = 8_000;
const UNDO_FAILED_MS = 30_000;
const MAX_TOASTS = 5;
const MAX_UNDO_TOASTS = 3;

let toasts;

/** Say `text` to screen readers: politely (a status), or at once (`assertive`, for errors). */
export function announce(text, { assertive = false } = {}) {
  const region = $(assertive ? "alerter" : "announcer");
  // Emptied first, so the same words twice in a row are read twice.
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** Where focus goes when the toast that had it leaves: where it came from, else the message box. */
function refocus(el) {
  for (const target of [el.returnFocus, document.getElementById("chat-input"), document.getElementById("tasks-heading")]) {
    if (target && target.isConnected && target.checkVisibility()) {
      target.focus();
      return;
    }
  }
}

/**
 * Put `el` in the toast stack, gone after `timeout` ms (the countdown pauses while the pointer or
 * focus is on it); `el.dismiss()` takes it away, and `el.restart(ms)` starts a new countdown.
 */
function mount(el, timeout) {
  toasts ||= $("toasts");
  let remaining = timeout;
  let started = Date.now();
  let timer = null;
  let held = 0; // pointer and focus both hold it
  const dismiss = () => {
    clearTimeout(timer);
    if (!el.isConnected) return;
    const hadFocus = el.contains(document.activeElement);
    el.remove();
    if (hadFocus) refocus(el);
  };
  const pause = () => {
    held += 1;
    if (held > 1) return;
    clearTimeout(timer);
    remaining -= Date.now() - started;
  };
  const resume = () => {
    held = Math.max(0, held - 1);
    if (held) return;
    clearTimeout(timer);
    started = Date.now();
    timer = setTimeout(dismiss, Math.max(remaining, 1000));
  };
  el.addEventListener("mouseenter", pause);
  el.addEventListener("mouseleave", resume);
  el.addEventListener("focusin", (event) => {
    if (!el.contains(event.relatedTarget)) {
      if (event.relatedTarget instanceof HTMLElement) el.returnFocus = event.relatedTarget;
      pause();
    }
  });
  el.addEventListener("focusout", (event) => {
    if (!el.contains(event.relatedTarget)) resume();
  });
  el.dismiss = dismiss;
  el.restart = (ms) => {
    remaining = ms;
    if (!held) resume();
  };
  toasts.append(el);
  while (toasts.children.length > MAX_TOASTS) toasts.firstElementChild.dismiss?.();
  held = 1;
  resume();
  return el;
}

/**
 * Show a reminder-style toast: role="alert", dismissible with its button or Escape, gone after 30 s.
 * Each of `actions` ({label, testId, run, failure}) is a button; `run()` resolves to what to announce,
 * and the toast goes, or rejects, and the toast says "Could not <failure>: <why>" and stays.
 */
export function toast({ title, body = "", meta = "", taskId = null, timeout = TOAST_MS, actions = [] }) {
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", "data-testid": "toast-dismiss" }, icon("x"));
  const problem = h("p", { class: "toast-problem", "data-testid": "toast-problem", hidden: true });
  const buttons = actions.map(({ label, testId, run, failure }) => {
    const button = h("button", { type: "button", class: "btn toast-action", "data-testid": testId, text: label });
    button.addEventListener("click", () => act(run, failure));
    return button;
  });
  const el = h(
    "div",
    { class: "toast", role: "alert", "data-testid": "toast", "data-task-id": taskId },
    h("div", { class: "toast-icon" }, icon("bell")),
    h("div", { class: "toast-text" },
      h("p", { class: "toast-title", text: title }),
      body ? h("p", { class: "toast-body", "data-testid": "toast-body", text: body }) : null,
      meta ? h("p", { class: "toast-meta", text: meta }) : null,
      problem,
      buttons.length ? h("div", { class: "toast-actions" }, ...buttons) : null),
    close,
  );
  async function act(run, failure) {
    if (el.dataset.busy) return;
    el.dataset.busy = "true";
    for (const b of buttons) b.setAttribute("aria-disabled", "true"); // not `disabled`: focus stays
    try {
      announce(await run());
      el.dismiss();
    } catch (error) {
      problem.textContent = `Could not ${failure}: ${error.message || "something went wrong"}`;
      problem.hidden = false;
      announce(problem.textContent, { assertive: true });
    } finally {
      delete el.dataset.busy;
      for (const b of buttons) b.removeAttribute("aria-disabled");
    }
  }
  close.addEventListener("click", () => el.dismiss());
  return mount(el, timeout);
}

const IS_MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
const UNDO_KEYS = IS_MAC ? "Command+Z" : "Control+Z";

/**
 * "Deleted “Buy milk”. [Undo]" for 8 seconds, announced politely. `undo()` does the undoing and
 * resolves to {message, focus}: what to announce, and a function that puts focus on the result
 * (called only when the toast had focus). If it throws, the toast says why and offers to try again.
 */
export function undoToast({ message, undo, taskId = null }) {
  const text = h("p", { class: "toast-message", "data-testid": "undo-message", text: message });
  const button = h("button", {
    type: "button", class: "btn toast-action", "data-testid": "undo", "aria-keyshortcuts": IS_MAC ? "Meta+Z" : "Control+Z",
    title: `Undo (${UNDO_KEYS})`, text: "Undo",
  });
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", "data-testid": "toast-dismiss" }, icon("x"));
  const el = h("div", { class: "toast toast-undo", "data-testid": "undo-toast", "data-task-id": taskId }, text, button, close);
  el.undo = async () => {
    if (el.dataset.busy || !el.isConnected) return;
    el.dataset.busy = "true";
    el.setAttribute("aria-busy", "true");
    button.setAttribute("aria-disabled", "true"); // not `disabled`: that would drop keyboard focus
    button.textContent = "Undoing…";
    try {
      const done = await undo();
      const hadFocus = el.contains(document.activeElement);
      el.remove();
      announce(done.message);
      if (hadFocus && !done.focus?.()) refocus(el);
    } catch (error) {
      const why = `Could not undo: ${error.message || "something went wrong"}`;
      el.classList.add("is-error");
      text.textContent = why;
      button.textContent = "Try again";
      button.title = `Try again (${UNDO_KEYS})`;
      announce(why, { assertive: true });
      el.restart(UNDO_FAILED_MS);
    } finally {
      delete el.dataset.busy;
      el.removeAttribute("aria-busy");
      button.removeAttribute("aria-disabled");
    }
  };
  button.addEventListener("click", () => el.undo());
  close.addEventListener("click", () => el.dismiss());
  mount(el, UNDO_MS);
  const undos = toasts.querySelectorAll(".toast-undo");
  for (const old of [...undos].slice(0, Math.max(0, undos.length - MAX_UNDO_TOASTS))) old.dismiss();
  // A keyboard shortcut means nothing to someone with only a touch screen.
  const hint = matchMedia("(any-pointer: fine)").matches ? `To undo, press ${UNDO_KEYS}.` : "Undo is in the notification.";
  announce(`${message} ${hint}`);
  return el;
}

/** Undo the newest change that still offers it (Ctrl+Z / Cmd+Z outside text fields). */
export function undoNewest() {
  toasts ||= $("toasts");
  const newest = [...toasts.querySelectorAll(".toast-undo")].pop();
  if (!newest) return false;
  newest.undo();
  return true;
}

/** Escape closes the newest toast, unless a dialog is open (the dialog takes Escape then). */
export function dismissNewestToast() {
  toasts ||= $("toasts");
  const newest = toasts.lastElementChild;
  if (!newest) return false;
  newest.dismiss();
  return true;
}

/**
 * A `reminder.due` event as a toast, with Snooze and Done when `actions` has `snooze(taskId)` and
 * `done(taskId)` (each resolving to what to announce); and as a desktop notification once allowed.
 */
export function reminderToast(data, actions = null) {
  const title = (data && data.title) || "A task";
  const due = data && data.dueDate ? data.dueDate * 1000 : null;
  const remind = data && data.remindAt ? data.remindAt * 1000 : null;
  const meta = due ? `Due ${formatWhen(due)}` : remind ? `Reminder for ${formatWhen(remind)}` : "";
  const taskId = data && data.taskId;
  const buttons = taskId && actions
    ? [
        { label: "Snooze 10 min", testId: "toast-snooze", run: () => actions.snooze(taskId), failure: "snooze it" },
        { label: "Done", testId: "toast-done", run: () => actions.done(taskId), failure: "mark it done" },
      ]
    : [];
  const el = toast({ title: "Reminder", body: title, meta, taskId, actions: buttons });
  if (due) el.querySelector(".toast-meta")?.setAttribute("title", formatLong(due));
  desktopNotification(title, meta, data && data.taskId);
  return el;
}

export const notifications = {
  get supported() {
    return typeof window.Notification === "function" && window.isSecureContext !== false;
  },
  get permission() {
    return this.supported ? Notification.permission : "unsupported";
  },
  async ask() {
    if (!this.supported) return "unsupported";
    try {
      return await Notification.requestPermission();
    } catch {
      return Notification.permission;
    }
  },
};

function desktopNotification(title, meta, taskId) {
  if (notifications.permission !== "granted") return;
  try {
    const n = new Notification(`Reminder: ${title}`, {
      body: meta,
      tag: taskId ? `reminder-${taskId}` : undefined,
      icon: "/static/icon.svg",
    });
    n.addEventListener("click", () => {
      window.focus();
      n.close();
    });
  } catch {
    /* some browsers only allow notifications from a service worker */
  }
}
