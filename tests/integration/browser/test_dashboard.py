"""The dashboard in a real browser (headless Debian chromium) against a real ``ktes serve`` running podman."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Page, expect

from tests.fixtures.browser import page_errors, screenshot
from tests.fixtures.ktes_server import KtesServer
from tests.integration.browser.conftest import create_task, get_task, wait_for_state

pytestmark = [pytest.mark.browser, pytest.mark.containers]

FINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sh(image: str, script: str, **fields: object) -> dict[str, object]:
    return {"image": image, "command": ["sh", "-c", script], **fields}


async def test_a_new_task_appears_and_its_state_changes_without_a_reload(
    page: Page, dashboard_server: KtesServer, busybox_image: str
) -> None:
    await page.goto(dashboard_server.url + "/", wait_until="domcontentloaded")  # a browser at / lands on the list
    await expect(page).to_have_url(dashboard_server.url + "/ui/")
    await expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    await page.evaluate("window.ktesSameDocument = true")

    task_id = await create_task(dashboard_server, {"name": unique("live"), "executors": [sh(busybox_image, "sleep 1")]})
    row = page.locator(f'tr[data-id="{task_id}"]')
    await expect(row).to_be_visible(timeout=2000)
    await screenshot(page, "task-list")
    await expect(row).to_have_attribute("data-state", "COMPLETE", timeout=60_000)
    await expect(row.locator(".state")).to_have_text("COMPLETE")
    assert await page.evaluate("window.ktesSameDocument") is True, "the page was reloaded"
    assert page_errors(page) == []


async def test_the_task_page_follows_stdout_and_stderr_apart_and_cancel_ends_it_canceled(
    page: Page, dashboard_server: KtesServer, busybox_image: str
) -> None:
    script = "echo 'first line'; echo 'to stderr' >&2; sleep 1; echo 'second line'; sleep 600; echo never"
    task_id = await create_task(dashboard_server, {"name": unique("follow"), "executors": [sh(busybox_image, script)]})
    await page.goto(f"{dashboard_server.url}/ui/tasks/{task_id}")
    stdout = page.get_by_role("log", name="Executor 0 stdout")
    stderr = page.get_by_role("log", name="Executor 0 stderr")
    await expect(stdout).to_contain_text("first line", timeout=60_000)
    await expect(stdout).to_contain_text("second line", timeout=30_000)
    await expect(stderr).to_contain_text("to stderr")
    await expect(stdout).not_to_contain_text("to stderr")
    assert (await get_task(dashboard_server, task_id))["state"] == "RUNNING", "the lines must show while it runs"
    await expect(page.locator("#executor-0-facts")).to_contain_text("running")
    await screenshot(page, "task-running")

    await page.get_by_role("button", name="Cancel task").click()
    dialog = page.get_by_role("dialog", name="Cancel this task?")
    await expect(dialog).to_be_visible()
    await screenshot(page, "task-cancel-confirmation")
    await dialog.get_by_role("button", name="Cancel task").click()
    assert await wait_for_state(dashboard_server, task_id, FINAL) == "CANCELED"
    await expect(page.locator("#task-state")).to_have_text("CANCELED", timeout=10_000)
    await expect(page.locator("#reason")).to_contain_text("canceled")
    assert page_errors(page) == []


async def test_keeping_the_task_running_in_the_confirmation_does_not_cancel(
    page: Page, dashboard_server: KtesServer, busybox_image: str
) -> None:
    task_id = await create_task(
        dashboard_server, {"name": unique("keep"), "executors": [sh(busybox_image, "sleep 600")]}
    )
    await page.goto(f"{dashboard_server.url}/ui/tasks/{task_id}")
    await page.get_by_role("button", name="Cancel task").click()
    await page.get_by_role("dialog").get_by_role("button", name="Keep it running").click()
    await expect(page.get_by_role("dialog")).to_be_hidden()
    assert (await get_task(dashboard_server, task_id))["state"] in {"QUEUED", "INITIALIZING", "RUNNING"}
    await page.get_by_role("button", name="Cancel task").click()  # clean up through the page as well
    await page.get_by_role("dialog").get_by_role("button", name="Cancel task").click()
    assert await wait_for_state(dashboard_server, task_id, FINAL) == "CANCELED"


async def test_filters_narrow_the_list(page: Page, dashboard_server: KtesServer, busybox_image: str) -> None:
    run = unique("filter")
    ok = [
        await create_task(
            dashboard_server,
            {"name": f"{run}-a{i}", "tags": {"run": run, "kind": "ok"}, "executors": [sh(busybox_image, "true")]},
        )
        for i in range(2)
    ]
    failed = await create_task(
        dashboard_server,
        {"name": f"{run}-b", "tags": {"run": run, "kind": "bad"}, "executors": [sh(busybox_image, "exit 1")]},
    )
    other = await create_task(dashboard_server, {"name": unique("other"), "executors": [sh(busybox_image, "true")]})
    for task_id in [*ok, failed, other]:
        await wait_for_state(dashboard_server, task_id, FINAL)

    await page.goto(dashboard_server.url + "/ui/")
    rows = page.locator("#tasks tbody tr")
    await expect(page.locator(f'tr[data-id="{other}"]')).to_be_visible()

    await page.get_by_label("Name starts with").fill(run)
    await page.get_by_label("Name starts with").press("Enter")  # the keyboard submits the filters
    await expect(rows).to_have_count(3)
    await expect(page.locator(f'tr[data-id="{other}"]')).to_have_count(0)
    await screenshot(page, "task-list-filtered-by-name")

    await page.get_by_label("State", exact=True).select_option("EXECUTOR_ERROR")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await expect(page.locator(f'tr[data-id="{failed}"]')).to_be_visible()

    await page.get_by_role("button", name="Clear").click()
    await page.get_by_label("Tags", exact=True).fill(f"run={run} kind=ok")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(2)
    for task_id in ok:
        await expect(page.locator(f'tr[data-id="{task_id}"]')).to_be_visible()

    counts = page.locator("#counts li[data-state='EXECUTOR_ERROR'] .count")
    await expect(counts).not_to_have_text("0")
    assert page_errors(page) == []


async def test_a_failure_shows_its_reason_first(page: Page, dashboard_server: KtesServer, busybox_image: str) -> None:
    failing = await create_task(
        dashboard_server,
        {"name": unique("fails"), "executors": [sh(busybox_image, "echo 'disk quota exceeded' >&2; exit 3")]},
    )
    missing_image = await create_task(
        dashboard_server,
        {"name": unique("no-image"), "executors": [{"image": "localhost/ktes-test/absent:1", "command": ["true"]}]},
    )
    assert await wait_for_state(dashboard_server, failing, FINAL) == "EXECUTOR_ERROR"
    assert await wait_for_state(dashboard_server, missing_image, FINAL) == "SYSTEM_ERROR"

    await page.goto(f"{dashboard_server.url}/ui/tasks/{failing}")
    reason = page.get_by_role("alert")
    await expect(reason).to_contain_text("Executor 0")
    await expect(reason).to_contain_text("exited with code 3")
    await expect(reason).to_contain_text("disk quota exceeded")
    await expect(page.locator("#executor-0-facts")).to_contain_text("3")
    await screenshot(page, "task-executor-error")

    await page.goto(f"{dashboard_server.url}/ui/tasks/{missing_image}")
    await expect(page.get_by_role("alert")).to_contain_text("localhost/ktes-test/absent:1")
    await screenshot(page, "task-system-error")
    assert page_errors(page) == []


async def test_submit_again_makes_a_new_task_and_the_cli_command_is_offered(
    page: Page, dashboard_server: KtesServer, busybox_image: str
) -> None:
    name = unique("again")
    first = await create_task(
        dashboard_server, {"name": name, "tags": {"k": "v"}, "executors": [sh(busybox_image, "true")]}
    )
    await wait_for_state(dashboard_server, first, FINAL)
    await page.goto(f"{dashboard_server.url}/ui/tasks/{first}")
    await expect(page.locator("#task-state")).to_have_text("COMPLETE")
    await page.locator("details summary").click()
    await expect(page.locator("#task-json")).to_contain_text(first)
    await page.get_by_role("button", name="Copy as ktes task create").click()
    command = page.get_by_label("Command to submit this task again")
    await expect(command).to_be_visible()
    text = await command.input_value()
    assert text.startswith("ktes task create - <<'KTES_TASK'")
    assert first not in text
    await screenshot(page, "task-complete")

    await page.get_by_role("button", name="Submit again").click()
    await page.wait_for_url(lambda url: "/ui/tasks/" in url and not url.endswith(first))
    second = page.url.rsplit("/", 1)[-1]
    assert second != first
    copy = await get_task(dashboard_server, second, "FULL")
    assert copy["name"] == name and copy["tags"] == {"k": "v"}
    await wait_for_state(dashboard_server, second, FINAL)


async def test_the_service_page_shows_the_backend_and_the_counts(page: Page, dashboard_server: KtesServer) -> None:
    await page.goto(dashboard_server.url + "/ui/service")
    await expect(page.locator("#backend")).to_contain_text("local")
    await expect(page.locator("#load")).to_contain_text("Queue length")
    await expect(page.locator("#service-info")).to_contain_text("org.ga4gh:tes 1.1.0")
    await expect(page.locator("#counts li")).to_have_count(10)
    await screenshot(page, "service")
    assert page_errors(page) == []


async def test_pages_fit_a_phone_screen(page: Page, dashboard_server: KtesServer) -> None:
    await page.set_viewport_size({"width": 375, "height": 740})
    for path, name in (("/ui/", "task-list-phone"), ("/ui/service", "service-phone")):
        await page.goto(dashboard_server.url + path)
        await expect(page.locator("main h1")).to_be_visible()
        await page.wait_for_load_state("networkidle")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width} px wide on a 375 px screen"
        await screenshot(page, name)


async def test_the_list_works_from_the_keyboard(page: Page, dashboard_server: KtesServer, busybox_image: str) -> None:
    task_id = await create_task(dashboard_server, {"name": unique("keys"), "executors": [sh(busybox_image, "true")]})
    await page.goto(dashboard_server.url + "/ui/")
    row_link = page.locator(f'tr[data-id="{task_id}"] a')
    await expect(row_link).to_be_visible(timeout=10_000)
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    for _ in range(60):  # Tab through counts, filters and rows until the task's link has the focus
        await page.keyboard.press("Tab")
        if await row_link.evaluate("link => link === document.activeElement"):
            break
    await expect(row_link).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{dashboard_server.url}/ui/tasks/{task_id}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(task_id)
