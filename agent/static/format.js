// Dates in the browser's locale and time zone, and the bounds the "due" filter asks the server for.

const DAY_MS = 86_400_000;

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const monthDayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullDateFmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const longFmt = new Intl.DateTimeFormat(undefined, {
  weekday: "long", year: "numeric", month: "long", day: "numeric",
  hour: "numeric", minute: "2-digit", timeZoneName: "short",
});
const relDay = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export const timezone = (() => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
})();

export function startOfDay(date) {
  const d = new Date(date);
  d.setHours(0, 0, 0, 0);
  return d;
}

function addDays(date, days) {
  const d = new Date(date);
  d.setDate(d.getDate() + days); // calendar days, so DST changes do not shift midnight
  return d;
}

function capitalize(text) {
  return text ? text.charAt(0).toLocaleUpperCase() + text.slice(1) : text;
}

/** "Today, 9:00 AM", "Tomorrow, 9:00 AM", "Fri, 9:00 AM", "Mar 3, 9:00 AM", "Mar 3, 2027". */
export function formatWhen(ms, now = Date.now()) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  const date = new Date(ms);
  const days = Math.round((startOfDay(date) - startOfDay(now)) / DAY_MS);
  const time = timeFmt.format(date);
  if (days >= -1 && days <= 1) return `${capitalize(relDay.format(days, "day"))}, ${time}`;
  if (days > 1 && days < 7) return `${weekdayFmt.format(date)}, ${time}`;
  if (date.getFullYear() === new Date(now).getFullYear()) return `${monthDayFmt.format(date)}, ${time}`;
  return fullDateFmt.format(date);
}

/** The full date and time with the zone, for tooltips and screen readers. */
export function formatLong(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  return longFmt.format(new Date(ms));
}

export function formatRelativeDate(ms, now = Date.now()) {
  const days = Math.round((startOfDay(ms) - startOfDay(now)) / DAY_MS);
  if (days >= -1 && days <= 0) return capitalize(relDay.format(days, "day"));
  return monthDayFmt.format(new Date(ms));
}

/** ISO 8601 with the browser's own offset, e.g. 2026-11-27T00:00:00-05:00 (what the API parses). */
export function isoLocal(date) {
  const pad = (n, w = 2) => String(Math.abs(n)).padStart(w, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`
  );
}

function firstDayOfWeek() {
  try {
    const locale = new Intl.Locale(navigator.language || "en");
    const info = typeof locale.getWeekInfo === "function" ? locale.getWeekInfo() : locale.weekInfo;
    if (info && info.firstDay) return info.firstDay % 7; // 1 = Monday ... 7 = Sunday
  } catch {
    /* older browsers: Monday */
  }
  return 1;
}

/** [start, end) of today, and of this calendar week (per the locale's first day), as Dates. */
export function dueRange(which, now = new Date()) {
  const today = startOfDay(now);
  if (which === "today") return [today, addDays(today, 1)];
  if (which === "week") {
    const back = (today.getDay() - firstDayOfWeek() + 7) % 7;
    const start = addDays(today, -back);
    return [start, addDays(start, 7)];
  }
  return null;
}

const WEEKDAYS = { MO: "Mon", TU: "Tue", WE: "Wed", TH: "Thu", FR: "Fri", SA: "Sat", SU: "Sun" };
const UNITS = { DAILY: "day", WEEKLY: "week", MONTHLY: "month", YEARLY: "year", HOURLY: "hour" };

/** A short English description of an RRULE, for tasks that arrived by event without `repeat_text`. */
export function describeRRule(rule) {
  if (!rule || typeof rule !== "string") return "";
  const parts = {};
  for (const line of rule.split(/\n/)) {
    const body = line.replace(/^RRULE:/i, "");
    if (/^DTSTART/i.test(body)) continue;
    for (const pair of body.split(";")) {
      const [key, value] = pair.split("=");
      if (key && value) parts[key.trim().toUpperCase()] = value.trim().toUpperCase();
    }
  }
  const unit = UNITS[parts.FREQ];
  if (!unit) return "repeats";
  const every = Number(parts.INTERVAL || 1);
  let text = every > 1 ? `every ${every} ${unit}s` : `every ${unit}`;
  if (parts.BYDAY) {
    const days = parts.BYDAY.split(",").map((d) => {
      const m = /^([+-]?\d+)?([A-Z]{2})$/.exec(d);
      if (!m) return d;
      const name = WEEKDAYS[m[2]] || m[2];
      if (!m[1]) return name;
      const n = Number(m[1]);
      return `${n === -1 ? "last" : ordinal(n)} ${name}`;
    });
    const weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri"];
    if (parts.FREQ === "WEEKLY" && every === 1 && days.length === 5 && weekdays.every((d) => days.includes(d))) {
      text = "every weekday";
    } else {
      text += ` on ${days.join(", ")}`;
    }
  }
  if (parts.COUNT) text += `, ${parts.COUNT} times`;
  return text;
}

function ordinal(n) {
  const s = ["th", "st", "nd", "rd"];
  const v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}
