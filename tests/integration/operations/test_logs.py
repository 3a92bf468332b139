"""``KTES_LOG_FORMAT=json`` on a real server: every line is a JSON object, lines about a task carry its id,
and credentials given in a task's URLs and environment appear in no line (even at debug level)."""

from __future__ import annotations

import orjson
import pytest
import tes

from tests.fixtures.ktes_server import StartServer, free_local_port
from tests.integration.local.tes_calls import executor, run_task

pytestmark = pytest.mark.containers

SECRETS = ("pw-SECRET-1", "SIG-SECRET-2", "TOKEN-SECRET-3", "ENV-SECRET-4")


def test_json_log_names_tasks_and_keeps_credentials_out(ktes_server: StartServer, busybox_image: str) -> None:
    server = ktes_server(
        env={
            "KTES_LOG_FORMAT": "json",
            "KTES_LOG_LEVEL": "debug",
            "KTES_TRANSFER_RETRIES": "1",
            "KTES_TRANSFER_RETRY_BACKOFF_SECONDS": "0.05",
        }
    )
    client = tes.HTTPClient(server.url, timeout=30)
    closed = free_local_port()  # nothing listens there: the download fails and is retried, then reported
    url = f"http://alice:{SECRETS[0]}@127.0.0.1:{closed}/in.txt?X-Amz-Signature={SECRETS[1]}&token={SECRETS[2]}"
    failing = run_task(
        client,
        tes.Task(
            inputs=[tes.Input(url=url, path="/data/in.txt")],
            executors=[executor(busybox_image, "cat", "/data/in.txt", env={"API_KEY": SECRETS[3]})],
        ),
    )
    working = run_task(client, tes.Task(executors=[executor(busybox_image, "true", env={"API_KEY": SECRETS[3]})]))
    assert (failing.state, working.state) == ("SYSTEM_ERROR", "COMPLETE")
    server.stop()

    text = server.output()
    lines = [orjson.loads(line) for line in text.splitlines() if line.strip()]  # each line is one JSON object
    for secret in SECRETS:
        assert secret not in text
    for task in (failing, working):
        about = [line for line in lines if task.id in line["message"]]
        assert about, f"no line about {task.id}"
        assert all(line.get("task_id") == task.id for line in about)
    assert any(line.get("task_id") == failing.id and "127.0.0.1" in line["message"] for line in lines)
