"""Shaping a stored task document by view."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from ktes.errors import InvalidTask
from ktes.tes.models import View
from ktes.tes.views import basic_json, parse_view, shape

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
