"""A web page drives the browser against a real ``ktes serve`` on 127.0.0.1 (the requests a browser sends).

A page on another origin can send "simple" requests without asking (``text/plain`` or form POSTs, bodiless
POSTs), needs a preflight for anything else, and reaches ktes by a name of its own through DNS rebinding.
Also: slow and many connections do not stop ktes from serving others.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, start_server

TASK = {"executors": [{"image": "x", "command": ["true"]}]}
EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KtesServer]:
    running = start_server(tmp_path_factory.mktemp("ktes-web"), env={"KTES_ENGINE_ENABLED": "false"})
    try:
        yield running
    finally:
        running.stop()


def task_count(server: KtesServer) -> int:
    return len(httpx.get(f"{server.tes_url}/tasks").json()["tasks"])


def test_simple_cross_origin_posts_create_nothing(server: KtesServer) -> None:
    body = json.dumps(TASK)
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        response = httpx.post(
            f"{server.tes_url}/tasks", content=body, headers={"origin": EVIL, "content-type": content_type}
        )
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
        # The same without an Origin (an older browser, or a page that hides it): still refused.
        response = httpx.post(f"{server.tes_url}/tasks", content=body, headers={"content-type": content_type})
        assert response.status_code == 415
    assert task_count(server) == 0


def test_the_preflight_of_a_json_post_is_refused(server: KtesServer) -> None:
    response = httpx.options(
        f"{server.tes_url}/tasks",
        headers={
            "origin": EVIL,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_a_rebound_host_name_is_refused(server: KtesServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    for method in ("GET", "POST"):
        response = httpx.request(
            method,
            f"{server.tes_url}/tasks",
            json=TASK if method == "POST" else None,
            headers={"host": f"evil.example:{port}"},
        )
        assert response.status_code == 400
    assert task_count(server) == 0
    # Workflow engines on this machine are served as before.
    assert httpx.post(f"{server.tes_url}/tasks", json=TASK).status_code == 200


def test_slow_and_many_connections_do_not_block_others(server: KtesServer) -> None:
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])
    held: list[socket.socket] = []
    try:
        for _ in range(1000):  # the probe's count
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # headers never finished
            held.append(sock)
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{server.tes_url}/service-info", timeout=10).status_code == 200
    finally:
        for sock in held:
            sock.close()
    assert server.running()
