"""Validation and normalisation of submitted tasks (ktes.tes.validation)."""

from __future__ import annotations

from typing import Any

import pytest

from ktes.capabilities import Capabilities
from ktes.errors import InvalidTask
from ktes.tes.models import Task
from ktes.tes.urls import scheme_of
from ktes.tes.validation import Limits, field_path, validate_submission

CAPS = Capabilities(storage_schemes=("file", "s3", "https"), backend_parameters=("queue",))


def doc(**fields: Any) -> dict[str, Any]:
    return {"executors": [{"image": "alpine", "command": ["true"]}], **fields}


def valid(raw: Any, limits: Limits | None = None) -> Task:
    return validate_submission(raw, CAPS, limits or Limits())


def invalid(raw: Any, limits: Limits | None = None) -> InvalidTask:
    with pytest.raises(InvalidTask) as raised:
        valid(raw, limits)
    return raised.value


def test_field_path() -> None:
    assert field_path(("executors", 0, "image")) == "executors[0].image"
    assert field_path(("tags", "a")) == "tags.a"
    assert field_path(()) == "body"


def test_a_minimal_task_is_valid_and_has_no_server_fields() -> None:
    task = valid(doc(id="x", state="RUNNING", creation_time="yesterday", logs=[{"logs": [], "outputs": []}]))
    assert task.id is None and task.state is None and task.creation_time is None and task.logs is None


@pytest.mark.parametrize(
    "path",
    ["/data/x", "/data/", "/a/b/c.txt", "/a/.hidden", "/a/..b", "/a/b.."],
)
def test_good_container_paths(path: str) -> None:
    valid(doc(inputs=[{"path": path, "url": "s3://b/k"}], volumes=[path]))


@pytest.mark.parametrize("path", ["", "x", "./x", "/a/../b", "/..", "/", "//", "/./", "/a/\x00"])
def test_bad_container_paths(path: str) -> None:
    assert invalid(doc(volumes=["/ok", path])).field == "volumes[1]"


def test_workdir_may_be_the_root() -> None:
    valid({"executors": [{"image": "a", "command": ["pwd"], "workdir": "/"}]})


@pytest.mark.parametrize("url", ["s3://b/k", "S3://b/k", "file:///x", "/plain/path", "https://h/x?y=1"])
def test_supported_urls(url: str) -> None:
    valid(doc(inputs=[{"path": "/in", "url": url}], outputs=[{"path": "/out", "url": url}]))


@pytest.mark.parametrize("url", ["", "gs://b/k", "http://h/x", "relative/path", "://x", "b/k.txt"])
def test_unsupported_urls_name_the_schemes_we_support(url: str) -> None:
    error = invalid(doc(outputs=[{"path": "/out", "url": url}]))
    assert error.field == "outputs[0].url"


@pytest.mark.parametrize("url", ["file:/tmp/x", "s3:bucket/key", "drs:x", "https:/h/x"])
def test_scheme_without_an_authority_is_refused_at_post_as_the_filer_would(url: str) -> None:
    error = invalid(doc(inputs=[{"path": "/in", "url": url}]))
    assert error.field == "inputs[0].url" and "must be a URL such as s3://bucket/key" in error.message
    assert scheme_of(url) == ""  # the filer reads it the same way


def test_unsupported_scheme_message_lists_the_supported_ones() -> None:
    error = invalid(doc(inputs=[{"path": "/in", "url": "gs://b/k"}]))
    assert "'gs'" in error.message and "file, s3, https" in error.message


def test_wildcards_need_a_path_prefix_that_prefixes_the_path() -> None:
    valid(doc(outputs=[{"path": "/data/*.txt", "path_prefix": "/data/", "url": "s3://b/"}]))
    valid(doc(outputs=[{"path": "/data/[ab]?.txt", "path_prefix": "/", "url": "s3://b/"}]))
    assert invalid(doc(outputs=[{"path": "/d/*.txt", "url": "s3://b/"}])).field == "outputs[0].path_prefix"
    bad = doc(outputs=[{"path": "/d/*.txt", "path_prefix": "/e/", "url": "s3://b/"}])
    assert invalid(bad).field == "outputs[0].path_prefix"


def test_escaped_wildcards_and_plain_paths_need_no_prefix() -> None:
    valid(doc(outputs=[{"path": r"/data/a\*b", "url": "s3://b/k"}, {"path": "/data/x", "url": "s3://b/k"}]))


def test_count_limits() -> None:
    limits = Limits(max_executors=1, max_inputs=1, max_outputs=1, max_tags=1)
    two_executors = {"executors": [{"image": "a", "command": ["b"]}] * 2}
    error = invalid(two_executors, limits)
    assert error.field == "executors" and "at most 1" in error.message
    assert invalid(doc(tags={"a": "", "b": ""}), limits).field == "tags"


def test_content_limit_counts_utf8_bytes() -> None:
    limits = Limits(max_content_bytes=4)
    valid(doc(inputs=[{"path": "/a", "content": "éé"}]), limits)
    assert invalid(doc(inputs=[{"path": "/a", "content": "ééé"}]), limits).field == "inputs[0].content"


def test_backend_parameters_keys_lowercased_unknown_dropped_with_warning() -> None:
    task = valid(doc(resources={"backend_parameters": {"QUEUE": "q", "Vm": "x"}}))
    assert task.resources is not None
    assert task.resources.backend_parameters == {"queue": "q"}
    assert task.logs is not None
    (log,) = task.logs
    assert log.logs == [] and log.outputs == []
    assert log.system_logs is not None and "'vm'" in log.system_logs[0]


def test_backend_parameters_strict_from_the_task_or_the_server() -> None:
    strict_task = doc(resources={"backend_parameters": {"Vm": "x"}, "backend_parameters_strict": True})
    assert invalid(strict_task).field == "resources.backend_parameters"
    lenient_task = doc(resources={"backend_parameters": {"Vm": "x"}})
    assert "'vm'" in invalid(lenient_task, Limits(backend_parameters_strict=True)).message


def test_pydantic_errors_become_field_paths() -> None:
    error = invalid({"executors": [{"image": "a", "command": ["b"]}, {"image": "a"}]})
    assert error.field == "executors[1].command"
    assert error.message == "is required"
    assert invalid(doc(resources={"ram_gb": "lots"})).field == "resources.ram_gb"


def test_nul_characters_are_refused_wherever_they_are() -> None:
    assert invalid(doc(name="a\x00b")).field == "name"
    assert invalid(doc(tags={"k": "\x00"})).field == "tags.k"
    assert invalid(doc(tags={"\x00": "v"})).field == "tags"
    assert invalid({"executors": [{"image": "a", "command": ["b", "c\x00"]}]}).field == "executors[0].command[1]"


def test_indexed_fields_have_a_size_limit() -> None:
    limits = Limits(max_name_bytes=4, max_tag_bytes=3)
    valid(doc(name="abcd", tags={"abc": "xyz"}), limits)
    assert invalid(doc(name="abcde"), limits).field == "name"
    assert invalid(doc(tags={"abcd": ""}), limits).field == "tags"
    assert invalid(doc(tags={"k": "é€"}), limits).field == "tags.k"
