"""The web UI in headless Chromium against the real embedded app: chat, live list, reminders."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.helpers import serving
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
