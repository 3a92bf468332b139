"""ktes's log lines: plain by default, JSON on request, the task id on lines about a task, no secrets."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from ktes.logs import TASK_ID, JsonFormatter, PlainFormatter, TaskAndSecrets


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(TaskAndSecrets())
    logger = logging.getLogger("ktes.test-logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield out, handler
    logger.removeHandler(handler)


def test_json_lines_carry_the_task_id_of_the_coroutine_they_come_from(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    out, handler = captured
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ktes.test-logs")

    async def about(task_id: str) -> None:
        TASK_ID.set(task_id)
        await asyncio.sleep(0)
        await asyncio.to_thread(logger.info, "staging %s", "input")

    async def both() -> None:
        await asyncio.gather(about("t1"), about("t2"))
        logger.info("not about a task")

    asyncio.run(both())
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line.get("task_id", "-") for line in lines) == ["-", "t1", "t2"]
    assert {line["message"] for line in lines} == {"staging input", "not about a task"}
    assert all(line["level"] == "info" and line["logger"] == "ktes.test-logs" and line["time"] for line in lines)


def test_no_url_secret_reaches_a_line_plain_or_json(captured: tuple[io.StringIO, logging.Handler]) -> None:
    out, handler = captured
    logger = logging.getLogger("ktes.test-logs")
    url = "https://bob:hunter2@data.example/x.bam?X-Amz-Signature=abc123&part=1"
    for formatter in (PlainFormatter("%(name)s: %(message)s"), JsonFormatter()):
        handler.setFormatter(formatter)
        logger.warning("download %s failed", url)
        try:
            raise OSError(f"cannot reach {url}")
        except OSError:
            logger.exception("upload failed")
    text = out.getvalue()
    assert "hunter2" not in text and "abc123" not in text
    assert text.count("https://data.example/x.bam?part=1") >= 4


def test_plain_lines_name_the_task(captured: tuple[io.StringIO, logging.Handler]) -> None:
    out, handler = captured
    handler.setFormatter(PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    token = TASK_ID.set("t0123")
    try:
        logging.getLogger("ktes.test-logs").info("ended COMPLETE")
    finally:
        TASK_ID.reset(token)
    assert out.getvalue() == "INFO ktes.test-logs: [task t0123] ended COMPLETE\n"


def test_a_line_naming_one_task_gets_its_id(captured: tuple[io.StringIO, logging.Handler]) -> None:
    out, handler = captured
    handler.setFormatter(JsonFormatter())
    task_id = "t01m8r3k4tbbp4mdpwef9sta1b9"
    logging.getLogger("ktes.test-logs").info('127.0.0.1 - "GET /ga4gh/tes/v1/tasks/%s HTTP/1.1" 200', task_id)
    assert orjson.loads(out.getvalue())["task_id"] == task_id
