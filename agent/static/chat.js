// The chat pane: send a message, stream the answer (SSE over fetch), show tool activity, history.

import { api, errorFrom, OFFLINE_MESSAGE, parseJson, readEvents, auth } from "./api.js";
import { $, h, icon } from "./dom.js";
import { formatRelativeDate, timezone } from "./format.js";

export const MAX_MESSAGE = 4000;
const CONVERSATION_KEY = "todo-chatbot.conversation";

let conversationId = null;
let streaming = null; // {controller} while an answer streams
let queued = null; // {text, mine}: a message sent while an answer streamed; it goes when that answer ends
let options = { onToolResult: () => {}, onAnswer: () => {} };
let log;
let input;

// ---------------------------------------------------------------- conversation id

function storeConversation(id) {
  conversationId = id || null;
  try {
    if (conversationId) localStorage.setItem(CONVERSATION_KEY, conversationId);
    else localStorage.removeItem(CONVERSATION_KEY);
  } catch {
    /* storage disabled */
  }
}

function storedConversation() {
  try {
    return localStorage.getItem(CONVERSATION_KEY);
  } catch {
    return null;
  }
}

export function currentConversation() {
  return conversationId;
}

// ---------------------------------------------------------------- log rendering

function nearBottom() {
  const box = $("chat-body");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function scrollDown(force = false) {
  const box = $("chat-body");
  if (force || nearBottom()) box.scrollTop = box.scrollHeight;
}

function add(node) {
  const stick = nearBottom();
  const typing = log.querySelector(".msg-typing");
  log.insertBefore(node, typing || null);
  $("chat-empty").hidden = true;
  if (stick) scrollDown(true);
  return node;
}

function bubble(role, text = "") {
  const body = h("div", { class: "msg-text", text });
  const who = role === "user" ? "You" : "Assistant";
  return add(
    h("li", { class: `msg msg-${role}`, "data-testid": "chat-message", "data-role": role },
      h("span", { class: "visually-hidden", text: `${who}: ` }),
      body),
  );
}

function errorLine(message) {
  return add(
    h("li", { class: "msg msg-error", "data-testid": "chat-error", role: "alert" }, icon("alert"), h("span", { text: message })),
  );
}

function typingIndicator(on) {
  const existing = log.querySelector(".msg-typing");
  if (!on) {
    existing?.remove();
    return;
  }
  if (existing) return;
  log.append(
    h("li", { class: "msg msg-typing", "aria-hidden": "true" },
      h("span", { class: "dot" }), h("span", { class: "dot" }), h("span", { class: "dot" })),
  );
  scrollDown();
}

// ---------------------------------------------------------------- tool activity

/** MCP results may come as the value itself, as {structuredContent}, or as text content holding JSON. */
function unwrap(output) {
  let value = parseJson(output, output);
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if (value.structuredContent) value = value.structuredContent;
    else if (Array.isArray(value.content) && value.content[0] && typeof value.content[0].text === "string") {
      const inner = parseJson(value.content[0].text, value.content[0].text);
      value = value.isError ? { error: inner } : inner;
    }
    if (value && typeof value === "object" && "result" in value && Object.keys(value).length === 1) value = value.result;
  }
  return value;
}

function failed(value) {
  if (typeof value === "string") return /^(error|failed)\b/i.test(value.trim());
  return Boolean(value && typeof value === "object" && (value.error || value.isError));
}

const quoted = (title) => (title ? `“${title}”` : "a task");

function titleOf(value, args) {
  if (value && typeof value === "object") {
    if (typeof value.title === "string") return value.title;
    if (value.task && typeof value.task.title === "string") return value.task.title;
  }
  return args && typeof args.title === "string" ? args.title : "";
}

