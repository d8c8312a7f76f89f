// Todo Chatbot web UI: wires the chat, the live task list, reminders and sign-in together.

import { auth } from "./api.js";
import { initChat, resetChat, useExample } from "./chat.js";
import { $, icon } from "./dom.js";
import { liveUpdates } from "./live.js";
import { dismissNewestToast, notifications, reminderToast, undoNewest } from "./notify.js";
import {
  applyEvent,
  applyToolResult,
  completeTask,
  initTasks,
  loadTasks,
  resetTasks,
  retryFailedLoad,
  snoozeReminder,
} from "./tasks.js";

const STATUS_TEXT = {
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting",
  "signed-out": "signed out",
  stopped: "offline",
};

// ---------------------------------------------------------------- views (phones show one pane)

function showView(view) {
  $("layout").dataset.view = view;
  for (const button of document.querySelectorAll(".view-btn")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === view));
  }
}

// ---------------------------------------------------------------- sign-in

let signInReason = "";
let needsSignIn = false; // the server asked for a token and has none that works

/** Show the sign-in panel; `problem` names what went wrong (a refused token), if anything. */
function openSignIn(problem = "") {
  const dialog = $("signin-dialog");
  signInReason = problem;
  $("signin-error").textContent = problem;
  updateAuthButtons();
  if (!dialog.open) {
    $("signin-token").value = "";
    dialog.showModal();
    $("signin-token").focus();
  }
}

function updateAuthButtons() {
  $("sign-out").hidden = !auth.token;
  $("sign-in").hidden = Boolean(auth.token) || !needsSignIn;
}

function bindSignIn(live) {
  const dialog = $("signin-dialog");
  auth.needed.on((message) => {
    const refused = Boolean(auth.token);
    needsSignIn = true;
    live.stop("signed-out");
    if (refused) {
      auth.forget(); // refused: stop sending it, and hide what it showed
      resetTasks();
    }
    // Several requests may fail at once; keep the most telling message.
    const dialog = $("signin-dialog");
    if (dialog.open && !message) return;
    openSignIn(message);
  });
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("signin-token").value.trim().replace(/^bearer\s+/i, "");
    if (!token) {
      $("signin-error").textContent = "Paste a token first.";
      $("signin-token").focus();
      return;
    }
    if (/\s/.test(token)) {
      $("signin-error").textContent = "A token has no spaces or line breaks. Check what you pasted.";
      $("signin-token").focus();
      return;
    }
    dialog.close("ok");
    needsSignIn = false;
    signInReason = "";
    auth.set(token);
  });
  $("signin-cancel").addEventListener("click", () => dialog.close("cancel"));
  dialog.addEventListener("close", () => updateAuthButtons());
  $("sign-in").prepend(icon("log-in"));
  $("sign-out").prepend(icon("log-out"));
  $("sign-in").addEventListener("click", () => openSignIn(signInReason));
  $("sign-out").addEventListener("click", () => {
    auth.set("");
  });
}

// ---------------------------------------------------------------- notifications permission

function bindNotifications() {
  const button = $("notify-enable");
  button.prepend(icon("bell"));
  const refresh = () => {
    button.hidden = notifications.permission !== "default";
  };
  refresh();
  button.addEventListener("click", async () => {
    await notifications.ask(); // asked only here, on the user's click
    refresh();
    document.getElementById("chat-input")?.focus();
  });
}

// ---------------------------------------------------------------- start

function start() {
  const status = $("ws-status");
  const live = liveUpdates({
    onEvent(event) {
      if (event.type === "reminder.due") {
        reminderToast(event.data || {}, { snooze: (id) => snoozeReminder(id), done: (id) => completeTask(id) });
      }
      applyEvent(event);
    },
    onStatus(state) {
      status.dataset.state = state;
      status.textContent = STATUS_TEXT[state] || state;
      status.title = state === "live" ? "Task list updates live" : "Live updates paused; reconnecting";
    },
    onOpen({ resumed }) {
      if (!resumed) loadTasks(); // events before this socket opened are not replayed: refetch
      else retryFailedLoad(); // resumed after an outage that a list load (or a filter change) ran into
    },
    onUnauthorized() {
      auth.required(auth.token ? "That token was not accepted (expired or wrong). Paste a new one." : "");
    },
  });

  initTasks({
    onExample(text) {
      showView("chat");
      useExample(text);
    },
    onCount(count) {
      $("view-count").textContent = count === null ? "" : String(count);
    },
  });
  initChat({
    onToolResult: applyToolResult,
    onAnswer({ changedTasks }) {
      // Live events normally bring the changes; without a live socket, fetch them.
      if (changedTasks && status.dataset.state !== "live") loadTasks();
    },
  });
  bindSignIn(live);
  bindNotifications();

  for (const button of document.querySelectorAll(".view-btn")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
  // On a phone showing the tasks, the message box is in the hidden chat view: show that view first.
  $("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    showView("chat");
    $("chat-input").focus();
  });

  auth.changed.on(() => {
    // Another identity (or none): nothing on screen belongs to it.
    updateAuthButtons();
    resetTasks();
    resetChat();
    live.forget();
    loadTasks();
    live.restart();
  });

  // Ctrl+Z (Cmd+Z) undoes the newest change a toast offers to undo, unless typing is what it undoes.
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.key.toLowerCase() !== "z" || event.shiftKey || event.altKey) return;
    if (!(event.ctrlKey || event.metaKey) || document.querySelector("dialog[open]")) return;
    if (event.target.closest?.("input, textarea, select, [contenteditable]:not([contenteditable=false])")) return;
    if (undoNewest()) event.preventDefault();
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if (document.querySelector("dialog[open]")) return; // the dialog handles its own Escape
    if (dismissNewestToast()) {
      event.preventDefault();
      return;
    }
    const history = $("history");
    if (history.open) {
      history.open = false;
      history.querySelector("summary").focus();
    }
  });

  // The history pop-up closes when the user clicks elsewhere.
  document.addEventListener("click", (event) => {
    const history = $("history");
    if (history.open && !history.contains(event.target)) history.open = false;
  });

  updateAuthButtons();
  loadTasks();
  live.start();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
