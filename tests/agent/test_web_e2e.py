"""The web UI in headless Chromium against the real embedded app: chat, live list, reminders."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.helpers import TEST_SECRET, serving, token
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Route, WebSocketRoute

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
    ),
]


@pytest.fixture
async def app_url(sqlite_url: str) -> AsyncIterator[str]:
    settings = Settings(database_url=sqlite_url, todo_user=f"ui-{uuid.uuid4().hex[:8]}")
    async with serving(create_app(settings)) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def open_page(
    browser: Browser, url: str, width: int = 1280, height: int = 800
) -> tuple[Page, list[str]]:
    """The app in a fresh page, once its live socket is up; and the list its script errors go to."""
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    await expect(page.get_by_test_id("ws-status")).to_have_text("live", timeout=10_000)
    return page, errors


async def test_chat_adds_completes_and_reminds_live(app_url: str) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(app_url)
            await expect(page.get_by_test_id("ws-status")).to_have_text("live", timeout=10_000)

            # The first answer is held back, so the second message is typed while it streams: it
            # waits, shown as queued, and goes when the first answer ends (nothing typed is lost).
            release = asyncio.Event()
            chat_posts = 0

            async def hold_first(route: Route) -> None:
                nonlocal chat_posts
                chat_posts += 1
                if chat_posts == 1:
                    await release.wait()
                await route.continue_()

            await page.route("**/api/chat", hold_first)
            await page.get_by_test_id("chat-input").fill("add buy milk tomorrow at 9am #errands")
            await page.get_by_test_id("chat-input").press("Enter")
            await page.get_by_test_id("chat-input").fill("add call mom friday at 6pm")
            await page.get_by_test_id("chat-input").press("Enter")
            queued = page.locator('[data-testid="chat-message"][data-queued="true"] .msg-text')
            await expect(queued).to_have_text("add call mom friday at 6pm")
            await expect(page.get_by_test_id("chat-input")).to_have_value("")
            release.set()

            row = page.get_by_test_id("task-row").filter(has_text="Buy milk")
            await expect(row).to_be_visible(timeout=10_000)  # from the chat's tool result: no reload
            await expect(row.get_by_test_id("task-tag")).to_have_text("#errands")
            await expect(page.get_by_test_id("task-row").filter(has_text="Call mom")).to_be_visible(
                timeout=10_000
            )
            await expect(queued).to_have_count(0)
            await expect(page.locator("#chat-log")).to_have_attribute("aria-busy", "false", timeout=10_000)
            await page.unroute("**/api/chat")
            texts = await page.locator('[data-testid="chat-message"] .msg-text').all_inner_texts()
            first_reply = next(i for i, t in enumerate(texts) if "Buy milk" in t and not t.startswith("add"))
            assert first_reply < texts.index("add call mom friday at 6pm"), (
                texts
            )  # the queued one moved after it
            assert chat_posts == 2

            await page.get_by_test_id("chat-input").fill("mark buy milk done")
            await page.get_by_test_id("chat-input").press("Enter")
            await expect(row).to_have_count(0, timeout=10_000)  # done: it left the open list
            await page.get_by_test_id("filter-status").select_option("done")
            await expect(page.get_by_test_id("task-row").filter(has_text="Buy milk")).to_be_visible()
            await page.get_by_test_id("filter-status").select_option("open")

            remind_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(
                seconds=1
            )
            async with httpx.AsyncClient(base_url=app_url) as http:
                created = await http.post(
                    "/api/tasks", json={"title": "Stretch", "remind": remind_at.isoformat()}
                )
                assert created.status_code == 201
            # Added by another client: only the WebSocket can bring it.
            await expect(page.get_by_test_id("task-row").filter(has_text="Stretch")).to_be_visible(
                timeout=10_000
            )
            toast = page.get_by_test_id("toast").filter(has_text="Stretch")
            await expect(toast).to_be_visible(timeout=8_000)

            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "web-ui.png"), full_page=True)
            phone = await browser.new_page(viewport={"width": 390, "height": 844})
            await phone.goto(app_url)
            await expect(phone.get_by_test_id("ws-status")).to_have_text("live", timeout=10_000)
            await phone.screenshot(path=str(ARTIFACTS / "web-ui-phone.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()


async def test_a_listing_of_open_and_done_tasks_keeps_the_open_ones_first_as_they_change(
    app_url: str, browser: Browser
) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=app_url, timeout=10) as http:
        ids = {}
        for title in ("Bake bread", "Air the room", "Call the bank"):
            ids[title] = (await http.post("/api/tasks", json={"title": title})).json()["id"]
        page, errors = await open_page(browser, app_url)
        titles = page.get_by_test_id("task-title")
        await page.get_by_test_id("filter-status").select_option("all")
        await page.get_by_test_id("filter-sort").select_option("title")
        await expect(titles).to_have_text(["Air the room", "Bake bread", "Call the bank"])
        await http.post(f"/api/tasks/{ids['Air the room']}/complete")
        await expect(titles).to_have_text(["Bake bread", "Call the bank", "Air the room"])
        await page.get_by_test_id("filter-sort").select_option("updated")
        await expect(titles).to_have_text(["Call the bank", "Bake bread", "Air the room"])
        await http.post(f"/api/tasks/{ids['Bake bread']}/complete")  # the newest change of the done ones
        await expect(titles).to_have_text(["Call the bank", "Bake bread", "Air the room"])
        await http.patch(f"/api/tasks/{ids['Air the room']}", json={"title": "Air the rooms"})
        await expect(titles).to_have_text(["Call the bank", "Air the rooms", "Bake bread"])
        await page.get_by_test_id("filter-sort").select_option("title")  # fetched again from the server
        await page.get_by_test_id("filter-sort").select_option("updated")
        await expect(titles).to_have_text(["Call the bank", "Air the rooms", "Bake bread"])
    assert errors == []


async def test_an_empty_list_offers_examples_for_the_message_box(app_url: str, browser: Browser) -> None:
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url)
    empty = page.get_by_test_id("tasks-empty")
    await expect(empty.locator(".empty-title")).to_have_text("No open tasks. Nice!")
    await expect(empty).not_to_contain_text("[object")
    examples = empty.get_by_test_id("example-command")
    await expect(examples).to_have_count(3)
    await examples.first.click()
    await expect(page.get_by_test_id("chat-input")).to_have_value("add buy milk tomorrow at 9am #errands")
    await expect(page.get_by_test_id("chat-input")).to_be_focused()
    assert errors == []


async def test_a_list_load_that_failed_in_an_outage_is_redone_when_the_socket_resumes(
    app_url: str, browser: Browser
) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=app_url) as http:
        done = (await http.post("/api/tasks", json={"title": "Water the plants"})).json()
        assert (await http.post(f"/api/tasks/{done['id']}/complete")).status_code == 200
    sockets: list[WebSocketRoute] = []

    def through(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        ws.connect_to_server()

    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.route_web_socket("**/ws/tasks*", through)
    await page.goto(app_url)
    await expect(page.get_by_test_id("ws-status")).to_have_text("live", timeout=10_000)
    async with httpx.AsyncClient(base_url=app_url) as http:
        await http.post("/api/tasks", json={"title": "Call the bank"})
    await expect(page.get_by_test_id("task-row").filter(has_text="Call the bank")).to_be_visible()

    # The server is out of reach: the filter's load fails, and the socket drops.
    await page.route("**/api/tasks?*", lambda route: route.abort())
    await page.get_by_test_id("filter-status").select_option("done")
    await expect(page.get_by_test_id("tasks-error")).to_contain_text("Cannot reach the server")
    await page.unroute("**/api/tasks?*")
    await sockets[-1].close()  # it reconnects, resuming after the last event it saw

    await expect(page.get_by_test_id("ws-status")).to_have_text("live", timeout=10_000)
    assert len(sockets) == 2
    await expect(page.get_by_test_id("tasks-error")).to_be_hidden(timeout=5_000)
    await expect(page.get_by_test_id("task-title")).to_have_text(["Water the plants"])


async def test_the_history_list_fits_on_a_phone(app_url: str, browser: Browser) -> None:
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url, width=375, height=740)
    await page.get_by_test_id("chat-input").fill("add pick up the dry cleaning")
    await page.get_by_test_id("chat-send").click()
    await expect(page.locator("#chat-log")).to_have_attribute("aria-busy", "false", timeout=10_000)
    await page.get_by_test_id("chat-history").locator("summary").click()
    item = page.get_by_test_id("history-item")
    await expect(item).to_have_count(1)
    for box in (await page.locator(".history-pop").bounding_box(), await item.bounding_box()):
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 375, box
    assert errors == []


async def test_a_reminder_on_a_phone_leaves_the_message_box_free(app_url: str, browser: Browser) -> None:
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url, width=375, height=740)
    remind_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
    async with httpx.AsyncClient(base_url=app_url) as http:
        created = await http.post("/api/tasks", json={"title": "Stretch", "remind": remind_at.isoformat()})
        assert created.status_code == 201
    toast = page.get_by_test_id("toast").filter(has_text="Stretch")
    await expect(toast).to_be_visible(timeout=8_000)
    await page.wait_for_timeout(300)  # its entrance animation
    box = await toast.bounding_box()
    composer = await page.locator("#composer").bounding_box()
    assert box is not None and composer is not None
    assert box["y"] + box["height"] <= composer["y"] or box["y"] >= composer["y"] + composer["height"], (
        box,
        composer,
    )
    await page.get_by_test_id("chat-input").click()  # not intercepted by the toast
    await expect(page.get_by_test_id("chat-input")).to_be_focused()
    assert errors == []


# What a control shows is in the name it is announced by, so "click History" works by voice (WCAG 2.5.3).
LABEL_NOT_IN_NAME = """() => [...document.querySelectorAll("button, summary, a, [role=button]")]
  .filter((el) => el.getClientRects().length && el.hasAttribute("aria-label"))
  .map((el) => [el.innerText.replace(/\\s+/g, " ").trim().toLowerCase().replace(/^#/, ""),
                el.getAttribute("aria-label").toLowerCase()])
  .filter(([shown, name]) => shown && !name.includes(shown))"""


@pytest.mark.parametrize("width", [1280, 375])
async def test_every_labelled_control_is_named_by_what_it_shows(
    app_url: str, browser: Browser, width: int
) -> None:
    async with httpx.AsyncClient(base_url=app_url) as http:
        await http.post("/api/tasks", json={"title": "Buy milk", "tags": ["errands"], "priority": "high"})
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url, width=width)
    await expect(page.get_by_test_id("task-row")).to_have_count(1)
    assert await page.evaluate(LABEL_NOT_IN_NAME) == []
    if width < 700:
        await page.get_by_test_id("tab-tasks").click()
        assert await page.evaluate(LABEL_NOT_IN_NAME) == []
    assert errors == []


# Each filter field and each select's every choice fits its box: a select sized to one option is no
# wider than the one in the panel (give or take a pixel of its end padding).
FILTERS_CUT_OFF = """() => {
  const cut = [];
  const vw = document.documentElement.clientWidth;
  for (const field of document.querySelectorAll("#filters .field")) {
    const box = field.getBoundingClientRect();
    if (box.left < 0 || box.right > vw) cut.push(["field", field.innerText, box.left, box.right]);
    const label = field.querySelector(".field-label");
    if (label.scrollWidth > label.clientWidth) cut.push(["label", label.innerText]);
  }
  for (const select of document.querySelectorAll("#filters select")) {
    for (const option of select.options) {
      const probe = select.cloneNode(false);
      probe.append(option.cloneNode(true));
      probe.style.width = "auto";
      probe.style.position = "absolute";
      select.parentElement.append(probe);
      if (probe.offsetWidth > select.offsetWidth + 2) {
        cut.push(["select", select.id, option.text, probe.offsetWidth, select.offsetWidth]);
      }
      probe.remove();
    }
  }
  return cut;
}"""


@pytest.mark.parametrize(("width", "height"), [(375, 740), (320, 640)])
async def test_on_a_phone_the_filters_fold_behind_a_button_and_fit_when_shown(
    app_url: str, browser: Browser, width: int, height: int
) -> None:
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url, width=width, height=height)
    await page.get_by_test_id("tab-tasks").click()
    toggle = page.get_by_test_id("filters-toggle")
    await expect(toggle).to_be_visible()
    await expect(toggle).to_have_attribute("aria-controls", "filters")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(page.locator("#filters")).to_be_hidden()
    list_box = await page.get_by_test_id("task-list").bounding_box()
    assert list_box is not None and list_box["y"] < height * 0.3, list_box  # the list has the room

    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_test_id("filter-due")).to_be_visible()
    assert await page.evaluate(FILTERS_CUT_OFF) == []
    await page.get_by_test_id("filter-due").select_option("today")
    await page.get_by_test_id("filter-status").select_option("all")
    await expect(page.get_by_test_id("filters-count")).to_have_text("2 active")

    await toggle.focus()
    await page.keyboard.press("Space")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(page.locator("#filters")).to_be_hidden()
    await expect(toggle).to_contain_text("Filters 2")  # still says the list is narrowed
    assert errors == []


async def test_on_a_wide_screen_the_filters_are_always_shown(app_url: str, browser: Browser) -> None:
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url)
    await expect(page.get_by_test_id("filter-due")).to_be_visible()
    await expect(page.get_by_test_id("filters-toggle")).to_be_hidden()
    assert await page.evaluate(FILTERS_CUT_OFF) == []
    assert errors == []


async def test_a_reminder_that_has_fired_is_shown_as_past(app_url: str, browser: Browser) -> None:
    from playwright.async_api import expect

    now = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=app_url) as http:
        reminders = (("Water plants", now - timedelta(hours=1)), ("Pay rent", now + timedelta(days=1)))
        for title, remind in reminders:
            created = await http.post("/api/tasks", json={"title": title, "remind": remind.isoformat()})
            assert created.status_code == 201, created.text
    page, errors = await open_page(browser, app_url)
    bell = page.get_by_test_id("task-row").filter(has_text="Water plants").get_by_test_id("task-reminder")
    await expect(bell).to_have_attribute("aria-label", re.compile(r"^Reminded at "))
    await expect(bell).to_have_attribute("title", re.compile(r"^Reminded at "))
    await expect(bell).to_have_class(re.compile(r"\bis-past\b"))
    future = page.get_by_test_id("task-row").filter(has_text="Pay rent").get_by_test_id("task-reminder")
    await expect(future).to_have_attribute("aria-label", re.compile(r"^Reminder at "))
    await expect(future).not_to_have_class(re.compile(r"\bis-past\b"))

    # One that fires while the page is open turns past when its reminder.due arrives.
    remind_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
    async with httpx.AsyncClient(base_url=app_url) as http:
        created = await http.post("/api/tasks", json={"title": "Stretch", "remind": remind_at.isoformat()})
        assert created.status_code == 201
    soon = page.get_by_test_id("task-row").filter(has_text="Stretch").get_by_test_id("task-reminder")
    await expect(soon).to_have_attribute("aria-label", re.compile(r"^Reminder at "))
    await expect(page.get_by_test_id("toast").filter(has_text="Stretch")).to_be_visible(timeout=8_000)
    await expect(soon).to_have_attribute("aria-label", re.compile(r"^Reminded at "), timeout=2_000)
    assert errors == []


async def test_a_reminder_toast_snoozes_and_completes_its_task(app_url: str, browser: Browser) -> None:
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url)
    remind_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
    async with httpx.AsyncClient(base_url=app_url) as http:
        for title in ("Stretch", "Drink water", "Gone"):
            created = await http.post("/api/tasks", json={"title": title, "remind": remind_at.isoformat()})
            assert created.status_code == 201, created.text
        ids = {task["title"]: task["id"] for task in (await http.get("/api/tasks")).json()["tasks"]}
    toasts = page.get_by_test_id("toast")
    for title in ("Stretch", "Drink water", "Gone"):
        await expect(toasts.filter(has_text=title)).to_be_visible(timeout=8_000)

    # Snooze: the reminder is ten minutes from now, the row's bell is ahead again, the toast is gone.
    clicked = datetime.now(UTC)
    await toasts.filter(has_text="Stretch").get_by_test_id("toast-snooze").click()
    await expect(toasts.filter(has_text="Stretch")).to_have_count(0)
    await expect(page.locator("#announcer")).to_have_text(re.compile(r"^Snoozed “Stretch” until "))
    bell = page.get_by_test_id("task-row").filter(has_text="Stretch").get_by_test_id("task-reminder")
    await expect(bell).to_have_attribute("aria-label", re.compile(r"^Reminder at "))
    async with httpx.AsyncClient(base_url=app_url) as http:
        snoozed = (await http.get(f"/api/tasks/{ids['Stretch']}")).json()
        remind = datetime.fromisoformat(snoozed["remind_at"])
        assert clicked + timedelta(minutes=10) <= remind <= datetime.now(UTC) + timedelta(minutes=10)

        # Done: the task is completed and leaves the list of open tasks.
        await toasts.filter(has_text="Drink water").get_by_test_id("toast-done").click()
        await expect(toasts.filter(has_text="Drink water")).to_have_count(0)
        await expect(page.get_by_test_id("task-row").filter(has_text="Drink water")).to_have_count(0)
        assert (await http.get(f"/api/tasks/{ids['Drink water']}")).json()["completed"] is True

        # A task deleted meanwhile: the toast says why it could not, and stays.
        assert (await http.delete(f"/api/tasks/{ids['Gone']}")).status_code == 200
    gone = toasts.filter(has_text="Gone")
    await gone.get_by_test_id("toast-done").click()
    await expect(gone.get_by_test_id("toast-problem")).to_have_text(re.compile(r"^Could not mark it done: "))
    await expect(gone).to_be_visible()
    await expect(page.get_by_test_id("task-row").filter(has_text="Gone")).to_have_count(0)
    assert errors == []


# What a restored task must have kept of the deleted one (its id, times and version are new).
KEPT_FIELDS = ("title", "description", "priority", "tags", "due", "remind_at", "remind_before_minutes")


async def test_a_delete_from_the_list_asks_nothing_and_undo_puts_every_field_back(
    app_url: str, browser: Browser
) -> None:
    from playwright.async_api import expect

    due = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    async with httpx.AsyncClient(base_url=app_url) as http:
        milk = await http.post(
            "/api/tasks",
            json={
                "title": "Buy milk",
                "description": "Two litres, semi-skimmed",
                "priority": "high",
                "tags": ["errands", "dairy"],
                "due": due.isoformat(),
                "remind": "30 minutes before",
                "repeat": "every week",
            },
        )
        assert milk.status_code == 201, milk.text
        stretch = (await http.post("/api/tasks", json={"title": "Stretch", "description": "10 min"})).json()
        assert (await http.post(f"/api/tasks/{stretch['id']}/complete")).status_code == 200
    before = milk.json()

    page, errors = await open_page(browser, app_url)
    row = page.get_by_test_id("task-row").filter(has_text="Buy milk")
    await row.get_by_test_id("task-delete").focus()
    await page.keyboard.press("Enter")
    await expect(row).to_have_count(0)
    await expect(page.locator("dialog[open]")).to_have_count(0)  # Undo instead of "Are you sure?"
    toast = page.get_by_test_id("undo-toast")
    await expect(toast.get_by_test_id("undo-message")).to_have_text("Deleted “Buy milk”.")
    await expect(page.get_by_test_id("announcer")).to_contain_text("Deleted “Buy milk”.")

    # Its Undo button is in the tab order (after the task pane), and Enter presses it.
    for _ in range(20):
        if await page.evaluate("document.activeElement.dataset.testid") == "undo":
            break
        await page.keyboard.press("Tab")
    await expect(toast.get_by_test_id("undo")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(row).to_have_count(1)
    await expect(toast).to_have_count(0)
    await expect(page.get_by_test_id("announcer")).to_have_text("Restored “Buy milk”.")
    await expect(row.get_by_test_id("task-complete")).to_be_focused()  # not lost with the toast
    async with httpx.AsyncClient(base_url=app_url) as http:
        listed = (await http.get("/api/tasks", params={"status": "all"})).json()["tasks"]
        again = next(t for t in listed if t["title"] == "Buy milk")
        after = (await http.get(f"/api/tasks/{again['id']}")).json()
    assert after["id"] != before["id"]
    assert {k: after[k] for k in KEPT_FIELDS} == {k: before[k] for k in KEPT_FIELDS}
    assert after["repeat"] == before["repeat"] and after["repeat_text"] == before["repeat_text"]
    assert after["remind_before_minutes"] == 30

    # A done task comes back done; Ctrl+Z outside a text field undoes the newest change.
    await page.get_by_test_id("filter-status").select_option("all")
    done_row = page.get_by_test_id("task-row").filter(has_text="Stretch")
    await done_row.get_by_test_id("task-delete").click()
    await expect(done_row).to_have_count(0)
    await expect(toast.get_by_test_id("undo-message")).to_have_text("Deleted “Stretch”.")
    await page.keyboard.press("Control+z")
    await expect(done_row).to_have_attribute("data-completed", "true")
    async with httpx.AsyncClient(base_url=app_url) as http:
        listed = (await http.get("/api/tasks", params={"status": "done"})).json()["tasks"]
        assert [t["title"] for t in listed] == ["Stretch"]
        restored = (await http.get(f"/api/tasks/{listed[0]['id']}")).json()
    assert restored["description"] == "10 min" and restored["completed"] is True
    assert errors == []


async def test_a_completion_from_the_list_offers_undo_clear_of_the_message_box_on_a_phone(
    app_url: str, browser: Browser
) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=app_url) as http:
        task = (await http.post("/api/tasks", json={"title": "Buy milk"})).json()
    page, errors = await open_page(browser, app_url, width=375, height=740)
    await page.get_by_test_id("tab-tasks").click()
    row = page.get_by_test_id("task-row").filter(has_text="Buy milk")
    await row.get_by_test_id("task-complete").click()
    await expect(row).to_have_count(0)
    toast = page.get_by_test_id("undo-toast")
    await expect(toast.get_by_test_id("undo-message")).to_have_text("Completed “Buy milk”.")
    await expect(page.get_by_test_id("announcer")).to_contain_text("Completed “Buy milk”.")

    # Still there in the chat view, and neither on the message box nor off the screen.
    await page.get_by_test_id("tab-chat").click()
    await page.wait_for_timeout(300)  # its entrance animation
    box = await toast.bounding_box()
    composer = await page.locator("#composer").bounding_box()
    assert box is not None and composer is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    assert box["y"] + box["height"] <= composer["y"] or box["y"] >= composer["y"] + composer["height"], (
        box,
        composer,
    )
    await page.get_by_test_id("chat-input").click()
    await expect(page.get_by_test_id("chat-input")).to_be_focused()

    # The tasks view has no message box: there it waits at the bottom, off the Chat/Tasks switch.
    await page.get_by_test_id("tab-tasks").click()
    box = await toast.bounding_box()
    switch = await page.locator(".view-switch").bounding_box()
    assert box is not None and switch is not None
    assert box["y"] >= switch["y"] + switch["height"] and box["y"] + box["height"] <= 740, (box, switch)
    await toast.get_by_test_id("undo").click()
    await expect(row).to_have_attribute("data-completed", "false")
    await expect(toast).to_have_count(0)
    async with httpx.AsyncClient(base_url=app_url) as http:
        assert (await http.get(f"/api/tasks/{task['id']}")).json()["completed"] is False
    assert errors == []


async def test_a_failed_undo_says_why_and_can_be_tried_again(app_url: str, browser: Browser) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=app_url) as http:
        await http.post("/api/tasks", json={"title": "Buy milk"})
    page, errors = await open_page(browser, app_url)
    row = page.get_by_test_id("task-row").filter(has_text="Buy milk")
    await row.get_by_test_id("task-complete").click()
    await expect(row).to_have_count(0)
    toast = page.get_by_test_id("undo-toast")

    await page.route("**/api/tasks/*/reopen", lambda route: route.abort())
    await toast.get_by_test_id("undo").click()
    await expect(toast.get_by_test_id("undo-message")).to_have_text(
        re.compile(r"^Could not undo: Cannot reach the server")
    )
    await expect(page.get_by_test_id("alerter")).to_contain_text("Could not undo: Cannot reach the server")
    await expect(toast.get_by_test_id("undo")).to_have_text("Try again")
    await expect(row).to_have_count(0)

    await page.unroute("**/api/tasks/*/reopen")
    await toast.get_by_test_id("undo").click()
    await expect(row).to_have_attribute("data-completed", "false")
    await expect(toast).to_have_count(0)
    assert errors == []


async def test_on_a_phone_the_filters_stay_open_or_closed_across_a_reload(
    app_url: str, browser: Browser
) -> None:
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url, width=375, height=740)
    toggle = page.get_by_test_id("filters-toggle")
    for shown in (True, False):
        await page.get_by_test_id("tab-tasks").click()
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", str(shown).lower())
        await page.reload()
        await expect(page.get_by_test_id("ws-status")).to_have_text("live", timeout=10_000)
        await page.get_by_test_id("tab-tasks").click()
        await expect(toggle).to_have_attribute("aria-expanded", str(shown).lower())
        await expect(page.get_by_test_id("filter-due")).to_be_visible(visible=shown)
    assert errors == []


@pytest.mark.parametrize("width", [320, 390])
async def test_signed_in_on_a_phone_the_top_bar_keeps_to_one_row(
    sqlite_url: str, browser: Browser, width: int
) -> None:
    from playwright.async_api import expect

    settings = Settings(database_url=sqlite_url, auth_secret=TEST_SECRET)
    async with serving(create_app(settings)) as url:
        page = await browser.new_page(viewport={"width": width, "height": 640})
        await page.add_init_script(
            f"localStorage.setItem('todo-chatbot.token', {json.dumps(token('alice'))})"
        )
        await page.goto(url)
        await expect(page.get_by_test_id("ws-status")).to_have_text("live", timeout=10_000)
        sign_out = page.get_by_role("button", name="Sign out")
        await expect(sign_out).to_be_visible()
        await expect(page.get_by_role("heading", name="Todo Chatbot")).to_have_count(1)
        bar = await page.locator(".topbar").bounding_box()
        assert bar is not None
        for control in (page.get_by_test_id("ws-status"), page.get_by_test_id("notify-enable"), sign_out):
            box = await control.bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= width, box
            assert box["y"] + box["height"] <= bar["y"] + 56, (box, bar)  # not on a second row
        await sign_out.click()
        await expect(page.get_by_test_id("signin-dialog")).to_be_visible()


async def test_the_skip_link_reaches_the_message_box_from_the_tasks_view_on_a_phone(
    app_url: str, browser: Browser
) -> None:
    from playwright.async_api import expect

    page, errors = await open_page(browser, app_url, width=375, height=740)
    await page.get_by_test_id("tab-tasks").click()
    await page.locator(".skip-link").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("chat-input")).to_be_focused()
    await expect(page.get_by_test_id("chat-input")).to_be_visible()
    await expect(page.get_by_test_id("tab-chat")).to_have_attribute("aria-pressed", "true")
    assert errors == []


# Controls smaller than 24 x 24 CSS pixels (WCAG 2.2's minimum target size).
SMALL_TARGETS = """() => [...document.querySelectorAll("button, summary, a, input, select, textarea")]
  .filter((el) => el.checkVisibility() && !el.closest(".visually-hidden"))
  .map((el) => [el.dataset.testid || el.id || el.className, el.getBoundingClientRect()])
  .filter(([, box]) => box.width < 24 || box.height < 24)
  .map(([name, box]) => [name, box.width, box.height])"""


@pytest.mark.parametrize("width", [1280, 375])
async def test_every_control_is_at_least_24px_square(app_url: str, browser: Browser, width: int) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=app_url) as http:
        await http.post(
            "/api/tasks", json={"title": "Buy milk", "tags": ["errands", "home"], "priority": "high"}
        )
    page, errors = await open_page(browser, app_url, width=width)
    await expect(page.get_by_test_id("task-tag")).to_have_count(2)
    if width < 700:
        await page.get_by_test_id("tab-tasks").click()
        await page.get_by_test_id("filters-toggle").click()
    assert await page.evaluate(SMALL_TARGETS) == []
    assert errors == []


async def test_on_a_touch_screen_no_hover_look_is_left_on_the_row_under_the_finger(
    app_url: str, browser: Browser
) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=app_url) as http:
        await http.post("/api/tasks", json={"title": "Buy milk"})
    # A touch screen; the mouse then stands in for what a tap leaves behind: the row that moves up
    # under the finger (once the tapped one is done or deleted) stays :hover.
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(app_url)
    await expect(page.get_by_test_id("ws-status")).to_have_text("live", timeout=10_000)
    assert await page.evaluate("matchMedia('(hover: none)').matches")
    await page.get_by_test_id("tab-tasks").click()
    look = """async (el) => {
      for (let frame = 0; frame < 120 && !el.matches(":hover"); frame++) {
        await new Promise(requestAnimationFrame);  // the hover state follows the pointer a frame late
      }
      const style = getComputedStyle(el);
      return [el.matches(":hover"), style.color, style.opacity];
    }"""
    check, delete = page.get_by_test_id("task-complete"), page.get_by_test_id("task-delete")
    await check.hover()
    assert await check.evaluate(look) == [True, "rgba(0, 0, 0, 0)", "1"]  # no tick
    await delete.hover()
    hovered, _, opacity = await delete.evaluate(look)
    assert hovered and opacity == "0.7"  # no red bin
    assert errors == []
    await context.close()


@pytest.mark.parametrize("width", [701, 720, 768])
async def test_beside_the_chat_a_toast_stays_off_the_message_box(
    app_url: str, browser: Browser, width: int
) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=app_url) as http:
        await http.post("/api/tasks", json={"title": "Buy milk"})
    page, errors = await open_page(browser, app_url, width=width, height=900)
    await page.get_by_test_id("task-complete").click()
    toast = page.get_by_test_id("undo-toast")
    await expect(toast).to_be_visible()
    await page.wait_for_timeout(300)  # its entrance animation
    box = await toast.bounding_box()
    chat = await page.locator("#chat-pane").bounding_box()
    assert box is not None and chat is not None
    assert box["x"] >= chat["x"] + chat["width"], (box, chat)
    await page.get_by_test_id("chat-send").click(trial=True)  # nothing in its way
    assert errors == []
