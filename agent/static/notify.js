// Reminder toasts in the page, and desktop notifications once the user has allowed them.

import { $, h, icon } from "./dom.js";
import { formatLong, formatWhen } from "./format.js";

const TOAST_MS = 30_000;
const MAX_TOASTS = 5;

let toasts;

/**
 * Show a toast: role="alert", dismissible with its button or Escape, gone after 30 s
 * (the countdown pauses while the pointer or focus is on it).
 */
export function toast({ title, body = "", meta = "", taskId = null, timeout = TOAST_MS }) {
  toasts ||= $("toasts");
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", "data-testid": "toast-dismiss" }, icon("x"));
  const el = h(
    "div",
    { class: "toast", role: "alert", "data-testid": "toast", "data-task-id": taskId },
    h("div", { class: "toast-icon" }, icon("bell")),
    h("div", { class: "toast-text" },
      h("p", { class: "toast-title", text: title }),
      body ? h("p", { class: "toast-body", "data-testid": "toast-body", text: body }) : null,
      meta ? h("p", { class: "toast-meta", text: meta }) : null),
    close,
  );
  let remaining = timeout;
  let started = Date.now();
  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    if (!el.isConnected) return;
    const hadFocus = el.contains(document.activeElement);
    el.remove();
    if (hadFocus) document.getElementById("chat-input")?.focus();
  };
  const pause = () => {
    clearTimeout(timer);
    remaining -= Date.now() - started;
  };
  const resume = () => {
    clearTimeout(timer);
    started = Date.now();
    timer = setTimeout(dismiss, Math.max(remaining, 1000));
  };
  close.addEventListener("click", dismiss);
  el.addEventListener("mouseenter", pause);
  el.addEventListener("mouseleave", resume);
  el.addEventListener("focusin", pause);
  el.addEventListener("focusout", resume);
  el.dismiss = dismiss;
  toasts.append(el);
  while (toasts.children.length > MAX_TOASTS) toasts.firstElementChild.dismiss?.();
  resume();
  return el;
}

/** Escape closes the newest toast, unless a dialog is open (the dialog takes Escape then). */
export function dismissNewestToast() {
  toasts ||= $("toasts");
  const newest = toasts.lastElementChild;
  if (!newest) return false;
  newest.dismiss();
  return true;
}

export function reminderToast(data) {
  const title = (data && data.title) || "A task";
  const due = data && data.dueDate ? data.dueDate * 1000 : null;
  const remind = data && data.remindAt ? data.remindAt * 1000 : null;
  const meta = due ? `Due ${formatWhen(due)}` : remind ? `Reminder for ${formatWhen(remind)}` : "";
  const el = toast({ title: "Reminder", body: title, meta, taskId: data && data.taskId });
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
