"""The API with HTTP basic auth on (in process, real SQLite store): who may see, list and cancel what."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ktes.auth.authenticator import warn_if_open
from ktes.auth.users_file import add_user, read_users
from ktes.cli.main import app as cli
from ktes.config import Settings
from tests.fixtures.postgres import new_database
from tests.unit.api_harness import BASE, Api, running_api, task_doc

USERS = {"alice": "alice-pw", "bob": "bob-pw", "root": "root-pw"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """Both stores: ownership is enforced in SQL."""
    url = None if request.param == "sqlite" else new_database(request.getfixturevalue("postgres_url"))
    users = tmp_path / "users"
    for name, password in USERS.items():
        add_user(users, name, password, rounds=4)
    settings = {"auth": "basic", "auth_users_file": users, "admins": ["root"], "user_max_active_tasks": 3}
    async with running_api(tmp_path, url, **settings) as api:
        yield api


def as_(user: str) -> httpx.BasicAuth:
    return httpx.BasicAuth(user, USERS[user])


async def create(api: Api, user: str, **fields: Any) -> str:
    response = await api.client.post(f"{BASE}/tasks", json=task_doc(**fields), auth=as_(user))
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


async def listed(api: Api, user: str, **params: str) -> list[dict[str, Any]]:
    response = await api.client.get(f"{BASE}/tasks", params=params, auth=as_(user))
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


async def test_no_credentials_is_401_with_a_challenge(api: Api) -> None:
    for method, path in [("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/tasks/t1"), ("POST", "/tasks/t1:cancel")]:
        response = await api.client.request(method, BASE + path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Basic realm="ktes", charset="UTF-8"'
        assert response.json() == {"msg": "authentication failed: credentials required"}


async def test_wrong_password_unknown_user_and_other_schemes_are_401(api: Api) -> None:
    for auth in [httpx.BasicAuth("alice", "nope"), httpx.BasicAuth("mallory", "alice-pw")]:
        response = await api.client.get(f"{BASE}/tasks", auth=auth)
        assert response.status_code == 401
        assert response.json()["msg"] == "authentication failed: wrong user name or password"
    response = await api.client.get(f"{BASE}/tasks", headers={"Authorization": "Bearer abc"})
    assert response.status_code == 401 and "use Basic authentication" in response.json()["msg"]
    response = await api.client.get(f"{BASE}/tasks", headers={"Authorization": "Basic !!!"})
    assert response.status_code == 401 and "malformed" in response.json()["msg"]


async def test_service_info_and_health_stay_public_and_advertise_the_scheme(api: Api) -> None:
    info = await api.client.get(f"{BASE}/service-info")
    assert info.status_code == 200
    assert "securitySchemes" not in info.json()  # py-tes refuses any field it does not know
    assert "a user name and password" in info.json()["description"]
    security = await api.client.get("/ktes/v1/security")
    assert security.status_code == 200
    assert security.json()["security"] == [{"BasicAuth": []}]
    assert security.json()["components"]["securitySchemes"] == {
        "BasicAuth": {"type": "http", "scheme": "basic", "description": "A user name and password"}
    }
    assert (await api.client.get("/healthz")).status_code == 200
    preflight = await api.client.options(
        f"{BASE}/tasks", headers={"Origin": "https://x.test", "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 200


async def test_users_see_list_and_cancel_only_their_own_tasks(api: Api) -> None:
    alices = await create(api, "alice", name="a")
    bobs = await create(api, "bob", name="b")
    assert [t["id"] for t in await listed(api, "alice")] == [alices]
    assert [t["id"] for t in await listed(api, "bob", view="FULL")] == [bobs]
    # someone else's task answers exactly like a task that does not exist
    unknown = "t" + "0" * 26
    for view in ("MINIMAL", "BASIC", "FULL"):
        theirs = await api.client.get(f"{BASE}/tasks/{bobs}", params={"view": view}, auth=as_("alice"))
        missing = await api.client.get(f"{BASE}/tasks/{unknown}", params={"view": view}, auth=as_("alice"))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["msg"].replace(bobs, "X") == missing.json()["msg"].replace(unknown, "X")
    cancel = await api.client.post(f"{BASE}/tasks/{bobs}:cancel", auth=as_("alice"))
    assert cancel.status_code == 404
    assert api.store.get(bobs).state is not None and api.store.get(bobs).state.value == "QUEUED"
    # the owner filter is the admins': a user asking for another's tasks still gets only their own
    assert [t["id"] for t in await listed(api, "alice", owner="bob")] == [alices]
    own = await api.client.post(f"{BASE}/tasks/{alices}:cancel", auth=as_("alice"))
    assert own.status_code == 200 and api.store.get(alices).state.value == "CANCELED"  # type: ignore[union-attr]


async def test_admins_see_everyone_with_the_owner_and_filter_by_owner(api: Api) -> None:
    alices = await create(api, "alice", tags={"k": "v"})
    bobs = await create(api, "bob")
    before_auth = api.store.create(api.store.get(alices).model_copy(update={"owner": None, "tags": None}))
    everyone = await listed(api, "root", view="BASIC")
    assert [t["id"] for t in everyone] == [before_auth, bobs, alices]
    assert [t.get("tags") or {} for t in everyone] == [{}, {"ktes.owner": "bob"}, {"k": "v", "ktes.owner": "alice"}]
    assert [t["id"] for t in await listed(api, "root", owner="bob")] == [bobs]
    got = await api.client.get(f"{BASE}/tasks/{alices}", params={"view": "FULL"}, auth=as_("root"))
    assert got.json()["tags"] == {"k": "v", "ktes.owner": "alice"}
    # the owner is not stored in the task: its owner sees their own tags
    mine = await api.client.get(f"{BASE}/tasks/{alices}", params={"view": "FULL"}, auth=as_("alice"))
    assert mine.json()["tags"] == {"k": "v"}
    assert (await api.client.post(f"{BASE}/tasks/{bobs}:cancel", auth=as_("root"))).status_code == 200
    # tasks stored before auth was on belong to no one: users do not see them
    assert before_auth not in [t["id"] for t in await listed(api, "alice")]


async def test_the_owner_comes_from_the_credentials_never_the_request(api: Api) -> None:
    task_id = await create(api, "alice", owner="bob")
    assert api.store.get(task_id).owner == "alice"
    response = await api.client.post(f"{BASE}/tasks", json=task_doc(tags={"ktes.owner": "bob"}), auth=as_("alice"))
    assert response.status_code == 400 and response.json()["field"] == "tags.ktes.owner"


async def test_over_the_per_user_limit_is_429_with_retry_after(api: Api) -> None:
    for _ in range(3):
        await create(api, "alice")
    response = await api.client.post(f"{BASE}/tasks", json=task_doc(), auth=as_("alice"))
    assert response.status_code == 429 and response.headers["retry-after"] == "30"
    assert "3 tasks" in response.json()["msg"]
    await create(api, "bob")  # the limit is per user


async def test_concurrent_creates_never_pass_the_per_user_limit(api: Api) -> None:
    # 20 creates at once (the API's worker threads, one database): the check and the insert are one step, so
    # exactly the limit (3) is accepted, however the requests interleave.
    async def attempt() -> httpx.Response:
        return await api.client.post(f"{BASE}/tasks", json=task_doc(), auth=as_("alice"))

    await create(api, "alice")  # credentials verified (and remembered) first, so all 20 reach the store together
    responses = await asyncio.gather(*(attempt() for _ in range(20)))
    codes = sorted(response.status_code for response in responses)
    assert codes == [200] * 2 + [429] * 18  # 1 before + 2 = the limit
    assert all(r.headers["retry-after"] == "30" for r in responses if r.status_code == 429)
    assert api.store.count_active("alice") == 3


async def test_file_urls_are_refused_unless_mapped_per_user(api: Api, tmp_path: Path) -> None:
    response = await api.client.post(
        f"{BASE}/tasks", json=task_doc(inputs=[{"url": "file:///etc/passwd", "path": "/in"}]), auth=as_("alice")
    )
    assert response.status_code == 400 and response.json()["field"] == "inputs[0].url"
    assert "not allowed" in response.json()["msg"]


async def test_file_urls_under_the_users_own_root_are_allowed(tmp_path: Path) -> None:
    users = tmp_path / "users"
    add_user(users, "alice", "pw", rounds=4)
    (tmp_path / "home" / "alice").mkdir(parents=True)
    (tmp_path / "home" / "bob").mkdir(parents=True)
    (tmp_path / "home" / "alice" / "sneaky").symlink_to(tmp_path / "home" / "bob")
    roots = [str(tmp_path / "home" / "{user}")]
    async with running_api(tmp_path, auth="basic", auth_users_file=users, file_user_roots=roots) as api:
        auth = httpx.BasicAuth("alice", "pw")

        async def submit(url: str) -> httpx.Response:
            doc = task_doc(outputs=[{"url": url, "path": "/out"}])
            return await api.client.post(f"{BASE}/tasks", json=doc, auth=auth)

        assert (await submit(f"file://{tmp_path}/home/alice/result.txt")).status_code == 200
        for elsewhere in ["home/bob/x", "home/alice/../bob/x", "home/alice/sneaky/x"]:
            refused = await submit(f"file://{tmp_path}/{elsewhere}")
            assert refused.status_code == 400 and "outside your directories" in refused.json()["msg"], elsewhere


def test_users_command_adds_lists_and_removes(tmp_path: Path) -> None:
    runner = CliRunner()
    users = tmp_path / "users"
    env = {"KTES_AUTH_USERS_FILE": str(users)}
    added = runner.invoke(
        cli, ["users", "add", "carol", "--password-stdin", "--rounds", "4"], input="s3cret\n", env=env
    )
    assert added.exit_code == 0, added.output
    assert "s3cret" not in users.read_text() and read_users(users)["carol"].startswith(b"$2b$04$")
    assert users.stat().st_mode & 0o777 == 0o600
    assert runner.invoke(cli, ["users", "list"], env=env).output == "carol\n"
    bad = runner.invoke(cli, ["users", "add", "no:colons", "--password-stdin"], input="x\n", env=env)
    assert bad.exit_code == 1 and "not a valid user name" in bad.output
    assert runner.invoke(cli, ["users", "remove", "carol"], env=env).exit_code == 0
    assert runner.invoke(cli, ["users", "remove", "carol"], env=env).exit_code == 1
    assert runner.invoke(cli, ["users", "list"], env=env).output == ""


def test_no_auth_on_a_public_address_warns_loudly(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level(logging.WARNING):
        warn_if_open(Settings(data_dir=tmp_path, host="127.0.0.1"))
        warn_if_open(Settings(data_dir=tmp_path, host="localhost", auth="none"))
        assert not caplog.records
        warn_if_open(Settings(data_dir=tmp_path, host="0.0.0.0"))
    assert "KTES_AUTH=none" in caplog.text and "0.0.0.0" in caplog.text


async def test_every_route_but_the_public_ones_needs_credentials(api: Api) -> None:
    """Routes other helpers add later (dashboard data, live logs) are protected without doing anything."""
    for path in ["/ktes/v1/tasks/t1/logs", "/ktes/v1/summary", "/anything", f"{BASE}/tasks/t1/logs"]:
        assert (await api.client.get(path)).status_code == 401, path
    assert (await api.client.post("/ui/tasks/t1", json={})).status_code == 401  # only reads are public
    for path in ["/ui", "/ui/", "/ui/tasks/t1", "/ui/assets/app.js", "/readyz", f"{BASE}/service-info"]:
        assert (await api.client.get(path)).status_code != 401, path


async def test_a_bearer_header_cannot_inject_into_the_challenge(tmp_path: Path) -> None:
    """The reason of a 401 goes into WWW-Authenticate: nothing from the token is echoed unless it is plain."""
    from ktes.auth.oidc import OidcVerifier
    from ktes.auth.principal import AuthFailed

    verifier = OidcVerifier("http://127.0.0.1:9", "ktes")
    header = base64.urlsafe_b64encode(b'{"alg": "x\\"\\r\\nSet-Cookie: a=b"}').decode().rstrip("=")
    with pytest.raises(AuthFailed) as caught:
        await verifier.verify(f"{header}.e30.")
    assert caught.value.reason == "token signing algorithm is not accepted"
    with pytest.raises(AuthFailed, match="too long"):
        await verifier.verify("a" * 20000)
    await verifier.aclose()
