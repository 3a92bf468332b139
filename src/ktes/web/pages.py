"""The dashboard's routes: ``/`` (a browser is sent to ``/ui/``), the three pages, the sign-in's callback page
and routes (:mod:`ktes.web.signin`), and their assets.

Each page is a server-rendered shell (layout + page body, no task data), and ``assets/app.js`` fills it from
the API with the browser's own credentials (Basic: the browser's prompt; a bearer token from the OIDC sign-in
or pasted: kept in sessionStorage), so the pages keep no session of their own and show exactly what the API
allows. Assets are read from the package once; nothing is fetched from anywhere else (the
Content-Security-Policy says so too: the sign-in's trip to the provider is a navigation, not a fetch).
"""

from __future__ import annotations

import hashlib
import html
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ktes.tes.models import State
from ktes.web.signin import CALLBACK_PATH, CONFIG_PATH, TOKEN_PATH, SignIn

UI = "/ui"
_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
#: No inline script or style, nothing from another origin, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> str:
    return resources.files("ktes.web").joinpath("assets", name).read_text(encoding="utf-8")


def _state_options() -> str:
    states = [s.value for s in State if s is not State.UNKNOWN]
    return "".join(f'<option value="{s}">{s}</option>' for s in states)


class Pages:
    """The rendered shells and the assets, read once."""

    def __init__(self) -> None:
        self.assets: dict[str, tuple[bytes, str]] = {}
        for name in ("app.js", "style.css"):
            body = _asset(name).encode()
            self.assets[name] = (body, hashlib.sha256(body).hexdigest()[:12])
        self._layout = _asset("layout.html")
        self._bodies = {name: _asset(f"{name}.html") for name in ("list", "task", "service", "signin")}

    def render(self, page: str, title: str, task_id: str = "") -> bytes:
        body = self._bodies[page].replace("{state_options}", _state_options())
        text = (
            self._layout.replace("{body}", body)
            .replace("{page}", page)
            .replace("{title}", html.escape(title))
            .replace("{task_id}", html.escape(task_id, quote=True))
            .replace("{js_version}", self.assets["app.js"][1])
            .replace("{css_version}", self.assets["style.css"][1])
        )
        return text.encode()


def ui_routes(sign_in: SignIn) -> list[BaseRoute]:
    """The pages; ``sign_in`` serves the OIDC sign-in's config and code exchange (see :mod:`ktes.web.signin`)."""
    pages = Pages()
    rendered = {
        "list": pages.render("list", "Tasks"),
        "service": pages.render("service", "Service"),
        "signin": pages.render("signin", "Signing in"),
    }

    def page(body: bytes) -> Response:
        return Response(body, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    async def root(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(UI + "/", status_code=303)
        return Response(b'{"tes":"/ga4gh/tes/v1","ui":"/ui/"}', media_type="application/json")

    async def to_list(_request: Request) -> Response:
        return RedirectResponse(UI + "/", status_code=308)

    async def task_list(_request: Request) -> Response:
        return page(rendered["list"])

    async def service(_request: Request) -> Response:
        return page(rendered["service"])

    async def signin(_request: Request) -> Response:
        return page(rendered["signin"])

    async def task(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        return page(pages.render("task", f"Task {task_id}", task_id))

    async def asset(request: Request) -> Response:
        found = pages.assets.get(request.path_params["name"])
        if found is None:
            return Response(b"not found", status_code=404, media_type="text/plain")
        body, _version = found
        suffix = "." + request.path_params["name"].rsplit(".", 1)[-1]
        headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type=_ASSET_TYPES[suffix], headers=headers)

    return [
        Route("/", root, methods=["GET"], name="root"),
        Route(UI, to_list, methods=["GET"], name="ui"),
        Route(UI + "/", task_list, methods=["GET"], name="ui-tasks"),
        Route(UI + "/service", service, methods=["GET"], name="ui-service"),
        Route(CALLBACK_PATH, signin, methods=["GET"], name="ui-signin"),
        Route(CONFIG_PATH, sign_in.config, methods=["GET"], name="ui-signin-config"),
        Route(TOKEN_PATH, sign_in.token, methods=["POST"], name="ui-signin-token"),
        Route(UI + "/tasks/{task_id}", task, methods=["GET"], name="ui-task"),
        Route(UI + "/assets/{name}", asset, methods=["GET"], name="ui-asset"),
    ]
