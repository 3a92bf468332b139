"""A thin synchronous TES 1.1 client, for the ``ktes`` command line and for scripts.

No typer and no rich here, so anything may import it. Every failure becomes one exception from the tree
below (rooted in :class:`ktes.errors.KtesError`) whose message is a sentence for users; httpx exceptions
are translated in one place, :meth:`TesClient._request`.

    with TesClient("http://127.0.0.1:8000") as tes:
        task_id = tes.create({"executors": [{"image": "busybox", "command": ["echo", "hi"]}]})
        task = tes.wait(task_id)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn

import httpx

from ktes.errors import KtesError, TaskNotFound
from ktes.tes.models import State, Task, View, dump
from ktes.tes.states import TERMINAL

DEFAULT_SERVER = "http://127.0.0.1:8000"
API_PATH = "/ga4gh/tes/v1"
#: ktes's own extension (live executor output, the dashboard's summary).
KTES_PATH = "/ktes/v1"
SERVER_ENV = "KTES_SERVER"

#: Seconds between polls while waiting: quick at first (short tasks end fast), then every ``poll_interval``.
_FIRST_POLLS = (0.02, 0.05, 0.1, 0.2)

Document = dict[str, Any]


class ClientError(KtesError):
    """A request to the TES server failed. The message says why, for a user."""


class ServerUnreachable(ClientError):
    """Nothing answers at the server's address."""


