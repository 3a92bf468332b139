"""``tes_states=1.0``: TES 1.1's CANCELING and PREEMPTED shown in TES 1.0 terms, on get and on list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantictes.models import TesListTasksResponse, TesState, TesTask

from ktes.config import Settings
from ktes.engine import recording
from ktes.run.observations import Ended
from ktes.tes.models import State
from ktes.tes.tes10 import PREEMPTED_LINE
from tests.unit.api_harness import BASE, Api, running_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path, tes_states="1.0") as api:
        yield api


def move(api: Api, task_id: str, *states: State) -> None:
    for state in states:
        assert api.store.transition(task_id, state) is not None


async def test_a_canceling_task_reads_canceled_in_every_view_and_in_lists(api: Api) -> None:
    task_id = await api.create()
    move(api, task_id, State.INITIALIZING, State.RUNNING, State.CANCELING)
    for view in ("MINIMAL", "BASIC", "FULL"):
        assert (await api.get(task_id, view))["state"] == "CANCELED"
    # pydantic-tes (TES 1.0 states only) reads both answers
    TesTask(**await api.get(task_id, "FULL"))
    listed = (await api.client.get(f"{BASE}/tasks", params={"view": "BASIC"})).json()
    assert TesListTasksResponse(**listed).tasks[0].state == TesState.CANCELED


async def test_a_preempted_task_reads_system_error_with_the_reason(api: Api) -> None:
    task_id = await api.create()
    move(api, task_id, State.INITIALIZING)
    ended = Ended(state=State.PREEMPTED, end_time="2026-01-01T00:00:00Z", reason="the node went away")
    api.store.transition(task_id, State.PREEMPTED, recording.ended(ended))
    full = await api.get(task_id, "FULL")
    assert full["state"] == "SYSTEM_ERROR"
    assert full["logs"][-1]["system_logs"][-2:] == ["the node went away", PREEMPTED_LINE]
    assert "system_logs" not in (await api.get(task_id, "BASIC"))["logs"][-1]
    TesTask(**full)


async def test_state_filters_follow_what_is_shown(api: Api) -> None:
    canceling, canceled, running = await api.create(), await api.create(), await api.create()
    move(api, canceling, State.INITIALIZING, State.CANCELING)
    move(api, canceled, State.CANCELING, State.CANCELED)
    move(api, running, State.INITIALIZING, State.RUNNING)

    async def ids(state: str) -> list[str]:
        response = await api.client.get(f"{BASE}/tasks", params={"state": state})
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["tasks"]]

    assert sorted(await ids("CANCELED")) == sorted([canceling, canceled])
    assert await ids("RUNNING") == [running]
    response = await api.client.get(f"{BASE}/tasks", params={"state": "CANCELING"})
    assert response.status_code == 400 and "state" in response.text


async def test_the_default_shows_tes_1_1_states(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        task_id = await api.create()
        move(api, task_id, State.INITIALIZING, State.CANCELING)
        assert (await api.get(task_id))["state"] == "CANCELING"
        listed = (await api.client.get(f"{BASE}/tasks", params={"state": "CANCELED"})).json()["tasks"]
        assert listed == []


def test_the_setting_takes_only_the_two_versions() -> None:
    assert Settings().tes_states == "1.1"
    with pytest.raises(ValidationError, match="tes_states"):
        Settings(tes_states="1.2")
