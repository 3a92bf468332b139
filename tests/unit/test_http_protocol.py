"""The coalescing transport: a response's writes reach the socket as one write, nothing is lost or reordered."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from ktes.api.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


async def test_writes_in_one_loop_turn_are_sent_as_one() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert raw.writes == []
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
    await asyncio.sleep(0)  # the end of this loop turn
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"next"]


async def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert raw.writes == [b"last words"] and raw.closed
    await asyncio.sleep(0)
    assert raw.writes == [b"last words"]  # not sent twice

    raw = RecordingTransport()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"never")
    transport.abort()
    await asyncio.sleep(0)
    assert raw.writes == [] and raw.aborted


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    size = int(scope["query_string"] or b"2")
    body = b"x" * size
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(size).encode())]})
    for start in range(0, size, 1 << 20):  # a large body in parts, as a FULL page is sent
        await send({"type": "http.response.body", "body": body[start : start + (1 << 20)], "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("size", [2, 5 * (1 << 20) + 7])
async def test_uvicorn_serves_whole_responses_through_it(size: int) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections wait in the backlog until the server accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http=CoalescingHttpToolsProtocol, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(3):  # keep-alive: the same connection answers each in turn
                response = await client.get(f"http://127.0.0.1:{port}/?{size}")
                assert response.status_code == 200
                assert response.content == b"x" * size
    finally:
        server.should_exit = True
        await serving
