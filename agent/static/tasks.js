// The live task list: filters, paging, rows, and the task events that keep it current.

import { api } from "./api.js";
import { $, append, debounce, h, icon } from "./dom.js";
import { describeRRule, dueRange, formatLong, formatWhen, isoLocal, startOfDay } from "./format.js";
import { undoToast } from "./notify.js";

const PAGE = 50; // tasks per request
const CAP = 200; // most rows rendered at once
const RANK = { urgent: 4, high: 3, medium: 2, low: 1, none: 0 };
const FILTERS_OPEN_KEY = "todo-chatbot.filters-open";
export const EXAMPLES = ["add buy milk tomorrow at 9am #errands", "what's due today?", "mark buy milk done"];

const state = {
  filters: { status: "open", priority: "", due: "any", tag: "", query: "", sort: "due" },
  rows: [], // task models in display order
  total: 0,
  nextCursor: null,
  baseParams: null, // the first page's parameters, repeated with each cursor
  loaded: false,
  loading: false,
  generation: 0, // bumped by each full reload; older answers are dropped
  touched: new Set(), // ids changed by events while a reload was in flight
  known: new Map(), // id -> {version, deleted, task}: newest state seen, from any source
  tags: new Set(),
  reminded: new Map(), // id -> remindAt (ms) of the reminder.due event seen for it
  error: "",
};
const rowEls = new Map(); // id -> <li>
let options = { onExample: () => {}, onCount: () => {} };

// ---------------------------------------------------------------- task models

const toMs = (value) => {
  if (value === null || value === undefined || value === "") return null;
  const ms = typeof value === "number" ? value : Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
};
const epochMs = (seconds) => (typeof seconds === "number" ? seconds * 1000 : toMs(seconds));

/** A TaskSummary or full Task from the REST API. */
export function fromApi(t) {
  return {
    id: String(t.id),
    title: String(t.title ?? ""),
    completed: Boolean(t.completed),
    priority: String(t.priority || "none").toLowerCase(),
    tags: Array.isArray(t.tags) ? t.tags.map(String) : [],
    due: toMs(t.due),
    remindAt: toMs(t.remind_at),
    repeatText: t.repeat_text || "",
    recurrence: t.repeat === undefined ? undefined : t.repeat,
    description: t.description === undefined ? undefined : t.description || "",
    createdAt: toMs(t.created_at),
    updatedAt: toMs(t.updated_at),
    version: Number(t.version ?? 0),
  };
}

/** The snapshot in a task event's `data` (epoch seconds, RRULE text). */
export function fromEvent(d, prev, changed) {
  const recurrence = d.recurrence || null;
  let repeatText = "";
  if (recurrence) {
    const changedRule = Array.isArray(changed) && changed.some((f) => /recurr|repeat/i.test(f));
    const sameRule = prev && (prev.recurrence === undefined ? !changedRule : prev.recurrence === recurrence);
    repeatText = sameRule && prev.repeatText ? prev.repeatText : describeRRule(recurrence);
  }
  return {
    id: String(d.taskId),
    title: String(d.title ?? prev?.title ?? ""),
    completed: Boolean(d.completed),
    priority: String(d.priority || "none").toLowerCase(),
    tags: Array.isArray(d.tags) ? d.tags.map(String) : [],
    due: epochMs(d.dueDate),
    remindAt: epochMs(d.remindAt),
    repeatText,
    recurrence,
    description: d.description || "",
    createdAt: epochMs(d.createdAt) ?? prev?.createdAt ?? null,
    updatedAt: epochMs(d.updatedAt) ?? prev?.updatedAt ?? null,
    version: Number(d.version ?? 0),
  };
}

const isOverdue = (t, now = Date.now()) => !t.completed && t.due !== null && t.due < now;

/** Its reminder time has passed, or its reminder.due arrived (the browser's clock may lag the server's). */
const isReminded = (t, now = Date.now()) =>
  t.remindAt !== null && (t.remindAt <= now || state.reminded.get(t.id) === t.remindAt);