/** A one-line summary of a tool call: "Added “buy milk”", "Listed 3 tasks". */
export function toolSummary(name, args, output, done) {
  const a = parseJson(args, {}) || {};
  if (!done) {
    const running = {
      add_task: "Adding a task…", list_tasks: "Looking up tasks…", get_task: "Looking up a task…",
      update_task: "Updating a task…", complete_task: "Marking a task done…", reopen_task: "Reopening a task…",
      delete_task: "Deleting a task…",
    };
    return running[name] || `Running ${name}…`;
  }
  const value = unwrap(output);
  if (failed(value)) return `${name.replace(/_/g, " ")} failed`;
  const title = titleOf(value, a);
  switch (name) {
    case "add_task":
      return `Added ${quoted(title)}`;
    case "list_tasks": {
      const tasks = value && Array.isArray(value.tasks) ? value.tasks : Array.isArray(value) ? value : null;
      if (!tasks) return "Listed tasks";
      const n = tasks.length;
      const total = value && typeof value.total === "number" ? value.total : n;
      const noun = total === 1 ? "task" : "tasks";
      return total > n ? `Listed ${n} of ${total} ${noun}` : `Listed ${n} ${noun}`;
    }
    case "get_task":
      return `Looked up ${quoted(title)}`;
    case "update_task":
      return `Updated ${quoted(title)}`;
    case "complete_task":
      return `Marked ${quoted(title)} done`;
    case "reopen_task":
      return `Reopened ${quoted(title)}`;
    case "delete_task":
      return `Deleted ${quoted(title)}`;
    default:
      return `Used ${name}`;
  }
}

function pretty(value) {
  const parsed = unwrap(value);
  if (parsed === undefined || parsed === null || parsed === "") return "";
  return typeof parsed === "string" ? parsed : JSON.stringify(parsed, null, 2);
}

function toolLine(name, args) {
  const summary = h("span", { class: "tool-summary", text: toolSummary(name, args, null, false) });
  const argsPre = h("pre", { class: "tool-data", "data-label": "Arguments", text: pretty(args) || "{}" });
  const outPre = h("pre", { class: "tool-data", "data-label": "Result", hidden: true });
  const li = add(
    h("li", { class: "msg msg-tool", "data-testid": "chat-tool", "data-tool-name": name, "data-state": "running" },
      h("details", null,
        h("summary", { "aria-label": `Tool ${name}: details` }, icon("tool"), summary),
        h("div", { class: "tool-details" }, h("p", { class: "tool-name", text: name }), argsPre, outPre))),
  );
  li.finish = (output) => {
    const text = toolSummary(name, args, output, true);
    summary.textContent = text;
    li.dataset.state = failed(unwrap(output)) ? "error" : "done";
    li.querySelector("summary").setAttribute("aria-label", `${text}: details`);
    outPre.textContent = pretty(output);
    outPre.hidden = !outPre.textContent;
  };
  return li;
}

// ---------------------------------------------------------------- sending

function setStreaming(on) {
  const sendHadFocus = document.activeElement === $("chat-send");
  $("chat-send").disabled = on;
  $("chat-send").hidden = on; // Stop takes its place while the answer streams
  $("chat-stop").hidden = !on;
  if (on && sendHadFocus) $("chat-stop").focus();
  if (!on && document.activeElement === document.body) input.focus();
  log.setAttribute("aria-busy", String(on));
  typingIndicator(on);
}

function updateCount() {
  const length = input.value.length;
  const count = $("chat-count");
  count.textContent = length > MAX_MESSAGE - 500 ? `${length} / ${MAX_MESSAGE}` : "";
  count.classList.toggle("is-over", length > MAX_MESSAGE);
  $("chat-send").disabled = Boolean(streaming);
}

/** Send what the user typed; while an answer streams, it waits (shown as queued) and goes next. */
export async function send(raw) {
  const text = raw.trim();
  if (!text) {
    input.focus();
    return;
  }
  if (text.length > MAX_MESSAGE) {
    errorLine(`That message is ${text.length} characters long; the limit is ${MAX_MESSAGE}.`);
    return;
  }
  if (streaming && queued) return; // one message waits at a time; this one stays in the box
  const mine = bubble("user", text);
  input.value = "";
  updateCount();
  if (streaming) {
    mine.dataset.queued = "true";
    queued = { text, mine };
    return;
  }
  await converse(text, mine);
}

