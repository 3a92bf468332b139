"""The Lease rules (one leader; take-over only after the holder went quiet) and the watch cache, with an
in-memory stand-in for the API."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ktes.backends.kubernetes import lease as lease_module
from ktes.backends.kubernetes.client import AlreadyExists, Conflict
from ktes.backends.kubernetes.lease import Lease
from ktes.backends.kubernetes.objects import ObjectCache
from ktes.config import Settings


class FakeLeases:
    """Leases with resourceVersion checks, as the API server keeps them."""

    host = "https://fake-api"

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 0

    async def read_lease(self, name: str) -> dict[str, Any] | None:
        found = self.leases.get(name)
        return copy.deepcopy(found) if found else None

    async def create_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if name in self.leases:
            raise AlreadyExists("exists", 409)
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.leases[name] = body
        return body

    async def replace_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if self.leases[name]["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise Conflict("changed", 409)
        return await self._store(name, body)

    async def _store(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.leases[name] = body
        return body


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(lease_module.time, "monotonic", fake.monotonic)
    return fake


SETTINGS = Settings(k8s_lease_name="engine", k8s_lease_duration_seconds=10)


async def test_one_leader_and_take_over_only_after_it_went_quiet(clock: Clock) -> None:
    api = FakeLeases()
    a = Lease(api, SETTINGS, holder="a_1")  # type: ignore[arg-type]
    b = Lease(api, SETTINGS, holder="b_2")  # type: ignore[arg-type]
    assert await a.try_acquire()
    assert not await b.try_acquire()
    clock.now += 6
    assert await a.try_acquire()  # renews
    assert not await b.try_acquire()  # b saw a new renewTime: its count starts again
    clock.now += 6
    assert not await b.try_acquire()  # 6 s of silence: not yet
    clock.now += 5
    assert await b.try_acquire()  # 11 s without a renewal: b takes over
    spec = api.leases["engine"]["spec"]
    assert spec["holderIdentity"] == "b_2" and spec["leaseTransitions"] == 1
    assert not await a.try_acquire()  # a finds b holding it and stops leading


async def test_release_lets_another_replica_take_it_at_once(clock: Clock) -> None:
    api = FakeLeases()
    a = Lease(api, SETTINGS, holder="a_1")  # type: ignore[arg-type]
    b = Lease(api, SETTINGS, holder="b_2")  # type: ignore[arg-type]
    assert await a.try_acquire()
    await a.release()
    assert api.leases["engine"]["spec"]["holderIdentity"] == ""
    assert await b.try_acquire()


async def test_losing_a_race_is_not_an_error(clock: Clock) -> None:
    api = FakeLeases()
    a = Lease(api, SETTINGS, holder="a_1")  # type: ignore[arg-type]
    stale = await api.create_lease({"metadata": {"name": "engine"}, "spec": {"holderIdentity": "", "renewTime": "x"}})
    original_read = api.read_lease

    async def read_then_someone_else_writes(name: str) -> dict[str, Any] | None:
        seen = await original_read(name)
        await api._store(name, {**stale, "spec": {"holderIdentity": "c_3"}})
        return seen

    api.read_lease = read_then_someone_else_writes  # type: ignore[method-assign]
    assert not await a.try_acquire()


def pod(task_id: str, name: str, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"ktes.task-id": task_id}}, "status": {"phase": phase}}


def test_cache_relist_counts_missing_objects_as_deleted() -> None:
    cache = ObjectCache()
    entry = cache.follow("t1")
    cache.sync("pods", [pod("t1", "p1"), pod("t2", "q1")])
    assert list(entry.pods) == ["p1"] and cache.task_ids() == {"t1", "t2"}
    entry.changed.clear()
    cache.sync("pods", [pod("t2", "q1")])  # p1 vanished while the watch was down
    assert entry.pods == {} and list(entry.deleted_pods) == ["p1"]
    assert entry.changed.is_set()
    cache.apply("jobs", "ADDED", {"metadata": {"name": "j", "labels": {"ktes.task-id": "t1"}}})
    cache.apply("jobs", "DELETED", {"metadata": {"name": "j", "labels": {"ktes.task-id": "t1"}}})
    assert entry.observed().job_gone


def test_cache_forgets_unfollowed_tasks_once_their_objects_are_gone() -> None:
    cache = ObjectCache()
    cache.apply("pods", "ADDED", pod("t9", "p9"))
    assert cache.task_ids() == {"t9"}
    cache.apply("pods", "DELETED", pod("t9", "p9"))
    assert cache.task_ids() == set()
    cache.apply("pods", "DELETED", pod("t8", "p8"))  # never seen: nothing to remember
    assert cache.task_ids() == set()
