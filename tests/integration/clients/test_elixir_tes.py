"""The ELIXIR TES web component (``@elixir-cloud/tes``'s task list) in headless chromium against ``ktes serve``.

A user opens the component's list of runs and expands one: the component fetches the FULL view and renders
every field it knows, calling ``.map`` on the arrays (``inputs``, ``outputs``, ``volumes``, ``logs``...). A task
without inputs must expand without a script error.

With OIDC on, a signed-in user (the token from a real OpenID provider over HTTP) creates a task with the
component's form and sees it, and not another user's, in its list. The components (1.0.1) take no token, so the
portal page adds it to their calls to the TES server (see docs/clients.md).

The page is served by a small HTTP server of the test on another port of this machine (another origin, as a
portal embedding the component would be; Chromium lets only a page on this machine call a loopback server at
all), so the component talks to ktes cross-origin, through ktes's CORS.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import ConsoleMessage, Page, Route, expect

from tests.fixtures.browser import page_errors, screenshot
from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.fixtures.oidc import OidcProvider
from tests.integration.clients.elixir_bundle import elixir_tes_bundle

pytestmark = [pytest.mark.browser, pytest.mark.containers]

ACTIVE = {"QUEUED", "INITIALIZING", "RUNNING"}
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>ELIXIR TES</title>
<script type="module" src="/bundle.js"></script></head>
<body><script type="module">
const runs = document.createElement("ecc-client-ga4gh-tes-runs");
runs.baseURL = "%(tes)s";
document.body.append(runs);
</script></body></html>"""


async def _local_only(route: Route) -> None:
    if route.request.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        await route.continue_()
    else:  # icons from a CDN and the like: nothing leaves this machine
        await route.abort()


@pytest.fixture(scope="module")
def bundle() -> bytes:
    return elixir_tes_bundle().read_bytes()


def serve_portal(files: dict[str, tuple[bytes, str]]) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 serving ``files`` (path -> body, content type) in a thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path)
            if found is None:
                self.send_error(404)
                return
            body, content_type = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest_asyncio.fixture(loop_scope="session")
async def elixir_page(
    page: Page, bundle: bytes, ktes_server: StartServer
) -> AsyncIterator[tuple[Page, KtesServer, str, list[str]]]:
    server = ktes_server(env={"KTES_LOCAL_PULL": "never"})
    html = (PAGE % {"tes": server.tes_url}).encode()
    portal = serve_portal({"/": (html, "text/html"), "/bundle.js": (bundle, "text/javascript")})
    console_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", on_console)
    await page.route("**/*", _local_only)
    yield page, server, f"http://127.0.0.1:{portal.server_address[1]}/", console_errors
    portal.shutdown()
    portal.server_close()


async def test_expanding_a_task_without_inputs_does_not_throw(
    elixir_page: tuple[Page, KtesServer, str, list[str]], busybox_image: str
) -> None:
    page, server, portal, console_errors = elixir_page
    task = {"name": "elixir-no-inputs", "executors": [{"image": busybox_image, "command": ["echo", "hello"]}]}
    async with httpx.AsyncClient(timeout=10) as client:
        task_id = (await client.post(server.tes_url + "/tasks", json=task)).json()["id"]
        deadline = time.monotonic() + 60
        while (state := (await client.get(f"{server.tes_url}/tasks/{task_id}")).json()["state"]) in ACTIVE:
            assert time.monotonic() < deadline, f"task {task_id} still {state}"
            await asyncio.sleep(0.1)
    assert state == "COMPLETE"

    await page.goto(portal)
    item = page.locator(f'sl-details[name="{task_id}"]')
    await expect(item).to_be_visible(timeout=30_000)
    async with page.expect_response(lambda r: r.url.endswith(f"/tasks/{task_id}?view=FULL")) as answered:
        await item.locator(".title").click()
    assert (await answered.value).status == 200
    details = page.locator(f'ecc-utils-design-details[id="{task_id}"]')
    await expect(details).to_be_attached(timeout=10_000)
    try:  # the details show their tabs, and the user opens the (empty) inputs and outputs
        for tab in ("Inputs", "Output", "Logs", "Overview"):
            await details.get_by_role("tab", name=tab).click(timeout=10_000)
        await expect(details.get_by_text("elixir-no-inputs").first).to_be_visible()
    finally:
        await screenshot(page, "elixir-tes-expanded")
        errors = page_errors(page) + [text for text in console_errors if "map" in text or "undefined" in text]
        assert errors == [], f"the ELIXIR component failed on a ktes task: {errors}"


