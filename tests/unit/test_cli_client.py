"""The TES client library (``ktes.cli.client``): requests it sends and how server answers become errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ktes.cli.client import (
    ClientError,
    RequestRejected,
    ServerUnreachable,
    TesClient,
    server_url,
    tag_params,
)
from ktes.errors import TaskNotFound
from ktes.tes.models import Executor, State, Task, View

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> TesClient:
    return TesClient("http://tes.test", transport=httpx.MockTransport(handler))


def answer(status: int, body: Any = None, text: str | None = None) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return handle


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "http://127.0.0.1:8000"),
        ("http://h:9000/", "http://h:9000"),
        ("h:9000", "http://h:9000"),
        ("https://tes.example/ga4gh/tes/v1", "https://tes.example"),
        ("https://tes.example/prefix", "https://tes.example/prefix"),
    ],
)
def test_server_url(given: str | None, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTES_SERVER", raising=False)
    assert server_url(given) == expected


def test_server_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTES_SERVER", "http://elsewhere:1234")
    assert server_url() == "http://elsewhere:1234"
    assert server_url("http://given:1") == "http://given:1"


def test_tag_filters_put_bare_keys_last_so_the_zipped_lists_line_up() -> None:
    assert tag_params({"has": None, "a": "1", "b": ""}) == [
        ("tag_key", "a"),
        ("tag_key", "b"),
        ("tag_key", "has"),
        ("tag_value", "1"),
        ("tag_value", ""),
    ]


def test_create_sends_the_task_and_returns_the_id() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "t1"})

    with client(handle) as tes:
        assert tes.create(Task(executors=[Executor(image="i", command=["true"])])) == "t1"
    assert seen[0].method == "POST"
    assert str(seen[0].url) == "http://tes.test/ga4gh/tes/v1/tasks"
    assert seen[0].content == b'{"executors":[{"image":"i","command":["true"]}]}'


def test_list_follows_page_tokens_with_the_filters_on_every_page() -> None:
    pages = {None: (["a", "b"], "p2"), "p2": (["c"], None)}
    seen: list[httpx.URL] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        ids, token = pages[request.url.params.get("page_token")]
        body: dict[str, Any] = {"tasks": [{"id": i, "state": "QUEUED"} for i in ids]}
        if token:
            body["next_page_token"] = token
        return httpx.Response(200, json=body)

    with client(handle) as tes:
        tasks = list(tes.iter_tasks(state=State.QUEUED, name_prefix="x", tags={"k": "v"}, view=View.BASIC))
    assert [t["id"] for t in tasks] == ["a", "b", "c"]
    assert [u.params.get("page_token") for u in seen] == [None, "p2"]
    for url in seen:
        assert url.params.get("state") == "QUEUED"
        assert url.params.get("name_prefix") == "x"
        assert url.params.get("tag_key") == "k" and url.params.get("tag_value") == "v"
        assert url.params.get("view") == "BASIC"


def test_wait_reports_each_state_once_and_returns_the_requested_view() -> None:
    states = iter(["QUEUED", "QUEUED", "RUNNING", "RUNNING", "COMPLETE"])

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.params["view"] == "FULL":
            return httpx.Response(200, json={"id": "t", "state": "COMPLETE", "logs": []})
        return httpx.Response(200, json={"id": "t", "state": next(states)})

    seen: list[State] = []
    with client(handle) as tes:
        task = tes.wait("t", on_state=seen.append, poll_interval=0.01)
    assert seen == [State.QUEUED, State.RUNNING, State.COMPLETE]
    assert task == {"id": "t", "state": "COMPLETE", "logs": []}


@pytest.mark.parametrize(
    ("handler", "error", "message"),
    [
        (answer(400, {"msg": "must be absolute", "field": "inputs[0].path"}), RequestRejected,
         "inputs[0].path: must be absolute"),
        (answer(400, {"msg": "executors: empty", "field": "executors"}), RequestRejected, "executors: empty"),
        (answer(422, {"detail": [{"loc": ["body", "executors"], "msg": "Field required"}]}), RequestRejected,
         "body.executors: Field required"),
        (answer(413, text="too big"), RequestRejected, "413 Request Entity Too Large: too big"),
        (answer(401, {"msg": "credentials needed"}), RequestRejected,
         "the server refused the request (credentials needed)"),
        (answer(500, text="boom"), ClientError,
         "the server at http://tes.test failed (500): 500 Internal Server Error: boom"),
        (answer(200, text="<html>"), ClientError, "the server at http://tes.test did not answer with JSON"),
        (answer(404, {"detail": "Not Found"}), RequestRejected, "is http://tes.test a TES server?"),
    ],
)  # fmt: skip
def test_server_errors_become_one_line_messages(handler: Handler, error: type[Exception], message: str) -> None:
    with client(handler) as tes, pytest.raises(error) as caught:
        tes.service_info()
    assert type(caught.value) is error
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_400_keeps_the_field() -> None:
    with client(answer(400, {"msg": "bad", "field": "executors"})) as tes, pytest.raises(RequestRejected) as caught:
        tes.create({"executors": []})
    assert (caught.value.status, caught.value.field) == (400, "executors")


def test_404_for_a_task_is_task_not_found() -> None:
    with client(answer(404, {"msg": "task x not found"})) as tes:
        with pytest.raises(TaskNotFound, match="task 'x' not found"):
            tes.get("x")
        with pytest.raises(TaskNotFound):
            tes.cancel("x")


def test_connection_refused_names_the_server_and_the_fix() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with client(refuse) as tes, pytest.raises(ServerUnreachable) as caught:
        tes.get("x")
    assert str(caught.value) == "no ktes server at http://tes.test (start one with `ktes serve`)"


def test_a_timeout_says_so() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with client(slow) as tes, pytest.raises(ClientError, match="did not answer within 30 s"):
        tes.service_info()
