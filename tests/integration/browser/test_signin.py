"""Signing in to the dashboard through a real OpenID provider (``oidc-provider-mock`` in its own process), in
headless chromium, against a real ``ktes serve`` with ``KTES_AUTH=oidc`` running podman.

The user clicks "Sign in", types their name on the provider's authorize page, and lands back on the dashboard
(authorization code + PKCE; the code is exchanged by ktes). Other users' tasks are not shown; a forged answer
(a ``state`` this tab did not make) is refused; an expired sign-in asks to sign in again; sign-out forgets the
token.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route, expect

from tests.fixtures.browser import page_errors, screenshot
from tests.fixtures.ktes_server import KtesServer, start_server
from tests.fixtures.oidc import OidcProvider
from tests.integration.browser.conftest import SERVER_ENV

pytestmark = [pytest.mark.browser, pytest.mark.containers]

CLIENT_ID = "ktes"


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider) -> Iterator[KtesServer]:
    env = {
        **SERVER_ENV,
        "KTES_AUTH": "oidc",
        "KTES_OIDC_ISSUER": oidc_provider.issuer,
        "KTES_OIDC_AUDIENCE": CLIENT_ID,
        "KTES_OIDC_CLIENT_ID": CLIENT_ID,
        "KTES_OIDC_CLIENT_SECRET": "dashboard-secret",  # the test provider wants a confidential client
    }
    server = start_server(tmp_path_factory.mktemp("ktes-signin"), env)
    yield server
    server.stop()


async def _local_only(route: Route) -> None:
    # The provider's pages link a style sheet on a CDN: nothing leaves this machine.
    if route.request.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        await route.continue_()
    else:
        await route.abort()


@pytest_asyncio.fixture(loop_scope="session")
async def signin_page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser context (its own sessionStorage), every URL it navigated to in ``page.visited``."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.route("**/*", _local_only)
    page = await context.new_page()
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url) if frame == page.main_frame else None)
    page.visited = visited  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page._ktes_page_errors = errors  # type: ignore[attr-defined]
    yield page
    await context.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def as_user(server: KtesServer, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=15, headers={"Authorization": f"Bearer {token}"}) as client:
        return await client.request(method, server.tes_url + path, **kwargs)


async def create_as(server: KtesServer, token: str, name: str, image: str) -> str:
    task = {"name": name, "executors": [{"image": image, "command": ["sleep", "600"]}]}
    response = await as_user(server, token, "POST", "/tasks", json=task)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def sign_in(page: Page, server: KtesServer, provider: OidcProvider, user: str, shot: str | None = None) -> None:
    """From the task list: Sign in, the provider's authorize page, back on the dashboard as ``user``."""
    await page.goto(server.url + "/ui/")
    start = page.get_by_role("button", name="Sign in", exact=True)
    await expect(start).to_be_visible(timeout=15_000)
    if shot:
        await screenshot(page, f"{shot}-signed-out")
    await start.click()
    await page.wait_for_url(provider.issuer + "/oauth2/authorize?**")
    assert "code_challenge_method=S256" in page.url and "nonce=" in page.url and "state=" in page.url
    await page.locator('input[name="sub"]').fill(user)
    if shot:
        await screenshot(page, f"{shot}-provider")
    await page.get_by_role("button", name="Authorize").click()
    await page.wait_for_url(server.url + "/ui/")
    await expect(page.locator("#signed-in")).to_have_text(f"Signed in as {user}", timeout=15_000)