TOKEN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>ELIXIR TES, signed in</title>
<script>
// The portal signed its user in and holds their token (window.portalToken). The components of
// @elixir-cloud/tes 1.0.1 take no token: they call fetch() on their baseURL with no headers. So the portal adds
// the user's token to their calls to the TES server, and only to those.
(() => {
  const tes = "%(tes)s";
  const plainFetch = window.fetch.bind(window);
  window.fetch = (input, init = {}) => {
    const url = typeof input === "string" ? input : input.url;
    if (url.startsWith(tes + "/") && window.portalToken) {
      const headers = new Headers(init.headers || {});
      headers.set("Authorization", "Bearer " + window.portalToken);
      init = { ...init, headers };
    }
    return plainFetch(input, init);
  };
})();
</script>
<script type="module" src="/bundle.js"></script></head>
<body><main id="portal"></main><script type="module">
const create = location.pathname === "/create";
const element = document.createElement(create ? "ecc-client-ga4gh-tes-create-run" : "ecc-client-ga4gh-tes-runs");
element.baseURL = "%(tes)s";
document.getElementById("portal").append(element);
</script></body></html>"""


async def test_the_component_lists_and_creates_the_signed_in_users_tasks(
    page: Page,
    bundle: bytes,
    ktes_server: StartServer,
    oidc_provider: OidcProvider,
    busybox_image: str,
) -> None:
    """ktes with OIDC on; the user's token comes from the OpenID provider over HTTP (as the portal's sign-in
    would get it); the component creates a task with it and lists that user's tasks, not another user's."""
    files: dict[str, tuple[bytes, str]] = {"/bundle.js": (bundle, "text/javascript")}
    portal = serve_portal(files)
    origin = f"http://127.0.0.1:{portal.server_address[1]}"
    env = {
        "KTES_LOCAL_PULL": "never",
        "KTES_AUTH": "oidc",
        "KTES_OIDC_ISSUER": oidc_provider.issuer,
        "KTES_OIDC_AUDIENCE": "ktes",
        "KTES_CORS_WRITE_ORIGINS": json.dumps([origin]),  # the portal may create tasks
    }
    server = ktes_server(env=env)
    files["/"] = files["/create"] = ((TOKEN_PAGE % {"tes": server.tes_url}).encode(), "text/html")
    alice, bob = oidc_provider.token("alice"), oidc_provider.token("bob")
    try:
        async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {bob}"}) as client:
            bobs = (
                await client.post(
                    server.tes_url + "/tasks",
                    json={"name": "bobs", "executors": [{"image": busybox_image, "command": ["true"]}]},
                )
            ).json()["id"]
        await page.add_init_script(f"window.portalToken = {json.dumps(alice)};")
        await page.route("**/*", _local_only)

        # Alice creates a task with the component's form.
        name = f"elixir-{uuid.uuid4().hex[:8]}"
        await page.goto(origin + "/create")
        form = page.locator("ecc-client-ga4gh-tes-create-run")
        await form.locator("sl-input", has_text=re.compile(r"^\s*Name\s*$")).locator("input").fill(name)
        await form.get_by_text("Executors", exact=True).click()
        await form.locator("sl-input", has_text=re.compile(r"^\s*Command\s*$")).locator("input").fill("true")
        await form.locator("sl-input", has_text=re.compile(r"^\s*Image\s*\*?\s*$")).locator("input").fill(busybox_image)
        async with page.expect_response(
            lambda r: r.url == server.tes_url + "/tasks" and r.request.method == "POST"
        ) as posted:
            await form.locator("sl-button", has_text="Submit").click()
        created = await posted.value
        assert created.status == 200, await created.text()
        alices = (await created.json())["id"]
        await screenshot(page, "elixir-tes-created-with-token")

        async with httpx.AsyncClient(timeout=10) as client:
            mine = await client.get(
                f"{server.tes_url}/tasks/{alices}",
                params={"view": "BASIC"},
                headers={"Authorization": f"Bearer {alice}"},
            )
            assert mine.status_code == 200 and mine.json()["name"] == name
            theirs = await client.get(f"{server.tes_url}/tasks/{alices}", headers={"Authorization": f"Bearer {bob}"})
            assert theirs.status_code == 404

        # The list shows Alice's task and not Bob's.
        await page.goto(origin + "/")
        await expect(page.locator(f'sl-details[name="{alices}"]')).to_be_visible(timeout=30_000)
        await expect(page.locator(f'sl-details[name="{bobs}"]')).to_have_count(0)
        await screenshot(page, "elixir-tes-list-with-token")
        assert page_errors(page) == []
    finally:
        portal.shutdown()
        portal.server_close()
