"""The dashboard's own API (``/ktes/v1``) and sign-in routes with auth on: a user reads only their own tasks'
output and counts; the sign-in routes are public, check what they are sent, and say when they are off."""

from __future__ import annotations

from pathlib import Path

import httpx

from ktes.api.app import create_app
from ktes.auth.users_file import add_user
from ktes.config import Settings
from ktes.store.sql import open_store
from ktes.tes.models import Executor, State, Task
from tests.unit.api_harness import CAPABILITIES
from tests.unit.test_api_dashboard import GrowingOutput

USERS = {"alice": "alice-pw", "bob": "bob-pw", "root": "root-pw"}


def settings(tmp_path: Path, **extra: object) -> Settings:
    users = tmp_path / "users"
    for name, password in USERS.items():
        add_user(users, name, password, rounds=4)
    return Settings(data_dir=tmp_path, auth="basic", auth_users_file=users, admins=["root"], **extra)  # type: ignore[arg-type]


async def test_another_users_executor_output_and_counts_are_not_shown(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ktes.db'}")
    backend = GrowingOutput()
    backend.write(b"alice's secret output\n")
    app = create_app(settings(tmp_path), store, CAPABILITIES, backend=backend)  # type: ignore[arg-type]
    alices = store.create(Task(executors=[Executor(image="a", command=["b"])], owner="alice"))
    store.create(Task(executors=[Executor(image="a", command=["b"])], owner="bob"))
    store.create(Task(executors=[Executor(image="a", command=["b"])], owner="bob"))
    unknown = "t01m8r46rnhcqp3se65xzpna5x4"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        theirs = await client.get(f"/ktes/v1/tasks/{alices}/logs", auth=("bob", USERS["bob"]))
        missing = await client.get(f"/ktes/v1/tasks/{unknown}/logs", auth=("bob", USERS["bob"]))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["msg"].replace(alices, "X") == missing.json()["msg"].replace(unknown, "X")
        assert "secret" not in theirs.text
        own = await client.get(f"/ktes/v1/tasks/{alices}/logs", auth=("alice", USERS["alice"]))
        assert own.status_code == 200 and own.text == "alice's secret output\n"
        admin = await client.get(f"/ktes/v1/tasks/{alices}/logs", auth=("root", USERS["root"]))
        assert admin.status_code == 200

        bobs_view = (await client.get("/ktes/v1/summary", auth=("bob", USERS["bob"]))).json()
        assert bobs_view["counts"][State.QUEUED.value] == 2 and bobs_view["total"] == 2
        alices_view = (await client.get("/ktes/v1/summary", auth=("alice", USERS["alice"]))).json()
        assert alices_view["counts"][State.QUEUED.value] == 1 and alices_view["total"] == 1
        everyone = (await client.get("/ktes/v1/summary", auth=("root", USERS["root"]))).json()
        assert everyone["total"] == 3
        assert bobs_view["queue_length"] == alices_view["queue_length"] == 3  # how busy the service is
    store.close()


async def test_the_sign_in_routes_are_public_and_off_without_a_client_id(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ktes.db'}")
    app = create_app(settings(tmp_path), store, CAPABILITIES)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        config = await client.get("/ui/signin/config")
        assert config.status_code == 200 and config.json() == {"oidc": None}
        page = await client.get("/ui/signin", params={"code": "c", "state": "s"})
        assert page.status_code == 200 and "connect-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"  # the code never leaves in a Referer
        exchange = await client.post("/ui/signin/token", json={})
        assert exchange.status_code == 404 and "not configured" in exchange.json()["msg"]
        # every other write still needs credentials
        assert (await client.post("/ui/signin/other", json={})).status_code == 401
    store.close()