async def test_a_user_signs_in_sees_only_their_tasks_creates_and_cancels_and_signs_out(
    browser: Browser,
    signin_page: Page,
    oidc_server: KtesServer,
    oidc_provider: OidcProvider,
    busybox_image: str,
) -> None:
    page, server = signin_page, oidc_server
    alice_token = oidc_provider.token("alice", client_id=CLIENT_ID)
    bob_token = oidc_provider.token("bob", client_id=CLIENT_ID)
    alices = await create_as(server, alice_token, unique("alice-task"), busybox_image)
    bobs = await create_as(server, bob_token, unique("bob-task"), busybox_image)
    created: list[tuple[str, str]] = [(alice_token, alices), (bob_token, bobs)]
    try:
        await sign_in(page, server, oidc_provider, "alice", shot="signin")
        await expect(page.locator(f'tr[data-id="{alices}"]')).to_be_visible(timeout=15_000)
        await expect(page.locator(f'tr[data-id="{bobs}"]')).to_have_count(0)
        await screenshot(page, "signin-signed-in-list")
        token = await page.evaluate("sessionStorage.getItem('ktes.token')")
        assert token, "the token is kept in sessionStorage"
        visited = page.visited  # type: ignore[attr-defined]
        assert not [url for url in visited if token in url], "the token was in a URL"
        with_code = [url for url in visited if url.startswith(server.url) and "code=" in url]
        assert len(with_code) == 1, with_code  # the provider's redirect itself; the page takes the code out at once
        # The history holds no URL with the code: one step back is the provider's authorize page.
        await page.go_back()
        assert page.url.startswith(oidc_provider.issuer + "/oauth2/authorize?") and "code=" not in page.url
        await page.go_forward()
        await expect(page.locator(f'tr[data-id="{alices}"]')).to_be_visible(timeout=15_000)
        assert "code=" not in page.url

        # Bob's task answers like an unknown one, in the page too.
        await page.goto(f"{server.url}/ui/tasks/{bobs}")
        await expect(page.locator("#status")).to_contain_text("not found", ignore_case=True, timeout=15_000)

        # Alice submits her task again from its page (a new task of hers), then cancels the new one.
        await page.goto(f"{server.url}/ui/tasks/{alices}")
        await expect(page.locator("#task-state")).to_contain_text("RUNNING", timeout=60_000)
        await page.get_by_role("button", name="Submit again").click()
        await page.wait_for_url(lambda url: "/ui/tasks/" in url and alices not in url)
        again = page.url.rsplit("/", 1)[-1]
        created.append((alice_token, again))
        assert (await as_user(server, alice_token, "GET", f"/tasks/{again}")).status_code == 200
        assert (await as_user(server, bob_token, "GET", f"/tasks/{again}")).status_code == 404
        await expect(page.get_by_role("button", name="Cancel task")).to_be_visible(timeout=60_000)
        await page.get_by_role("button", name="Cancel task").click()
        await page.locator("#confirm-cancel").get_by_role("button", name="Cancel task").click()
        await expect(page.locator("#task-state")).to_contain_text("CANCELED", timeout=60_000)
        await screenshot(page, "signin-canceled-as-alice")
        state = (await as_user(server, alice_token, "GET", f"/tasks/{again}")).json()["state"]
        assert state == "CANCELED"

        # Bob, in his own browser context, sees his task and none of Alice's.
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        await context.route("**/*", _local_only)
        try:
            bob_page = await context.new_page()
            await sign_in(bob_page, server, oidc_provider, "bob")
            await expect(bob_page.locator(f'tr[data-id="{bobs}"]')).to_be_visible(timeout=15_000)
            await expect(bob_page.locator(f'tr[data-id="{alices}"]')).to_have_count(0)
            await expect(bob_page.locator(f'tr[data-id="{again}"]')).to_have_count(0)
            await screenshot(bob_page, "signin-bob-list")
        finally:
            await context.close()

        # Sign out: the token is forgotten and the list asks to sign in again.
        await page.goto(server.url + "/ui/")
        await expect(page.locator(f'tr[data-id="{alices}"]')).to_be_visible(timeout=15_000)
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=15_000)
        assert await page.evaluate("sessionStorage.getItem('ktes.token')") is None
        await expect(page.locator("#tasks tbody tr")).to_have_count(0)
        await expect(page.locator("#signed-in")).to_be_hidden()
        await screenshot(page, "signin-signed-out-again")
        assert page_errors(page) == []
    finally:
        for owner_token, task_id in created:
            await as_user(server, owner_token, "POST", f"/tasks/{task_id}:cancel")


