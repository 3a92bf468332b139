"""The ktes containers of a task Pod (stage-in, stage-out) on a temp dir, with the real helper running the
"executors", all started at once as the kubelet starts them: the order comes from the state files.

In a Pod the executors see container paths through subPath mounts; here they get the workspace paths that
back those container paths (ktes.tes.layout.host_path), which is what the mounts amount to.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ktes.backends.kubernetes import podside
from ktes.cli.main import app
from ktes.run.result import (
    REPORT_MARKER,
    ExecutorReport,
    StageOutReport,
    parse_report_message,
    parse_result,
    parse_result_message,
)
from ktes.tes.layout import host_path
from ktes.tes.models import Executor

PY = sys.executable
PODSIDE = [PY, "-m", "ktes.backends.kubernetes.podside"]


@dataclass
class Run:
    stage_in_code: int | None
    #: each executor's result line (None: it did not run).
    results: list[ExecutorReport | None]
    report: StageOutReport | None

    def codes(self) -> list[int]:
        return [r.exit_code for r in self.results if r is not None]


class Pod:
    """One task Pod's volumes on disk, and the commands its containers run."""

    def __init__(self, root: Path, entrypoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.entrypoint = entrypoint
        self.workspace = root / "workspace"
        self.state = root / "state"
        self.spec = root / "spec" / "task.json"
        #: stage-in's termination message (each container has its own file, made by the kubelet).
        self.termination_log = root / "termination-log"
        self.remote = root / "remote"  # stands for the object store: file:// URLs below it
        for directory in (self.remote, self.workspace, self.state, self.spec.parent):
            directory.mkdir()
        monkeypatch.setenv("KTES_BACKEND", "kubernetes")
        monkeypatch.setenv("KTES_FILE_ALLOWED_ROOTS", json.dumps([str(self.remote)]))
        monkeypatch.setenv("KTES_TRANSFER_RETRIES", "0")
        monkeypatch.delenv("KTES_CONFIG", raising=False)

    def url(self, name: str) -> str:
        return f"file://{self.remote / name}"

    def message_file(self, container: str) -> Path:
        """A container's termination message file, made empty as the kubelet makes it."""
        path = self.termination_log if container == "stage-in" else self.root / f"{container}.termination-log"
        path.touch()
        return path

    def args(self, task: dict[str, Any], termination_log: Path | None = None) -> list[str]:
        self.spec.write_text(json.dumps(task))
        return [
            "--task",
            str(self.spec),
            "--workspace",
            str(self.workspace),
            "--state",
            str(self.state),
            "--termination-log",
            str(termination_log or self.termination_log),
        ]

    def ktes_pod(self, command: str, task: dict[str, Any]) -> Any:
        """``ktes pod stage-in|stage-out`` (the CLI's way to the same code)."""
        return CliRunner().invoke(app, ["pod", command, *self.args(task)])

    def executor_argv(self, task: dict[str, Any], index: int) -> list[str]:
        ex = Executor.model_validate(task["executors"][index])
        argv = [str(self.entrypoint), "--index", str(index), "--state-dir", str(self.state)]
        if task.get("inputs"):
            argv += ["--wait", "stage-in.done"]
        if index > 0:
            argv += ["--wait", f"{index - 1}.json"]
        for option, path in (("--stdin", ex.stdin), ("--stdout", ex.stdout), ("--stderr", ex.stderr)):
            if path:
                argv += [option, str(host_path(self.workspace, path))]
        if ex.ignore_error:
            argv.append("--ignore-error")
        argv += ["--termination-log", str(self.message_file(f"executor-{index}"))]
        return [*argv, "--", *ex.command]

    def run(self, task: dict[str, Any]) -> Run:
        """Start every container of the Pod at once (stage-in only with inputs, stage-out only with outputs)."""
        args = self.args(task)
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        stage_in = subprocess.Popen([*PODSIDE, "stage-in", *args], **pipes) if task.get("inputs") else None
        executors = [subprocess.Popen(self.executor_argv(task, i), **pipes) for i in range(len(task["executors"]))]
        out_args = self.args(task, self.message_file("stage-out"))
        stage_out = subprocess.Popen([*PODSIDE, "stage-out", *out_args], **pipes) if task.get("outputs") else None
        outputs = [proc.communicate(timeout=60) for proc in executors]
        assert [proc.returncode for proc in executors] == [0] * len(executors), outputs
        report = None
        if stage_out is not None:
            out, err = stage_out.communicate(timeout=60)
            assert stage_out.returncode == 0, err
            last = out.rstrip("\n").splitlines()[-1]
            assert last.startswith(REPORT_MARKER)
            report = StageOutReport.model_validate_json(last[len(REPORT_MARKER) :])
        code = stage_in.wait(timeout=60) if stage_in is not None else None
        results = [parse_result(out) for out, _ in outputs]
        # what the engine takes from the termination messages is what the logs say (a small run fits)
        for index, found in enumerate(results):
            message = (self.root / f"executor-{index}.termination-log").read_text()
            assert parse_result_message(message, index) == found, message
        if report is not None:
            assert parse_report_message((self.root / "stage-out.termination-log").read_text()) == report
        return Run(code, results, report)


@pytest.fixture
def pod(tmp_path: Path, entrypoint_binary: Path, monkeypatch: pytest.MonkeyPatch) -> Pod:
    return Pod(tmp_path, entrypoint_binary, monkeypatch)


def py(code: str, **kwargs: Any) -> dict[str, Any]:
    return {"image": "python", "command": [PY, "-c", code], **kwargs}


def test_stage_in_stages_inputs_and_says_it_is_done(pod: Pod) -> None:
    (pod.remote / "data.txt").write_text("remote data\n")
    task = {
        "inputs": [
            {"path": "/in/data.txt", "url": pod.url("data.txt")},
            {"path": "/in/literal.txt", "content": "literal"},
        ],
        "outputs": [{"path": "/out/result.txt", "url": pod.url("result.txt")}],
        "executors": [{"image": "x", "command": ["true"]}],
    }
    result = pod.ktes_pod("stage-in", task)
    assert result.exit_code == 0, result.output
    assert (pod.state / "stage-in.done").exists()
    assert (pod.workspace / "in" / "data.txt").read_text() == "remote data\n"
    assert (pod.workspace / "in" / "literal.txt").read_text() == "literal"
    for directory in (pod.workspace, pod.workspace / "in", pod.workspace / "out"):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o777 == 0o777, directory  # executors may run as anyone
    assert not pod.termination_log.exists()


def test_stage_in_failure_is_a_sentence_and_no_executor_runs(pod: Pod, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    task = {
        "inputs": [{"path": "/in/a.txt", "url": "http://alice:s3cret@127.0.0.1:1/data/a.txt?X-Amz-Signature=abc"}],
        "outputs": [{"path": "/in/a.txt", "url": pod.url("a.txt")}],
        "executors": [py(f"open({str(marker)!r}, 'w')")],
    }
    run = pod.run(task)
    assert run.stage_in_code == 1
    message = pod.termination_log.read_text()
    assert message.startswith("input ") and "127.0.0.1:1/data/a.txt" in message
    assert "s3cret" not in message and "abc" not in message
    assert (pod.state / "stage-in.failed").read_text() == message
    assert run.results == [None] and not marker.exists()
    assert run.report == StageOutReport()  # nothing uploaded: the engine tells stage-in's reason


def test_a_successful_run_reports_codes_streams_and_uploaded_outputs(pod: Pod) -> None:
    (pod.remote / "in.txt").write_text("hello\n")
    out_path = str(host_path(pod.workspace, "/data/out.txt"))
    writer = (
        "import pathlib, sys; d = sys.stdin.read(); pathlib.Path(sys.argv[1]).write_text(d.upper()); print('wrote')"
    )
    task = {
        "inputs": [{"path": "/data/in.txt", "url": pod.url("in.txt")}],
        "outputs": [{"path": "/data/out.txt", "url": pod.url("results/out.txt")}],
        "executors": [
            {**py(writer), "stdin": "/data/in.txt", "stdout": "/logs/first.out"},
            py("import sys; print('second to stderr', file=sys.stderr)"),
        ],
    }
    task["executors"][0]["command"].append(out_path)
    run = pod.run(task)
    assert run.stage_in_code == 0 and run.codes() == [0, 0]
    first, second = run.results
    assert first is not None and second is not None
    assert first.stdout == "wrote\n"  # from the executor's own stdout file
    assert second.stderr == "second to stderr\n" and second.stdout == ""
    assert second.start_time >= first.end_time
    assert run.report is not None and run.report.uploaded and run.report.error is None
    assert [(o.path, o.url, o.size_bytes) for o in run.report.outputs] == [
        ("/data/out.txt", pod.url("results/out.txt"), "6")
    ]
    assert (pod.remote / "results" / "out.txt").read_text() == "HELLO\n"


def test_a_failed_executor_stops_the_run_and_no_output_is_uploaded(pod: Pod, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    task = {
        "outputs": [{"path": "/out/x.txt", "url": pod.url("x.txt")}],
        "executors": [py("raise SystemExit(4)"), py(f"open({str(marker)!r}, 'w')")],
    }
    run = pod.run(task)
    assert run.codes() == [4] and run.results[1] is None and not marker.exists()
    assert run.report == StageOutReport()
    assert not (pod.remote / "x.txt").exists()


def test_ignore_error_keeps_the_code_and_outputs_are_uploaded(pod: Pod) -> None:
    target = host_path(pod.workspace, "/out/x.txt")
    target.parent.mkdir(parents=True)
    task: dict[str, Any] = {
        "outputs": [{"path": "/out/x.txt", "url": pod.url("x.txt")}],
        "executors": [py("raise SystemExit(1)", ignore_error=True), py(f"open({str(target)!r}, 'w').write('ok')")],
    }
    run = pod.run(task)
    assert run.codes() == [1, 0]
    assert run.report is not None and [o.size_bytes for o in run.report.outputs] == ["2"]
    assert (pod.remote / "x.txt").read_text() == "ok"


def test_a_missing_output_is_an_error_in_the_report_not_a_failed_container(pod: Pod) -> None:
    task = {"outputs": [{"path": "/out/never-made.txt", "url": pod.url("never.txt")}], "executors": [py("pass")]}
    run = pod.run(task)
    assert run.codes() == [0]
    assert run.report is not None and run.report.error is not None and "/out/never-made.txt" in run.report.error


def test_a_command_that_cannot_start_is_reported(pod: Pod) -> None:
    run = pod.run({"executors": [{"image": "x", "command": ["no-such-tool"]}, py("pass")]})
    first = run.results[0]
    assert first is not None and run.results[1] is None
    assert (first.exit_code, first.error) == (127, "exec no-such-tool: No such file or directory")
    assert "no-such-tool" in first.stderr


def test_stage_out_waits_for_the_last_executor(pod: Pod) -> None:
    task = {"executors": [py("pass")], "outputs": [{"path": "/o/x", "url": pod.url("x")}]}
    assert podside.wait_for_executors(podside.load_task(Path(pod.args(task)[1])), pod.state, timeout=0.2) is False
    (pod.state / "stop").touch()
    assert podside.wait_for_executors(podside.load_task(pod.spec), pod.state, timeout=0.2) is True