async function converse(text, mine) {
  const controller = new AbortController();
  streaming = { controller };
  setStreaming(true);
  let answer = null; // the assistant bubble text is streaming into
  const tools = new Map();
  let lastNode = null;
  let finished = false;
  let changedTasks = false;
  let failure = "";

  const appendText = (piece) => {
    if (!answer || lastNode !== answer) {
      answer = bubble("assistant");
      answer.dataset.streaming = "true";
      lastNode = answer;
    }
    typingIndicator(false); // the growing text shows progress now
    const stick = nearBottom();
    answer.querySelector(".msg-text").append(piece);
    answer.querySelector(".msg-text").normalize();
    if (stick) scrollDown(true);
  };

  const post = async () => {
    try {
      return await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-Timezone": timezone, ...auth.headers() },
        body: JSON.stringify({ message: text, conversation_id: conversationId, timezone }),
        signal: controller.signal,
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw Object.assign(new Error(OFFLINE_MESSAGE), { status: 0 });
    }
  };

  try {
    let response = await post();
    if (response.status === 404 && conversationId) {
      // The conversation is gone (deleted, or another user's): carry on in a new one.
      storeConversation(null);
      response.body?.cancel().catch(() => {});
      response = await post();
    }
    if (!response.ok) throw await errorFrom(response);
    if (!response.body) throw new Error("This browser cannot read streamed answers.");

    for await (const { event, data } of readEvents(response.body, controller.signal)) {
      const payload = parseJson(data, {});
      switch (event) {
        case "conversation":
          if (payload.conversation_id) storeConversation(payload.conversation_id);
          break;
        case "delta":
          if (typeof payload.text === "string" && payload.text) appendText(payload.text);
          break;
        case "tool_call": {
          const line = toolLine(String(payload.name || "tool"), payload.arguments);
          tools.set(payload.id ?? `#${tools.size}`, line);
          lastNode = line;
          typingIndicator(true);
          break;
        }
        case "tool_result": {
          let line = tools.get(payload.id);
          if (!line) {
            line = toolLine(String(payload.name || "tool"), payload.arguments);
            lastNode = line;
          }
          line.finish(payload.output);
          if (!/^(list|get)_/.test(String(payload.name || ""))) changedTasks = true;
          options.onToolResult(payload);
          break;
        }
        case "error":
          failure = String(payload.message || "The assistant ran into a problem.");
          errorLine(failure);
          lastNode = null;
          break;
        case "done":
          finished = true;
          if (payload.conversation_id) storeConversation(payload.conversation_id);
          // Without deltas the reply is the answer; after an error it is the error's message again.
          if (!answer && typeof payload.reply === "string" && payload.reply.trim() && payload.reply !== failure) {
            appendText(payload.reply);
          }
          break;
        default:
          break;
      }
      if (finished) break;
    }
    if (!finished && controller.signal.aborted) {
      if (!streaming.silent) errorLine("Stopped.");
    } else if (!finished) {
      errorLine("The answer was cut off before it finished. Please try again.");
    }
  } catch (error) {
    if (error.name === "AbortError") {
      if (!streaming?.silent) errorLine("Stopped.");
    } else {
      errorLine(error.message || OFFLINE_MESSAGE);
      if (!answer && tools.size === 0) {
        mine.dataset.failed = "true";
        if (!input.value) {
          input.value = text; // give the words back so they can be sent again
          updateCount();
        }
      }
    }
  } finally {
    for (const line of tools.values()) if (line.dataset.state === "running") line.dataset.state = "unknown";
    if (answer) delete answer.dataset.streaming;
    streaming = null;
    setStreaming(false);
    updateCount();
    options.onAnswer({ changedTasks, finished });
    if ($("history").open) loadHistory();
  }
  const next = queued;
  queued = null;
  if (next) {
    delete next.mine.dataset.queued;
    add(next.mine); // after the answer it waited for
    await converse(next.text, next.mine);
  }
}

