"""Shaping a stored task document by view."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from ktes.errors import InvalidTask
from ktes.tes.models import Executor, ExecutorLog, Task, TaskLog, View
from ktes.tes.views import basic_json, complete, document, parse_view, shape

DOC: dict[str, Any] = {
    "id": "t1",
    "state": "COMPLETE",
    "name": "n",
    "inputs": [{"path": "/a", "content": "big"}, {"path": "/b", "url": "s3://b/k"}],
    "executors": [{"image": "i", "command": ["c"]}],
    "logs": [
        {
            "logs": [{"exit_code": 0, "stdout": "o", "stderr": "e", "end_time": "t"}],
            "outputs": [],
            "system_logs": ["s"],
            "metadata": {"m": "1"},
        }
    ],
    "creation_time": "2024-01-01T00:00:00Z",
}


def test_minimal() -> None:
    assert shape(DOC, View.MINIMAL) == {"id": "t1", "state": "COMPLETE"}


def test_full_is_the_document() -> None:
    assert shape(DOC, View.FULL) == DOC


def test_basic_drops_exactly_the_four_large_fields_and_leaves_the_document_alone() -> None:
    before = copy.deepcopy(DOC)
    basic = shape(DOC, View.BASIC)
    assert before == DOC
    expected = copy.deepcopy(DOC)
    del expected["inputs"][0]["content"]
    del expected["logs"][0]["system_logs"]
    del expected["logs"][0]["logs"][0]["stdout"]
    del expected["logs"][0]["logs"][0]["stderr"]
    assert basic == expected


def test_basic_of_a_task_without_logs_or_inputs() -> None:
    doc = {"id": "t", "state": "QUEUED", "executors": []}
    assert shape(doc, View.BASIC) == doc


def test_parse_view() -> None:
    assert parse_view(None) is View.MINIMAL
    assert parse_view("BASIC") is View.BASIC
    with pytest.raises(InvalidTask) as raised:
        parse_view("basic")
    assert raised.value.field == "view"


def test_basic_json_matches_basic() -> None:
    assert orjson.loads(basic_json(orjson.dumps(DOC))) == shape(DOC, View.BASIC)


def test_basic_json_passes_documents_without_hidden_fields_through_untouched() -> None:
    doc = orjson.dumps({"id": "t", "state": "QUEUED", "executors": [], "description": 'say "content":'})
    assert basic_json(doc) is doc


def test_basic_json_with_a_tag_named_like_a_hidden_field() -> None:
    doc = {"id": "t", "state": "QUEUED", "executors": [], "tags": {"content": "x", "stdout": "y"}}
    assert orjson.loads(basic_json(orjson.dumps(doc))) == doc


def _nulls(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for v in value.values() if v is None] + [n for v in value.values() for n in _nulls(v)]
    if isinstance(value, list):
        return [n for v in value for n in _nulls(v)]
    return []


def test_a_task_without_inputs_or_tags_still_has_every_array_and_map() -> None:
    """The ELIXIR web component maps over ``inputs``; pydantic-tes and the Rust ``tes`` crate require an input's
    ``type`` and a task log's ``outputs``: a bare task must carry them all, and no ``null`` anywhere."""
    bare = {"id": "t2", "state": "QUEUED", "executors": [{"image": "i", "command": ["c"], "env": None}], "tags": None}
    full = complete(bare)
    assert full["inputs"] == [] and full["outputs"] == [] and full["volumes"] == [] and full["logs"] == []
    assert full["tags"] == {} and full["executors"][0]["env"] == {}
    assert not _nulls(full)
    assert list(full)[:2] == ["id", "state"]
    assert orjson.loads(basic_json(orjson.dumps(full))) == full


def test_completion_fills_types_and_task_log_lists_and_keeps_what_is_there() -> None:
    old = {
        "id": "t3",
        "state": "RUNNING",
        "inputs": [{"path": "/a", "content": "x"}, {"path": "/d", "url": "s3://b/d/", "type": "DIRECTORY"}],
        "outputs": [{"path": "/o", "url": "s3://b/o"}],
        "executors": [{"image": "i", "command": ["c"], "env": {"A": "1"}}],
        "logs": [{"start_time": "t"}],
    }
    full = complete(old)
    assert [i["type"] for i in full["inputs"]] == ["FILE", "DIRECTORY"]
    assert full["outputs"][0]["type"] == "FILE"
    assert full["executors"][0]["env"] == {"A": "1"}
    assert full["logs"] == [{"logs": [], "metadata": {}, "start_time": "t", "outputs": []}]
    assert complete(full) == full
    assert "type" not in old["inputs"][0]  # the argument is left alone


def test_the_document_of_a_model_is_complete() -> None:
    task = Task(executors=[Executor(image="i", command=["c"])], logs=[TaskLog(logs=[ExecutorLog(exit_code=3)])])
    doc = document(task)
    assert doc["logs"][0]["logs"] == [{"exit_code": 3}] and doc["logs"][0]["outputs"] == []
    assert doc["inputs"] == [] and doc["tags"] == {}
