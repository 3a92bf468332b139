"""Live executor output on the Kubernetes backend: a running executor's stdout and stderr, apart, through the
API, through ``ktes task logs -f`` and on the dashboard's task page, while the executor still runs; the
follow ends when the executor ends (not when the task does), and what was followed is what the task's logs
keep.

Each executor prints a first line, then waits for a file the test makes inside its container (``kubectl
exec``) before it prints the rest: a line seen before the test makes the file can only have come live.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.fixtures.browser import page_errors, screenshot
from tests.fixtures.k8s import kubectl
from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.integration.k8s.test_k8s_backend import (  # noqa: F401 (fixtures)
    TERMINAL,
    client,
    k8s_env,
    namespace,
    wait_state,
)

pytestmark = pytest.mark.k8s

#: How long a line may take to show (a generous deadline on a shared 2-core machine, not a speed claim).
SHOWS_WITHIN = 120.0


#: test_k8s_backend's settings time failures to start out quickly; these tests are about output, on a lab
#: other tests may load heavily, so they keep the defaults' patience for a Pod to start.
PATIENT = {"KTES_K8S_IMAGE_PULL_TIMEOUT_SECONDS": "120", "KTES_K8S_UNSCHEDULABLE_TIMEOUT_SECONDS": "600"}


@pytest.fixture
def server(ktes_server: StartServer, k8s_env: dict[str, str]) -> KtesServer:  # noqa: F811
    return ktes_server(env={**k8s_env, **PATIENT})


def wait_for_go_then(first: str, rest: str, go: str = "/tmp/go") -> list[str]:
    return ["sh", "-c", f"{first}; while [ ! -e {go} ]; do sleep 0.1; done; {rest}"]


class Collected:
    """Bytes read from a source in a thread, as they arrive; a test waits for some to be there."""

    def __init__(self, chunks: Callable[[], Iterable[bytes]], explain: Callable[[], str] = str) -> None:
        """``explain`` says, when a wait fails, what the task was doing."""
        self.explain = explain
        self.data = b""
        self.ended = False
        self.error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(chunks,), daemon=True)
        self._thread.start()

    def _read(self, chunks: Callable[[], Iterable[bytes]]) -> None:
        try:
            for chunk in chunks():
                with self._changed:
                    self.data += chunk
                    self._changed.notify_all()
        except BaseException as exc:  # shown by the waits
            self.error = exc
        finally:
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def wait_for(self, wanted: bytes) -> bytes:
        """Everything read so far, once it holds ``wanted`` (fails if the source ends first)."""
        with self._changed:
            shown = self._changed.wait_for(lambda: wanted in self.data or self.ended, SHOWS_WITHIN)
            if shown and wanted in self.data:
                return self.data
        raise AssertionError(f"{wanted!r} not read (got {self.data!r}, error {self.error!r}); {self.explain()}")

    def wait_end(self) -> bytes:
        with self._changed:
            ended = self._changed.wait_for(lambda: self.ended, SHOWS_WITHIN * 2)
        assert ended, f"still open; got {self.data!r}; {self.explain()}"
        assert self.error is None, self.error
        return self.data


def task_story(base_url: str, task_id: str) -> Callable[[], str]:
    """The task's state and system logs, for a failed wait's message."""

    def story() -> str:
        task = httpx.get(f"{base_url}/ga4gh/tes/v1/tasks/{task_id}", params={"view": "FULL"}, timeout=30).json()
        return f"task {task_id} is {task.get('state')}: {[log.get('system_logs') for log in task.get('logs') or []]}"

    return story


def api_output(base_url: str, task_id: str, stream: str, index: int = 0) -> Callable[[], Iterator[bytes]]:
    """A follow of the executor's stream through ktes's live-logs API at ``base_url``."""

    def chunks() -> Iterator[bytes]:
        params = {"executor": index, "stream": stream, "follow": "true"}
        url = f"{base_url}/ktes/v1/tasks/{task_id}/logs"
        with httpx.stream("GET", url, params=params, timeout=httpx.Timeout(30, read=None)) as response:
            response.raise_for_status()
            yield from response.iter_raw()

    return chunks


def lines_of(pipe: IO[bytes]) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        yield from iter(lambda: pipe.readline(), b"")

    return chunks


def touch_in(where: str, task_id: str, container: str, path: str = "/tmp/go") -> None:
    pod = kubectl("get", "pods", "-n", where, "-l", f"ktes.task-id={task_id}", "-o", "name").split()[0]
    kubectl("exec", "-n", where, pod, "-c", container, "--", "touch", path)


def create(ktes: KtesServer, executors: list[dict[str, object]]) -> str:
    task_id: str = httpx.post(ktes.tes_url + "/tasks", json={"executors": executors}, timeout=30).json()["id"]
    return task_id


def test_a_running_executors_stdout_and_stderr_come_live_and_apart(
    server: KtesServer,
    namespace: str,  # noqa: F811
    k8s_env: dict[str, str],  # noqa: F811
    ktes_server: StartServer,
    k8s_busybox_image: str,
) -> None:
    # a second replica that serves only the API, on the same database (as behind a Service)
    shared = {"KTES_ENGINE_ENABLED": "false", "KTES_DATABASE_URL": f"sqlite:///{server.data_dir / 'ktes.db'}"}
    api_only = ktes_server(env={**k8s_env, **PATIENT, **shared})
    command = wait_for_go_then("echo one; echo warn >&2", "echo two; echo done >&2")
    task_id = create(server, [{"image": k8s_busybox_image, "command": command}])
    story = task_story(server.url, task_id)
    stdout = Collected(api_output(server.url, task_id, "stdout"), story)
    stdout_too = Collected(api_output(server.url, task_id, "stdout"), story)  # a second follower of the stream
    stderr = Collected(api_output(server.url, task_id, "stderr"), story)
    elsewhere = Collected(api_output(api_only.url, task_id, "stdout"), story)

    assert stdout.wait_for(b"one\n") == b"one\n"  # the executor waits for us: this came live
    assert stdout_too.wait_for(b"one\n") == b"one\n"
    assert stderr.wait_for(b"warn\n") == b"warn\n"
    assert elsewhere.wait_for(b"one\n") == b"one\n"

    touch_in(namespace, task_id, "executor-0")
    assert stdout.wait_end() == b"one\ntwo\n"
    assert stdout_too.wait_end() == b"one\ntwo\n"
    assert elsewhere.wait_end() == b"one\ntwo\n"
    assert stderr.wait_end() == b"warn\ndone\n"

    task = wait_state(client(server), task_id, lambda state: state in TERMINAL)
    assert task.state == "COMPLETE"
    stored = task.logs[-1].logs[0]
    assert (stored.stdout, stored.stderr) == ("one\ntwo\n", "warn\ndone\n")  # what was followed, exactly
    # once the task has ended, the stored tail is what a new reader gets, from any offset
    later = httpx.get(
        f"{server.url}/ktes/v1/tasks/{task_id}/logs", params={"stream": "stdout", "offset": 2}, timeout=30
    )
    assert later.content == b"e\ntwo\n"


def test_logs_follow_prints_lines_as_each_executor_prints_them(
    server: KtesServer,
    namespace: str,  # noqa: F811
    k8s_busybox_image: str,
) -> None:
    task_id = create(
        server,
        [
            {"image": k8s_busybox_image, "command": wait_for_go_then("echo one; echo warn >&2", "echo two")},
            {"image": k8s_busybox_image, "command": wait_for_go_then("echo three", "echo four")},
        ],
    )
    cli = subprocess.Popen(
        [sys.executable, "-c", "from ktes.cli.main import app; app()", "task", "logs", "-f", task_id],
        env={"KTES_SERVER": server.url, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert cli.stdout is not None and cli.stderr is not None
        story = task_story(server.url, task_id)
        printed = Collected(lines_of(cli.stdout), story)
        complained = Collected(lines_of(cli.stderr), story)
        assert printed.wait_for(b"one\n") == b"one\n"  # executor 0 is waiting for us
        assert b"warn\n" in complained.wait_for(b"warn\n")
        touch_in(namespace, task_id, "executor-0")
        # executor 0's follow ended with executor 0 (the task still runs), and executor 1 comes live
        assert printed.wait_for(b"three\n") == b"one\ntwo\nthree\n"
        touch_in(namespace, task_id, "executor-1")
        assert printed.wait_end() == b"one\ntwo\nthree\nfour\n"
        assert b"one" not in complained.wait_end()
        assert cli.wait(timeout=SHOWS_WITHIN) == 0
    finally:
        cli.kill()
        cli.wait()


@pytest.mark.browser
async def test_the_dashboard_shows_a_kubernetes_executors_output_as_it_is_printed(
    page: Page,
    server: KtesServer,
    namespace: str,  # noqa: F811
    k8s_busybox_image: str,
) -> None:
    command = wait_for_go_then("echo 'first line'; echo 'to stderr' >&2", "echo 'second line'")
    task_id = await asyncio.to_thread(create, server, [{"image": k8s_busybox_image, "command": command}])
    await page.goto(f"{server.url}/ui/tasks/{task_id}")
    stdout = page.get_by_role("log", name="Executor 0 stdout")
    stderr = page.get_by_role("log", name="Executor 0 stderr")
    await expect(stdout).to_contain_text("first line", timeout=SHOWS_WITHIN * 1000)  # the executor waits for us
    await expect(stderr).to_contain_text("to stderr")
    await expect(stdout).not_to_contain_text("to stderr")
    await screenshot(page, "k8s-task-running")

    await asyncio.to_thread(touch_in, namespace, task_id, "executor-0")
    await expect(page.locator("#task-state")).to_have_text("COMPLETE", timeout=SHOWS_WITHIN * 1000)
    await expect(stdout).to_have_class(re.compile(r"\bended\b"))
    await expect(stderr).to_have_class(re.compile(r"\bended\b"))
    # each line once: nothing doubled or lost where the live output met the end
    assert await stdout.text_content() == "first line\nsecond line\n"
    assert await stderr.text_content() == "to stderr\n"
    await screenshot(page, "k8s-task-complete")
    assert page_errors(page) == []