/** Stop the streaming answer; a queued message is withdrawn (its words go back to the box unless silent). */
export function stop({ silent = false } = {}) {
  if (!streaming) return;
  if (queued) {
    queued.mine.remove();
    if (!silent && !input.value) {
      input.value = queued.text;
      updateCount();
    }
    queued = null;
  }
  streaming.silent = silent;
  streaming.controller.abort();
}

export function newChat() {
  stop({ silent: true });
  storeConversation(null);
  log.replaceChildren();
  $("chat-empty").hidden = false;
  input.focus();
}

// ---------------------------------------------------------------- history

export async function loadHistory() {
  const details = $("history");
  const list = $("history-list");
  const note = $("history-note");
  try {
    const conversations = await api("/api/conversations");
    const items = Array.isArray(conversations) ? conversations.slice(0, 30) : [];
    note.textContent = items.length ? "" : "No earlier conversations.";
    note.hidden = items.length > 0;
    list.replaceChildren(
      ...items.map((c) =>
        h("li", null,
          h("button", {
            type: "button", class: "history-item", "data-testid": "history-item", "data-conversation-id": c.id,
            "aria-current": c.id === conversationId ? "true" : null,
            onclick: () => {
              details.open = false;
              openConversation(c.id);
            },
          },
          h("span", { class: "history-title", text: c.title || "Untitled conversation" }),
          h("span", { class: "history-date", text: c.updated_at ? formatRelativeDate(Date.parse(c.updated_at)) : "" })))),
    );
  } catch (error) {
    if (error.status === 404 || error.status === 405) {
      details.hidden = true; // this server keeps no history list
      return;
    }
    list.replaceChildren();
    note.hidden = false;
    note.textContent = error.message;
  }
}

/** Show an earlier conversation and continue it. */
export async function openConversation(id, { quiet = false } = {}) {
  if (!id || streaming) return;
  let messages;
  try {
    messages = await api(`/api/conversations/${encodeURIComponent(id)}/messages`);
  } catch (error) {
    if (error.status === 404) {
      if (id === conversationId) storeConversation(null);
      if (!quiet) errorLine("That conversation no longer exists.");
    } else if (!quiet) {
      errorLine(error.message);
    }
    return;
  }
  storeConversation(id);
  log.replaceChildren();
  $("chat-empty").hidden = true;
  for (const m of Array.isArray(messages) ? messages : []) {
    if (m.role === "user" || m.role === "assistant") {
      if (typeof m.content === "string" && m.content) bubble(m.role, m.content);
    } else if (m.role === "tool") {
      const line = toolLine(String(m.name || "tool"), m.arguments);
      line.finish(m.output);
    }
  }
  if (!log.children.length) $("chat-empty").hidden = false;
  scrollDown(true);
}

// ---------------------------------------------------------------- start

export function useExample(text) {
  input.value = text;
  updateCount();
  input.focus();
  input.setSelectionRange(text.length, text.length);
}

export function initChat(opts) {
  options = { ...options, ...opts };
  log = $("chat-log");
  input = $("chat-input");
  input.maxLength = MAX_MESSAGE;

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send(input.value);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      send(input.value);
    }
  });
  input.addEventListener("input", updateCount);
  $("chat-stop").addEventListener("click", () => stop());
  $("chat-new").addEventListener("click", newChat);
  for (const button of document.querySelectorAll("#chat-empty .example")) {
    button.addEventListener("click", () => useExample(button.textContent));
  }
  $("history").addEventListener("toggle", () => {
    if ($("history").open) loadHistory();
  });
  updateCount();

  const previous = storedConversation();
  if (previous) openConversation(previous, { quiet: true });
}

/** Forget the conversation on this screen (after sign-out). */
export function resetChat() {
  stop({ silent: true });
  storeConversation(null);
  log.replaceChildren();
  $("chat-empty").hidden = false;
}
