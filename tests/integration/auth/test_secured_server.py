"""A secured ``ktes serve`` (basic and OIDC at once, local backend, real containers) driven as users drive it:
the ``ktes`` command with ``--token``/``--user``, py-tes with a token and with basic credentials, and owners
taking turns at the engine (one user's backlog does not hold up another user's task)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tes

from ktes.auth.users_file import add_user
from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.fixtures.oidc import OidcProvider

pytestmark = pytest.mark.containers

PASSWORDS = {"bob": "bob-pw", "root": "root-pw"}


@pytest.fixture
def secured(ktes_server: StartServer, oidc_provider: OidcProvider, tmp_path: Path) -> KtesServer:
    users = tmp_path / "users"
    for name, password in PASSWORDS.items():
        add_user(users, name, password, rounds=4)
    env = {
        "KTES_AUTH": "basic,oidc",
        "KTES_AUTH_USERS_FILE": str(users),
        "KTES_OIDC_ISSUER": oidc_provider.issuer,
        "KTES_OIDC_AUDIENCE": "ktes",
        "KTES_ADMINS": '["root"]',
        "KTES_LOCAL_MAX_CPUS": "1",
    }
    return ktes_server(env=env)


def ktes(server: KtesServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {key: value for key, value in os.environ.items() if not key.startswith("KTES_")}
    full.update(KTES_SERVER=server.url, **env)
    argv = [sys.executable, "-c", "from ktes.cli.main import app; app()", *args]
    return subprocess.run(argv, env=full, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def task_file(tmp_path: Path, image: str, name: str, *command: str) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "executors": [{"image": image, "command": list(command)}]}))
    return str(path)


def test_the_ktes_command_with_a_token_and_with_basic_credentials(
    secured: KtesServer, oidc_provider: OidcProvider, busybox_image: str, tmp_path: Path
) -> None:
    token = oidc_provider.token("alice")
    created = ktes(secured, "task", "create", task_file(tmp_path, busybox_image, "alices", "true"), "--token", token)
    assert created.returncode == 0, created.stderr
    alices = created.stdout.strip()
    as_bob = {"KTES_USER": "bob", "KTES_PASSWORD": PASSWORDS["bob"]}
    created = ktes(secured, "task", "create", task_file(tmp_path, busybox_image, "bobs", "true"), "--wait", **as_bob)
    assert created.returncode == 0, created.stderr
    bobs = created.stdout.strip()

    listed = ktes(secured, "task", "list", "--json", **as_bob)
    assert [t["id"] for t in json.loads(listed.stdout)] == [bobs]
    theirs = ktes(secured, "task", "get", alices, "--user", "bob", KTES_PASSWORD=PASSWORDS["bob"])
    assert theirs.returncode == 1 and "not found" in theirs.stderr
    assert ktes(secured, "task", "cancel", alices, **as_bob).returncode == 1

    everyone = ktes(secured, "task", "list", "--all-users", KTES_USER="root", KTES_PASSWORD=PASSWORDS["root"])
    assert everyone.returncode == 0, everyone.stderr
    rows = {line.split()[0]: line.split()[2] for line in everyone.stdout.splitlines()[1:]}
    assert rows == {alices: "alice", bobs: "bob"}
    mine = ktes(secured, "task", "list", "--owner", "alice", "--json", KTES_TOKEN=token)
    assert [t["id"] for t in json.loads(mine.stdout)] == [alices]  # a user's own, whatever --owner says

    refused = ktes(secured, "task", "list")
    assert refused.returncode == 1 and "authentication failed: credentials required" in refused.stderr
    wrong = ktes(secured, "task", "list", "--token", token[:-4] + "AAAA")
    assert wrong.returncode == 1 and "token signature is invalid" in wrong.stderr


def test_py_tes_with_a_token_and_with_basic_credentials(
    secured: KtesServer, oidc_provider: OidcProvider, busybox_image: str
) -> None:
    with_token = tes.HTTPClient(secured.url, timeout=30, token=oidc_provider.token("alice"))
    with_basic = tes.HTTPClient(secured.url, timeout=30, user="bob", password=PASSWORDS["bob"])
    task = tes.Task(executors=[tes.Executor(image=busybox_image, command=["echo", "hi"])])
    alices = with_token.create_task(task)
    bobs = with_basic.create_task(task)
    done = with_token.wait(alices, timeout=120)
    assert done.state == "COMPLETE"
    assert with_token.get_task(alices, view="FULL").logs[0].logs[0].stdout == "hi\n"
    assert [t.id for t in with_token.list_tasks(view="MINIMAL").tasks] == [alices]
    assert [t.id for t in with_basic.list_tasks(view="MINIMAL").tasks] == [bobs]
    with pytest.raises(Exception, match="404"):
        with_basic.get_task(alices)
    with_basic.cancel_task(bobs)
    assert with_basic.wait(bobs, timeout=120).state in ("CANCELING", "CANCELED", "COMPLETE")
    with pytest.raises(Exception, match="401"):
        tes.HTTPClient(secured.url, timeout=30, user="bob", password="wrong").list_tasks()


def test_one_users_backlog_does_not_hold_up_anothers_task(
    secured: KtesServer, oidc_provider: OidcProvider, busybox_image: str
) -> None:
    """One CPU: alice queues 20 tasks, then bob submits 1; of alice's tasks still waiting when bob submitted,
    at most a couple start before bob's (the backend may have admitted a few of alice's before bob came)."""
    alice = tes.HTTPClient(secured.url, timeout=30, token=oidc_provider.token("alice"))
    bob = tes.HTTPClient(secured.url, timeout=30, user="bob", password=PASSWORDS["bob"])
    one_cpu = tes.Resources(cpu_cores=1)
    sleeper = tes.Task(executors=[tes.Executor(image=busybox_image, command=["sleep", "1"])], resources=one_cpu)
    alices = [alice.create_task(sleeper) for _ in range(20)]
    waiting = {t.id for t in alice.list_tasks(view="MINIMAL").tasks if t.state == "QUEUED"}
    assert len(waiting) >= 10, "the test needs a backlog"
    bobs = bob.create_task(sleeper)
    assert bob.wait(bobs, timeout=180).state == "COMPLETE"
    started = bob.get_task(bobs, view="BASIC").logs[0].start_time
    ahead = []
    for task_id in waiting:
        logs = alice.get_task(task_id, view="BASIC").logs
        if logs and logs[0].start_time and logs[0].start_time < started:
            ahead.append(task_id)
    assert len(ahead) <= 2, f"{len(ahead)} of alice's waiting tasks started before bob's"
    for task_id in alices:
        alice.cancel_task(task_id)
    deadline = time.monotonic() + 120
    while any(alice.get_task(t).state not in ("CANCELED", "COMPLETE") for t in alices):
        assert time.monotonic() < deadline
        time.sleep(0.2)