function matches(t, f = state.filters, now = Date.now()) {
  if (f.status === "open" && t.completed) return false;
  if (f.status === "done" && !t.completed) return false;
  if (f.priority && t.priority !== f.priority) return false;
  const tag = cleanTag(f.tag);
  if (tag && !t.tags.some((x) => x.toLowerCase() === tag)) return false;
  const q = f.query.trim().toLowerCase();
  if (q && !t.title.toLowerCase().includes(q) && !(t.description || "").toLowerCase().includes(q)) return false;
  if (f.due === "overdue" && !isOverdue(t, now)) return false;
  const range = dueRange(f.due, new Date(now));
  if (range && (t.due === null || t.due < range[0].getTime() || t.due >= range[1].getTime())) return false;
  return true;
}

const cleanTag = (tag) => tag.trim().replace(/^#+/, "").toLowerCase();

function compareDue(a, b) {
  if (a.due === b.due) return 0;
  if (a.due === null) return 1;
  if (b.due === null) return -1;
  return a.due - b.due;
}
const comparePriority = (a, b) => (RANK[b.priority] ?? 0) - (RANK[a.priority] ?? 0);
const compareId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
function compareTitle(a, b) {
  const x = a.title.toLowerCase();
  const y = b.title.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Open tasks before done ones, as the server lists both. */
const compareOpenFirst = (a, b) => Number(a.completed) - Number(b.completed);

/** The server's order (see TaskService._order); "created"/"updated" are newest first. */
function compare(a, b) {
  const section = compareOpenFirst(a, b);
  if (section) return section;
  switch (state.filters.sort) {
    case "priority":
      return comparePriority(a, b) || compareDue(a, b) || compareId(a, b);
    case "title":
      return compareTitle(a, b) || compareId(a, b);
    default:
      return compareDue(a, b) || comparePriority(a, b) || compareId(a, b);
  }
}

// ---------------------------------------------------------------- applying changes

function remember(task) {
  state.known.set(task.id, { version: task.version, deleted: false, task });
  for (const tag of task.tags) addTag(tag);
}

function isStale(task) {
  const known = state.known.get(task.id);
  if (!known) return false;
  return known.deleted ? task.version <= known.version : task.version < known.version;
}

/** Put `task` where the current filters and sort want it (or take it out). */
function place(task) {
  const index = state.rows.findIndex((r) => r.id === task.id);
  if (index >= 0) state.rows.splice(index, 1);
  if (!matches(task)) {
    if (index >= 0) state.total = Math.max(0, state.total - 1);
    return;
  }
  if (index < 0) state.total += 1;
  let at;
  if (state.filters.sort === "created" || state.filters.sort === "updated") {
    // Newest first within its section: a changed task goes to the top of it, a new one too;
    // by creation, a task that stays in its section keeps its place.
    const top = state.rows.findIndex((r) => compareOpenFirst(task, r) <= 0);
    at = top < 0 ? state.rows.length : top;
    const before = state.rows[index - 1];
    const after = state.rows[index];
    const stays = index >= 0 && (!before || compareOpenFirst(before, task) <= 0) && (!after || compareOpenFirst(task, after) <= 0);
    if (state.filters.sort === "created" && stays) at = index;
  } else {
    at = state.rows.findIndex((r) => compare(task, r) < 0);
    if (at < 0) at = state.rows.length;
  }
  // A new task that sorts after everything loaded belongs to a page not fetched yet.
  if (index < 0 && at >= state.rows.length && state.nextCursor) return;
  state.rows.splice(at, 0, task);
  if (state.rows.length > CAP) state.rows.length = CAP;
}

/** A task from a REST answer or an event; ignored when older than what is shown. */
export function applyTask(task) {
  if (isStale(task)) return;
  remember(task);
  if (state.loading) state.touched.add(task.id);
  place(task);
  render();
}

export function applyDeleted(id, version) {
  const known = state.known.get(id);
  if (known && !known.deleted && typeof version === "number" && version < known.version) return;
  state.known.set(id, { version: typeof version === "number" ? version : Infinity, deleted: true });
  if (state.loading) state.touched.add(id);
  const index = state.rows.findIndex((r) => r.id === id);
  if (index >= 0) {
    state.rows.splice(index, 1);
    state.total = Math.max(0, state.total - 1);
  }
  render();
}

/**
 * What a task tool did in the chat, shown at once; the live event that follows is then not newer
 * and changes nothing (a list is also right when the socket is slow or reconnecting).
 */
export function applyToolResult({ name, output }) {
  if (!output || typeof output !== "object" || !output.id) return;
  if (name === "delete_task") applyDeleted(String(output.id));
  else if (/^(add|update|complete|reopen)_task$/.test(String(name)) && typeof output.version === "number") {
    applyTask(fromApi(output));
  }
}

/** A CloudEvent from /ws/tasks. */
export function applyEvent(event) {
  const data = event.data || {};
  const id = String(data.taskId || event.subject || "");
  if (!id) return;
  switch (event.type) {
    case "task.deleted":
      applyDeleted(id, typeof data.version === "number" ? data.version : undefined);
      break;
    case "task.created":
    case "task.updated":
    case "task.completed":
    case "task.reopened": {
      const prev = state.known.get(id)?.task || state.rows.find((r) => r.id === id);
      applyTask(fromEvent({ ...data, taskId: id }, prev, data.changed));
      break;
    }
    case "reminder.due": {
      const remindAt = epochMs(data.remindAt) ?? state.rows.find((r) => r.id === id)?.remindAt;
      if (remindAt !== null && remindAt !== undefined) state.reminded.set(id, remindAt);
      render();
      ring(id);
      break;
    }
    default:
      break;
  }
}

function ring(id) {
  const li = rowEls.get(id);
  if (!li) return;
  li.classList.remove("is-ringing");
  void li.offsetWidth; // restart the animation
  li.classList.add("is-ringing");
  setTimeout(() => li.classList.remove("is-ringing"), 6000);
}

// ---------------------------------------------------------------- loading

function paramsFor(filters) {
  const p = { status: filters.status, sort: filters.sort, limit: PAGE };
  if (filters.priority) p.priority = filters.priority;
  const tag = cleanTag(filters.tag);
  if (tag) p.tag = tag;
  if (filters.query.trim()) p.query = filters.query.trim();
  if (filters.due === "overdue") p.overdue = "true";
  const range = dueRange(filters.due);
  if (range) {
    p.due_after = isoLocal(range[0]);
    p.due_before = isoLocal(new Date(range[1].getTime() - 1000));
  }
  return p;
}

/** Reload the list from the first page (or fetch the next page with `more`). */
export async function loadTasks({ more = false } = {}) {
  if (more && (!state.nextCursor || state.loading)) return;
  const generation = more ? state.generation : ++state.generation;
  if (!more) {
    state.baseParams = paramsFor(state.filters);
    state.touched = new Set();
  }
  const params = { ...state.baseParams };
  if (more) {
    params.cursor = state.nextCursor;
    params.limit = Math.max(1, Math.min(PAGE, CAP - state.rows.length));
  }
  state.loading = true;
  setBusy(true);
  try {
    const page = await api("/api/tasks", { params });
    if (generation !== state.generation) return;
    const rows = more ? state.rows.slice() : [];
    const seen = new Set(rows.map((r) => r.id));
    let adjust = 0; // tasks the server counted that an event has since changed or removed
    for (const fetched of (page.tasks || []).map(fromApi)) {
      const known = state.known.get(fetched.id);
      let task = fetched;
      if (known && (known.deleted ? fetched.version <= known.version : fetched.version < known.version)) {
        if (known.deleted || !matches(known.task)) {
          adjust -= 1;
          continue;
        }
        task = known.task; // an event already told us something newer
      } else {
        remember(fetched);
      }
      if (seen.has(task.id)) continue;
      seen.add(task.id);
      rows.push(task);
    }
    state.rows = rows.slice(0, CAP);
    state.total = Math.max(0, Number(page.total ?? rows.length) + adjust);
    state.nextCursor = page.next_cursor || null;
    // Events that arrived while this page was in flight may describe tasks the page predates.
    for (const id of state.touched) {
      const known = state.known.get(id);
      if (!known || known.deleted || state.rows.some((r) => r.id === id)) continue;
      place(known.task);
    }
    state.touched = new Set();
    state.error = "";
    showError("");
  } catch (error) {
    if (generation !== state.generation || error.name === "AbortError") return;
    state.error = error.message;
    showError(error.message);
    if (error.retryAfter && !more) {
      // 503 with Retry-After: try again when the server said to, unless something else reloaded.
      setTimeout(() => generation === state.generation && loadTasks(), Math.min(error.retryAfter, 60) * 1000);
    }
  } finally {
    if (generation === state.generation) {
      state.loading = false;
      state.loaded = true;
      setBusy(false);
      render();
    }
  }
}

/** Reload if the last load failed: the server is back, and what is shown may not match the filters. */
export function retryFailedLoad() {
  if (state.error) loadTasks();
}

/** Forget everything (after sign-out). */
export function resetTasks() {
  state.generation += 1;
  state.rows = [];
  state.total = 0;
  state.nextCursor = null;
  state.known.clear();
  state.reminded.clear();
  state.loaded = false;
  state.loading = false;
  showError("");
  render();
}

// ---------------------------------------------------------------- actions

/** Complete or reopen a task from its checkbox; a toast offers to undo it. */
async function toggle(li) {
  const task = li.task;
  if (li.dataset.pending) return; // a click while the last one is in flight
  li.dataset.pending = "true";
  li.setAttribute("aria-busy", "true");
  const action = task.completed ? "reopen" : "complete";
  try {
    const title = (await changed(task.id, `/${action}`, { method: "POST" })).title || task.title;
    undoToast({
      message: action === "complete" ? `Completed “${title}”.` : `Reopened “${title}”.`,
      taskId: task.id,
      undo: async () => {
        const back = await api(`/api/tasks/${encodeURIComponent(task.id)}/${action === "complete" ? "reopen" : "complete"}`, {
          method: "POST",
        });
        applyTask(fromApi(back));
        return {
          message: action === "complete" ? `“${back.title}” is open again.` : `“${back.title}” is done again.`,
          focus: () => focusTask(task.id),
        };
      },
    });
  } catch (error) {
    showError(error.message); // a 404 took the row out already
  } finally {
    delete li.dataset.pending;
    li.removeAttribute("aria-busy");
  }
}

/** Snooze a task's reminder from a reminder's toast: `length` from now once it has fired. */
export async function snoozeReminder(id, length = "+10 minutes") {
  const task = await changed(id, "", { method: "PATCH", json: { remind: length } });
  return `Snoozed “${task.title}” until ${formatWhen(task.remindAt)}.`;
}

/** Complete a task from a reminder's toast. */
export async function completeTask(id) {
  const task = await changed(id, "/complete", { method: "POST" });
  return `Completed “${task.title}”.`;
}

/** The task after a change through `/api/tasks/{id}{path}`, shown in the list; a 404 takes it out. */
async function changed(id, path, options) {
  try {
    const task = fromApi(await api(`/api/tasks/${encodeURIComponent(id)}${path}`, options));
    applyTask(task);
    return task;
  } catch (error) {
    if (error.status === 404) applyDeleted(id);
    throw error;
  }
}

/**
 * Delete a task from its bin button, at once: no question first, since a toast offers to undo it.
 * The whole task is read first (the list holds only summaries), so Undo can put every field back.
 */
async function remove(li) {
  const task = li.task;
  if (li.dataset.pending) return;
  li.dataset.pending = "true";
  li.setAttribute("aria-busy", "true");
  const path = `/api/tasks/${encodeURIComponent(task.id)}`;
  try {
    const full = await api(path);
    await api(path, { method: "DELETE" });
    applyDeleted(task.id);
    undoToast({ message: `Deleted “${full.title}”.`, undo: restorer(full) });
  } catch (error) {
    if (error.status === 404) applyDeleted(task.id);
    showError(error.message);
  } finally {
    delete li.dataset.pending;
    li.removeAttribute("aria-busy");
  }
}

/**
 * What POST /api/tasks needs to make `full` (a deleted task's TaskOut) again. Left out: a reminder
 * whose time has passed (it fired already: a new task would ring again at once), and the repeat rule
 * of a done task (completing the copy would start the series' next occurrence a second time).
 */
function recreateFields(full, now = Date.now()) {
  const fields = { title: full.title, priority: full.priority || "none", tags: full.tags || [] };
  if (full.description) fields.description = full.description;
  if (full.due) fields.due = full.due;
  if (full.repeat && !full.completed) fields.repeat = full.repeat;
  const remindAt = toMs(full.remind_at);
  if (remindAt !== null && remindAt > now) {
    const minutes = full.remind_before_minutes;
    const followsDue = minutes > 0 && toMs(full.due) - minutes * 60_000 === remindAt;
    fields.remind = followsDue ? `PT${minutes}M` : full.remind_at;
  }
  return fields;
}

/** Undo of a delete: the task made again (a new id), done again if it was; each step once. */
function restorer(full) {
  let restored = null;
  return async () => {
    if (!restored) {
      restored = await api("/api/tasks", { method: "POST", json: recreateFields(full) });
      applyTask(fromApi(restored));
    }
    const path = `/api/tasks/${encodeURIComponent(restored.id)}`;
    // A repeating task's due date may have been moved off its rule; the new rule would move it back.
    if (full.due && toMs(restored.due) !== toMs(full.due)) {
      restored = await api(path, { method: "PATCH", json: { due: full.due } });
      applyTask(fromApi(restored));
    }
    if (full.completed && !restored.completed) {
      restored = await api(`${path}/complete`, { method: "POST" });
      applyTask(fromApi(restored));
    }
    return { message: `Restored “${restored.title}”.`, focus: () => focusTask(String(restored.id)) };
  };
}

/** Focus a task's checkbox if its row is on screen; false when it is not. */
function focusTask(id) {
  const li = rowEls.get(id);
  if (!li || !li.checkVisibility()) return false;
  li.parts.check.focus();
  return true;
}

// ---------------------------------------------------------------- rendering

function createRow(task) {
  const check = h("button", { type: "button", class: "task-check", "data-testid": "task-complete" }, icon("check"));
  const title = h("span", { class: "task-title", "data-testid": "task-title" });
  const meta = h("div", { class: "task-meta" });
  const del = h("button", { type: "button", class: "task-delete btn-icon", "data-testid": "task-delete" }, icon("trash"));
  const li = h("li", { class: "task-row", "data-testid": "task-row" }, check, h("div", { class: "task-main" }, title, meta), del);
  li.dataset.taskId = task.id;
  li.parts = { check, title, meta, del };
  check.addEventListener("click", () => toggle(li));
  del.addEventListener("click", () => remove(li));
  return li;
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function metaParts(task, overdue, reminded) {
  const parts = [];
  if (task.due !== null) {
    parts.push(
      h("span", { class: `chip due${overdue ? " is-overdue" : ""}`, "data-testid": "task-due", title: `Due ${formatLong(task.due)}` },
        icon("clock"),
        h("span", { class: "visually-hidden", text: "Due " }),
        h("time", { datetime: new Date(task.due).toISOString(), text: formatWhen(task.due) }),
        overdue ? h("span", { class: "overdue-flag", "data-testid": "task-overdue", text: "overdue" }) : null),
    );
  }
  if (task.priority && task.priority !== "none") {
    parts.push(
      h("span", { class: `chip badge prio-${task.priority}`, "data-testid": "task-priority" },
        h("span", { class: "visually-hidden", text: "Priority " }),
        capitalize(task.priority)),
    );
  }
  for (const tag of task.tags) {
    parts.push(
      h("button", {
        type: "button", class: "chip tag", "data-testid": "task-tag", "aria-label": `Show tasks tagged ${tag}`,
        title: `Show tasks tagged #${tag}`, onclick: () => setTagFilter(tag),
      }, `#${tag}`),
    );
  }
  if (task.repeatText) {
    parts.push(
      h("span", { class: "chip repeat", "data-testid": "task-repeat", title: "Repeats" },
        icon("repeat"),
        h("span", { class: "visually-hidden", text: "Repeats " }),
        task.repeatText),
    );
  }
  if (task.remindAt !== null) {
    const when = `${reminded ? "Reminded" : "Reminder"} at ${formatLong(task.remindAt)}`;
    parts.push(
      h("span", {
        class: `chip bell${reminded ? " is-past" : ""}`, "data-testid": "task-reminder", role: "img",
        "aria-label": when, title: when,
      }, icon("bell")),
    );
  }
  return parts;
}

function updateRow(li, task) {
  li.task = task;
  const overdue = isOverdue(task);
  const reminded = isReminded(task);
  const day = startOfDay(Date.now()).getTime();
  const sig = JSON.stringify([task.title, task.completed, task.priority, task.tags, task.due, task.remindAt,
    task.repeatText, task.version, overdue, reminded, day]);
  if (li.sig === sig) return;
  li.sig = sig;
  const { check, title, meta, del } = li.parts;
  li.dataset.completed = String(task.completed);
  li.classList.toggle("is-done", task.completed);
  li.classList.toggle("is-overdue", overdue);
  title.textContent = task.title;
  check.setAttribute("aria-label", task.completed ? `Reopen “${task.title}”` : `Mark “${task.title}” done`);
  check.title = task.completed ? "Done — click to reopen" : "Mark done";
  del.setAttribute("aria-label", `Delete “${task.title}”`);
  del.title = "Delete";
  meta.replaceChildren(...metaParts(task, overdue, reminded));
}

function render() {
  const list = $("task-list");
  const active = document.activeElement;
  const activeRow = active && list.contains(active) ? active.closest(".task-row") : null;
  const activeIndex = activeRow ? [...list.children].indexOf(activeRow) : -1;
  const activeRole = active?.dataset?.testid;

  const wanted = new Set(state.rows.map((r) => r.id));
  for (const [id, li] of rowEls) {
    if (!wanted.has(id)) {
      li.remove();
      rowEls.delete(id);
    }
  }
  state.rows.forEach((task, i) => {
    let li = rowEls.get(task.id);
    if (!li) {
      li = createRow(task);
      rowEls.set(task.id, li);
    }
    updateRow(li, task);
    const current = list.children[i];
    if (current !== li) list.insertBefore(li, current || null);
  });

  // Keep keyboard focus in the list when its row left or moved.
  if (activeRow && !activeRow.isConnected) {
    const next = list.children[Math.min(activeIndex, list.children.length - 1)];
    const target = (activeRole && next?.querySelector(`[data-testid="${activeRole}"]`)) || next?.querySelector("button");
    (target || $("tasks-heading")).focus({ preventScroll: false });
  } else if (active && active.isConnected && active !== document.activeElement && list.contains(active)) {
    active.focus({ preventScroll: true });
  }

  renderFooter();
  renderEmpty();
  renderTotal();
  renderFilterCount();
}

/** How many filters narrow the list beyond the default (open tasks, anything else). */
function activeFilterCount() {
  const f = state.filters;
  return [f.status !== "open", f.priority, f.due !== "any", cleanTag(f.tag), f.query.trim()].filter(Boolean).length;
}

function renderFilterCount() {
  const count = activeFilterCount();
  const el = $("filters-count");
  el.replaceChildren();
  if (count) el.append(String(count), h("span", { class: "visually-hidden", text: " active" }));
}

/**
 * Phones fold the filters away behind the Filters button; wider screens always show them. Whether
 * they are shown is kept in localStorage, like the token and the conversation (the filters' values
 * are not: a reload starts from the open tasks).
 */
function setFiltersOpen(open, { store = true } = {}) {
  $("filters-toggle").setAttribute("aria-expanded", String(open));
  $("tasks-pane").classList.toggle("filters-open", open);
  if (!store) return;
  try {
    localStorage.setItem(FILTERS_OPEN_KEY, open ? "true" : "false");
  } catch {
    /* storage disabled: remembered for this page only */
  }
}

function storedFiltersOpen() {
  try {
    return localStorage.getItem(FILTERS_OPEN_KEY) === "true";
  } catch {
    return false;
  }
}

/** Focus a filter field, or the Filters button when the panel is folded away. */
function focusFilter(id) {
  const field = $(id);
  if (field.checkVisibility()) field.focus();
  else $("filters-toggle").focus();
}

function renderTotal() {
  const label = { open: "open", done: "done", all: "in all" }[state.filters.status] || "";
  $("tasks-total").textContent = state.loaded ? `${state.total} ${label}` : "";
  options.onCount(state.loaded ? state.total : null);
}

function renderFooter() {
  const more = $("tasks-more");
  const note = $("tasks-note");
  const capped = state.rows.length >= CAP && (state.nextCursor || state.total > state.rows.length);
  more.hidden = !state.nextCursor || capped;
  more.disabled = state.loading;
  note.hidden = !capped;
  note.textContent = capped
    ? `Showing the first ${state.rows.length} of ${state.total} tasks. Narrow the filters or search to see the rest.`
    : "";
}

function isFiltered() {
  const f = state.filters;
  return Boolean(f.priority || cleanTag(f.tag) || f.query.trim() || f.due !== "any");
}

function renderEmpty() {
  const empty = $("tasks-empty");
  const show = state.loaded && !state.loading && state.rows.length === 0 && !state.error;
  empty.hidden = !show;
  if (!show) return;
  const filtered = isFiltered();
  const heading = filtered
    ? "No tasks match these filters."
    : state.filters.status === "done"
      ? "Nothing done yet."
      : state.filters.status === "all"
        ? "No tasks yet."
        : "No open tasks. Nice!";
  // append() flattens the examples' array; replaceChildren() would print it as "[object …]".
  empty.replaceChildren();
  append(empty, [
    h("p", { class: "empty-title", text: heading }),
    filtered
      ? h("button", { type: "button", class: "btn", "data-testid": "filters-clear", onclick: clearFilters, text: "Clear filters" })
      : [
          h("p", { class: "empty-text", text: "Ask the assistant, for example:" }),
          h("ul", { class: "examples" },
            EXAMPLES.map((text) =>
              h("li", null, h("button", { type: "button", class: "example", "data-testid": "example-command", onclick: () => options.onExample(text), text })))),
        ],
  ]);
}

function setBusy(busy) {
  $("task-list").setAttribute("aria-busy", String(busy));
  $("tasks-pane").classList.toggle("is-loading", busy);
}

function showError(message) {
  const el = $("tasks-error");
  el.textContent = message || "";
  el.hidden = !message;
}

function addTag(tag) {
  const clean = tag.toLowerCase();
  if (!clean || state.tags.has(clean) || state.tags.size >= 200) return;
  state.tags.add(clean);
  const list = $("tag-options");
  const options = [...state.tags].sort();
  list.replaceChildren(...options.map((t) => h("option", { value: t })));
}

function setTagFilter(tag) {
  $("filter-tag").value = tag;
  state.filters.tag = tag;
  loadTasks();
  focusFilter("filter-tag");
}

function clearFilters() {
  Object.assign(state.filters, { priority: "", due: "any", tag: "", query: "" });
  $("filter-priority").value = "";
  $("filter-due").value = "any";
  $("filter-tag").value = "";
  $("filter-query").value = "";
  loadTasks();
  focusFilter("filter-query");
}

// ---------------------------------------------------------------- start

export function initTasks(opts) {
  options = { ...options, ...opts };
  $("tasks-refresh").append(icon("refresh"));
  const selects = [["filter-status", "status"], ["filter-priority", "priority"], ["filter-due", "due"], ["filter-sort", "sort"]];
  for (const [id, key] of selects) {
    const el = $(id);
    state.filters[key] = el.value; // the browser may have restored a choice
    el.addEventListener("change", () => {
      state.filters[key] = el.value;
      loadTasks();
    });
  }
  const typed = debounce(() => loadTasks(), 300);
  for (const [id, key] of [["filter-tag", "tag"], ["filter-query", "query"]]) {
    const el = $(id);
    state.filters[key] = el.value;
    el.addEventListener("input", () => {
      state.filters[key] = el.value;
      typed();
    });
  }
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    typed.flush();
  });
  const filtersToggle = $("filters-toggle");
  setFiltersOpen(storedFiltersOpen(), { store: false });
  filtersToggle.addEventListener("click", () => setFiltersOpen(filtersToggle.getAttribute("aria-expanded") !== "true"));
  $("tasks-more").addEventListener("click", () => loadTasks({ more: true }));
  $("tasks-refresh").addEventListener("click", () => loadTasks());

  // Due labels ("Today", "overdue") follow the clock; day-based filters move at midnight.
  let day = startOfDay(Date.now()).getTime();
  setInterval(() => {
    const today = startOfDay(Date.now()).getTime();
    if (today !== day && (state.filters.due === "today" || state.filters.due === "week")) loadTasks();
    day = today;
    render();
  }, 30_000);
  render();
}