async def test_a_forged_state_is_refused(
    signin_page: Page, oidc_server: KtesServer, oidc_provider: OidcProvider
) -> None:
    """Login CSRF: Mallory gets a code for herself and makes the victim's browser open the callback with it."""
    page, server = signin_page, oidc_server
    callback = server.url + "/ui/signin"
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": callback,
        "response_type": "code",
        "scope": "openid",
        "state": "mallorys-state",
    }
    async with httpx.AsyncClient(base_url=oidc_provider.issuer, timeout=15) as client:
        answer = await client.post("/oauth2/authorize", params=params, data={"sub": "mallory"})
    assert answer.status_code == 302, answer.text
    forged = answer.headers["location"]
    assert forged.startswith(callback + "?") and "code=" in forged

    # The victim has started a sign-in of their own (their state is in this tab), then opens Mallory's link.
    await page.goto(server.url + "/ui/")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(oidc_provider.issuer + "/oauth2/authorize?**")
    exchanges: list[str] = []
    page.on("request", lambda request: exchanges.append(request.url) if "/ui/signin/token" in request.url else None)
    await page.goto(forged)
    await expect(page.locator("#signin-message")).to_contain_text("Sign-in refused", timeout=15_000)
    assert "code=" not in page.url, "the code stays in the address bar"
    assert exchanges == [], "a forged answer must not be exchanged"
    assert await page.evaluate("sessionStorage.getItem('ktes.token')") is None
    await screenshot(page, "signin-forged-state-refused")

    # Without any sign-in started in this tab, the same link is refused too.
    await page.goto(forged)
    await expect(page.locator("#signin-message")).to_contain_text("Sign-in refused", timeout=15_000)
    assert exchanges == []


async def test_an_expired_sign_in_asks_to_sign_in_again(
    signin_page: Page, oidc_server: KtesServer, oidc_provider: OidcProvider
) -> None:
    page, server = signin_page, oidc_server
    await sign_in(page, server, oidc_provider, "carol")
    await page.evaluate("sessionStorage.setItem('ktes.token.expires', String(Math.floor(Date.now() / 1000) - 1))")
    notice = page.get_by_role("alert").filter(has_text="expired")
    await expect(notice).to_contain_text("Your sign-in has expired. Sign in again.", timeout=15_000)
    await expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=15_000)
    assert await page.evaluate("sessionStorage.getItem('ktes.token')") is None
    await screenshot(page, "signin-expired")

    # A token the server refuses (here: one for another client) is dropped the same way.
    # (Set on the callback page, which calls no API: the list would use it up on its next poll before reloading.)
    other = oidc_provider.token("carol", client_id="another-client")
    await page.goto(server.url + "/ui/signin")
    await page.evaluate("token => sessionStorage.setItem('ktes.token', token)", other)
    await page.goto(server.url + "/ui/")
    await expect(page.locator("#signin-notice")).to_have_text(
        "Your sign-in has expired or was refused. Sign in again.", timeout=15_000
    )
    assert await page.evaluate("sessionStorage.getItem('ktes.token')") is None


async def test_the_code_exchange_checks_the_nonce_and_what_it_is_sent(
    oidc_server: KtesServer, oidc_provider: OidcProvider
) -> None:
    """Over HTTP, as an attacker would call it: the nonce must be the ID token's, a code works once."""
    server = oidc_server
    callback = server.url + "/ui/signin"

    async def code_for(user: str, nonce: str) -> str:
        params = {
            "client_id": CLIENT_ID,
            "redirect_uri": callback,
            "response_type": "code",
            "scope": "openid",
            "state": "s",
            "nonce": nonce,
        }
        async with httpx.AsyncClient(base_url=oidc_provider.issuer, timeout=15) as client:
            answer = await client.post("/oauth2/authorize", params=params, data={"sub": user})
        return str(httpx.URL(answer.headers["location"]).params["code"])

    verifier = "v" * 43
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:

        async def exchange(**fields: str) -> httpx.Response:
            body = {"code_verifier": verifier, "redirect_uri": callback, **fields}
            return await client.post("/ui/signin/token", json=body)

        wrong_nonce = await exchange(code=await code_for("dave", "nonce-1"), nonce="nonce-2")
        assert wrong_nonce.status_code == 401 and "nonce" in wrong_nonce.json()["msg"]
        code = await code_for("dave", "nonce-3")
        for field, fields in [
            ("code", {"nonce": "nonce-3"}),
            ("code_verifier", {"code": code, "nonce": "nonce-3", "code_verifier": "short"}),
            ("redirect_uri", {"code": code, "nonce": "nonce-3", "redirect_uri": "https://evil.example/cb"}),
        ]:
            refused = await exchange(**fields)
            assert refused.status_code == 400 and refused.json()["msg"].startswith(field), refused.text
        signed_in = await exchange(code=code, nonce="nonce-3")
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["user"] == "dave" and signed_in.headers["cache-control"] == "no-store"
        tasks = await client.get(
            "/ga4gh/tes/v1/tasks", headers={"Authorization": f"Bearer {signed_in.json()['token']}"}
        )
        assert tasks.status_code == 200
        again = await exchange(code=code, nonce="nonce-3")
        assert again.status_code == 401 and "refused the code" in again.json()["msg"]
