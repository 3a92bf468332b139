"""TES 1.1.0 types as pydantic models.

Lenient on input (unknown fields ignored, explicit ``null`` accepted, read-only fields a client sends are
dropped by the API), exact on output: :func:`dump` leaves out unset/``None`` fields so every response
matches the OpenAPI schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class State(StrEnum):
    UNKNOWN = "UNKNOWN"
    QUEUED = "QUEUED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    EXECUTOR_ERROR = "EXECUTOR_ERROR"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    CANCELED = "CANCELED"
    PREEMPTED = "PREEMPTED"
    CANCELING = "CANCELING"


class FileType(StrEnum):
    FILE = "FILE"
    DIRECTORY = "DIRECTORY"


class View(StrEnum):
    MINIMAL = "MINIMAL"
    BASIC = "BASIC"
    FULL = "FULL"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Input(_Model):
    name: str | None = None
    description: str | None = None
    url: str | None = None
    path: str
    type: FileType | None = None
    content: str | None = None
    streamable: bool | None = None


class Output(_Model):
    name: str | None = None
    description: str | None = None
    url: str
    path: str
    path_prefix: str | None = None
    type: FileType | None = None


class Resources(_Model):
    cpu_cores: int | None = None
    preemptible: bool | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None
    zones: list[str] | None = None
    backend_parameters: dict[str, str] | None = None
    backend_parameters_strict: bool | None = None


class Executor(_Model):
    image: str
    command: list[str]
    workdir: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    env: dict[str, str] | None = None
    ignore_error: bool | None = None


class ExecutorLog(_Model):
    start_time: str | None = None
    end_time: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    exit_code: int


class OutputFileLog(_Model):
    url: str
    path: str
    size_bytes: str


class TaskLog(_Model):
    logs: list[ExecutorLog] = Field(default_factory=list)
    metadata: dict[str, str] | None = None
    start_time: str | None = None
    end_time: str | None = None
    outputs: list[OutputFileLog] = Field(default_factory=list)
    system_logs: list[str] | None = None


class Task(_Model):
    id: str | None = None
    state: State | None = None
    name: str | None = None
    description: str | None = None
    inputs: list[Input] | None = None
    outputs: list[Output] | None = None
    resources: Resources | None = None
    executors: list[Executor]
    volumes: list[str] | None = None
    tags: dict[str, str] | None = None
    logs: list[TaskLog] | None = None
    creation_time: str | None = None
    #: ktes's own: the user who created the task (None: auth was off). Never serialised (``exclude``), never
    #: taken from a request (the API sets it), kept by the store in its own column.
    owner: str | None = Field(default=None, exclude=True)


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON document of a model, without unset or ``None`` fields (as the spec's shapes expect)."""
    return model.model_dump(mode="json", exclude_none=True)