class RequestRejected(ClientError):
    """The server answered with an error status (400, 401, 403, 404, 413, ...)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class WaitTimeout(ClientError):
    """The task did not reach a terminal state in time."""

    def __init__(self, task_id: str, state: State, seconds: float) -> None:
        super().__init__(f"task {task_id} is still {state.value} after {seconds:g} s")
        self.task_id = task_id
        self.state = state


@dataclass(frozen=True)
class Page:
    tasks: list[Document]
    next_page_token: str | None


def server_url(server: str | None = None) -> str:
    """The server's base URL: ``server``, else ``$KTES_SERVER``, else the local default; no trailing slash."""
    url = (server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if url.endswith(API_PATH):
        url = url[: -len(API_PATH)]
    return url


def state_of(task: Mapping[str, Any]) -> State:
    """The state in a task document (``UNKNOWN`` when missing or not a TES state)."""
    try:
        return State(task.get("state") or State.UNKNOWN)
    except ValueError:
        return State.UNKNOWN


def tag_params(tags: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """``tag_key``/``tag_value`` query parameters. TES zips the two lists, and a key without a value means
    "has the key", so keys with values come first and the bare keys last."""
    with_value = [(k, v) for k, v in tags.items() if v is not None]
    bare = [k for k, v in tags.items() if v is None]
    params = [("tag_key", k) for k, _ in with_value] + [("tag_key", k) for k in bare]
    params += [("tag_value", v) for _, v in with_value]
    return params


class TesClient:
    """A TES server at ``server`` (e.g. ``http://127.0.0.1:8000``; the ``/ga4gh/tes/v1`` prefix is added)."""

    def __init__(
        self,
        server: str | None = None,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
    ) -> None:
        """``token`` is sent as ``Authorization: Bearer``; ``basic`` is a (user, password) pair for HTTP basic."""
        self.server = server_url(server)
        self._timeout = timeout
        extra = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.server + API_PATH,
            timeout=timeout,
            headers={"Accept": "application/json", **extra, **(headers or {})},
            transport=transport,
            auth=httpx.BasicAuth(*basic) if basic is not None else None,
        )

    def __enter__(self) -> TesClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- the five TES operations ----------------------------------------------------------------------

    def service_info(self) -> Document:
        return self._json(self._request("GET", "/service-info"))

    def create(self, task: Mapping[str, Any] | Task) -> str:
        """Submit a task (a TES task document or model); return its id."""
        body = dump(task) if isinstance(task, Task) else dict(task)
        answer = self._json(self._request("POST", "/tasks", json=body))
        task_id = answer.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ClientError(f"the server at {self.server} accepted the task but returned no id: {answer}")
        return task_id

    def get(self, task_id: str, view: View = View.MINIMAL) -> Document:
        """The task document shaped by ``view``. Raises :class:`TaskNotFound`."""
        return self._json(self._request("GET", f"/tasks/{task_id}", params={"view": view.value}, task_id=task_id))

    def list_page(
        self,
        *,
        state: State | None = None,
        name_prefix: str | None = None,
        tags: Mapping[str, str | None] | None = None,
        view: View = View.MINIMAL,
        page_size: int | None = None,
        page_token: str | None = None,
        owner: str | None = None,
    ) -> Page:
        """One page of tasks, newest first. ``tags`` maps a key to a value, or to ``None`` for "has the key".
        ``owner`` (a ktes extension, for admins) lists only that user's tasks."""
        params: list[tuple[str, str]] = [("view", view.value)]
        if owner is not None:
            params.append(("owner", owner))
        if state is not None:
            params.append(("state", state.value))
        if name_prefix is not None:
            params.append(("name_prefix", name_prefix))
        params += tag_params(tags or {})
        if page_size is not None:
            params.append(("page_size", str(page_size)))
        if page_token:
            params.append(("page_token", page_token))
        answer = self._json(self._request("GET", "/tasks", params=params))
        tasks = answer.get("tasks") or []
        return Page(tasks=list(tasks), next_page_token=answer.get("next_page_token") or None)

    def iter_tasks(
        self,
        *,
        state: State | None = None,
        name_prefix: str | None = None,
        tags: Mapping[str, str | None] | None = None,
        view: View = View.MINIMAL,
        page_size: int | None = None,
        owner: str | None = None,
    ) -> Iterator[Document]:
        """Every matching task, newest first, following ``next_page_token`` page after page. A ``page_size``
        the server refuses (above its maximum) falls back to the server's default."""
        token: str | None = None
        while True:
            try:
                page = self.list_page(
                    state=state,
                    name_prefix=name_prefix,
                    tags=tags,
                    view=view,
                    page_size=page_size,
                    page_token=token,
                    owner=owner,
                )
            except RequestRejected as exc:
                if exc.field != "page_size" or page_size is None:
                    raise
                page_size = None  # larger than this server allows: take its own page size
                continue
            yield from page.tasks
            if not page.next_page_token or not page.tasks:
                return
            token = page.next_page_token

    def cancel(self, task_id: str) -> None:
        """Ask the server to cancel the task (a terminal task is left as it is). Raises TaskNotFound."""
        self._request("POST", f"/tasks/{task_id}:cancel", task_id=task_id)

    # --- conveniences ----------------------------------------------------------------------------------

    def wait(
        self,
        task_id: str,
        *,
        view: View = View.FULL,
        on_state: Callable[[State], None] | None = None,
        timeout: float | None = None,
        poll_interval: float = 0.5,
    ) -> Document:
        """Poll until the task is in a terminal state; return it shaped by ``view``.

        ``on_state`` is called with the first state seen and with every change after it. Raises
        :class:`WaitTimeout` after ``timeout`` seconds, :class:`TaskNotFound` for an unknown id."""
        started = time.monotonic()
        seen: State | None = None
        polls = 0
        while True:
            state = state_of(self.get(task_id, View.MINIMAL))
            if state != seen:
                seen = state
                if on_state is not None:
                    on_state(state)
            if state in TERMINAL:
                return self.get(task_id, view)
            delay = _FIRST_POLLS[polls] if polls < len(_FIRST_POLLS) else poll_interval
            polls += 1
            if timeout is not None:
                left = timeout - (time.monotonic() - started)
                if left <= 0:
                    raise WaitTimeout(task_id, state, timeout)
                delay = min(delay, left)
            time.sleep(delay)

    # --- ktes's own extension ------------------------------------------------------------------------

    def executor_output(
        self, task_id: str, index: int, stream: str = "stdout", *, offset: int = 0, follow: bool = False
    ) -> Iterator[bytes]:
        """Executor ``index``'s ``stream`` bytes from ``offset`` (``GET /ktes/v1/tasks/{id}/logs``); with
        ``follow``, as they are written until the executor has ended. A ktes server only."""
        params: dict[str, str | int] = {"executor": index, "stream": stream, "offset": offset}
        if follow:
            params["follow"] = "true"
        url = f"{self.server}{KTES_PATH}/tasks/{task_id}/logs"
        timeout = httpx.Timeout(self._timeout, read=None) if follow else self._timeout
        try:
            with self._http.stream("GET", url, params=params, timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    self._raise_for(response, task_id)
                yield from response.iter_raw()
        except httpx.ConnectError as exc:
            raise ServerUnreachable(f"no ktes server at {self.server} (start one with `ktes serve`)") from exc
        except httpx.TimeoutException as exc:
            raise ClientError(f"the server at {self.server} did not answer within {self._timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise ClientError(f"reading executor output from {self.server} failed: {exc}") from exc

    # --- the one place httpx is translated -------------------------------------------------------------

    def _request(self, method: str, path: str, *, task_id: str | None = None, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ServerUnreachable(f"no ktes server at {self.server} (start one with `ktes serve`)") from exc
        except httpx.TimeoutException as exc:
            raise ClientError(f"the server at {self.server} did not answer within {self._timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise ClientError(f"talking to the server at {self.server} failed: {exc}") from exc
        if response.is_success:
            return response
        self._raise_for(response, task_id)

    def _raise_for(self, response: httpx.Response, task_id: str | None) -> NoReturn:
        message = _error_message(response)
        if response.status_code == 404:
            if task_id is not None:
                raise TaskNotFound(task_id)
            raise RequestRejected(404, f"{response.url} not found: is {self.server} a TES server?")
        if response.status_code in (401, 403):
            raise RequestRejected(response.status_code, f"the server refused the request ({message})")
        if response.status_code >= 500:
            raise ClientError(f"the server at {self.server} failed ({response.status_code}): {message}")
        raise RequestRejected(response.status_code, message, _error_field(response))

    def _json(self, response: httpx.Response) -> Document:
        try:
            body = response.json()
        except ValueError as exc:
            raise ClientError(f"the server at {self.server} did not answer with JSON ({response.url})") from exc
        if not isinstance(body, dict):
            raise ClientError(f"the server at {self.server} answered {response.url} with a JSON {type(body).__name__}")
        return body


def _error_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_field(response: httpx.Response) -> str | None:
    body = _error_body(response)
    field = body.get("field") if isinstance(body, dict) else None
    return field if isinstance(field, str) and field else None


def _error_message(response: httpx.Response) -> str:
    """The server's own words: ktes sends ``{"msg", "field"}``; FastAPI ``{"detail"}``; others plain text."""
    body = _error_body(response)
    if isinstance(body, dict):
        msg = body.get("msg") or body.get("message") or body.get("detail")
        field = body.get("field")
        if isinstance(msg, list):  # FastAPI's validation errors
            msg = "; ".join(
                ".".join(str(p) for p in item.get("loc", ())) + ": " + str(item.get("msg", ""))
                for item in msg
                if isinstance(item, dict)
            )
        if msg:
            text = str(msg)
            if isinstance(field, str) and field and field not in text:
                text = f"{field}: {text}"
            return text
    text = response.text.strip()
    reason = response.reason_phrase or "error"
    return f"{response.status_code} {reason}" + (f": {text[:500]}" if text else "")
