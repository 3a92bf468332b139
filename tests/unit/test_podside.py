"""``ktes pod stage-in`` and ``stage-out`` on a temp dir, with the real helper running the "executors".

In a Pod the executors see container paths through subPath mounts; here they get the workspace paths that
back those container paths (ktes.tes.layout.host_path), which is what the mounts amount to.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ktes.backends.kubernetes import podside
from ktes.backends.kubernetes.report import REPORT_MARKER, PodReport
from ktes.cli.main import app
from ktes.tes.layout import host_path
from ktes.tes.models import Executor

PY = sys.executable


class Pod:
    """One task Pod's volumes on disk, and the commands its containers run."""

    def __init__(self, root: Path, entrypoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.workspace = root / "workspace"
        self.tools = root / "tools"
        self.spec = root / "spec" / "task.json"
        self.termination_log = root / "termination-log"
        self.remote = root / "remote"  # stands for the object store: file:// URLs below it
        self.remote.mkdir()
        self.workspace.mkdir()
        self.spec.parent.mkdir()
        monkeypatch.setenv("KTES_ENTRYPOINT", str(entrypoint))
        monkeypatch.setenv("KTES_BACKEND", "kubernetes")
        monkeypatch.setenv("KTES_FILE_ALLOWED_ROOTS", json.dumps([str(self.remote)]))
        monkeypatch.setenv("KTES_HTTP_RETRIES", "0")
        monkeypatch.delenv("KTES_CONFIG", raising=False)

    def url(self, name: str) -> str:
        return f"file://{self.remote / name}"

    def ktes_pod(self, command: str, task: dict[str, Any]) -> Any:
        self.spec.write_text(json.dumps(task))
        args = [
            "pod",
            command,
            "--task",
            str(self.spec),
            "--workspace",
            str(self.workspace),
            "--tools",
            str(self.tools),
        ]
        return CliRunner().invoke(app, [*args, "--termination-log", str(self.termination_log)])

    def run_executors(self, task: dict[str, Any]) -> None:
        """What the executor init containers do: each runs through tools/entrypoint, in order."""
        for index, doc in enumerate(task["executors"]):
            ex = Executor.model_validate(doc)
            argv = [str(self.tools / "entrypoint"), "--index", str(index), "--state-dir", str(self.tools / "state")]
            for option, path in (("--stdin", ex.stdin), ("--stdout", ex.stdout), ("--stderr", ex.stderr)):
                if path:
                    argv += [option, str(host_path(self.workspace, path))]
            if ex.ignore_error:
                argv.append("--ignore-error")
            assert subprocess.run([*argv, "--", *ex.command], timeout=60).returncode == 0

    def stage_out(self, task: dict[str, Any]) -> PodReport:
        result = self.ktes_pod("stage-out", task)
        assert result.exit_code == 0, result.output
        last = result.stdout.rstrip("\n").splitlines()[-1]
        assert last.startswith(REPORT_MARKER)
        return PodReport.model_validate_json(last[len(REPORT_MARKER) :])

    def run(self, task: dict[str, Any]) -> PodReport:
        result = self.ktes_pod("stage-in", task)
        assert result.exit_code == 0, result.output
        self.run_executors(task)
        return self.stage_out(task)


@pytest.fixture
def pod(tmp_path: Path, entrypoint_binary: Path, monkeypatch: pytest.MonkeyPatch) -> Pod:
    return Pod(tmp_path, entrypoint_binary, monkeypatch)


def py(code: str, **kwargs: Any) -> dict[str, Any]:
    return {"image": "python", "command": [PY, "-c", code], **kwargs}


def test_stage_in_installs_the_helper_and_stages_inputs(pod: Pod, entrypoint_binary: Path) -> None:
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
    helper = pod.tools / "entrypoint"
    assert helper.read_bytes() == entrypoint_binary.read_bytes()
    assert stat.S_IMODE(helper.stat().st_mode) == 0o755
    assert stat.S_IMODE((pod.tools / "state").stat().st_mode) == 0o1777
    assert (pod.workspace / "in" / "data.txt").read_text() == "remote data\n"
    assert (pod.workspace / "in" / "literal.txt").read_text() == "literal"
    for directory in (pod.workspace, pod.workspace / "in", pod.workspace / "out"):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o777 == 0o777, directory  # executors may run as anyone
    assert not pod.termination_log.exists()


def test_stage_in_failure_is_a_sentence_in_the_termination_message(pod: Pod) -> None:
    task = {
        "inputs": [{"path": "/in/a.txt", "url": "http://alice:s3cret@127.0.0.1:1/data/a.txt?X-Amz-Signature=abc"}],
        "executors": [{"image": "x", "command": ["true"]}],
    }
    result = pod.ktes_pod("stage-in", task)
    assert result.exit_code == 1
    message = pod.termination_log.read_text()
    assert "127.0.0.1:1/data/a.txt" in message
    assert "s3cret" not in message and "abc" not in message
    assert "s3cret" not in result.output


def test_a_successful_run_reports_codes_streams_and_uploaded_outputs(pod: Pod) -> None:
    (pod.remote / "in.txt").write_text("hello\n")
    writer = (
        "import pathlib, sys; d = sys.stdin.read(); pathlib.Path(sys.argv[1]).write_text(d.upper()); print('wrote')"
    )
    task = {
        "inputs": [{"path": "/data/in.txt", "url": pod.url("in.txt")}],
        "outputs": [{"path": "/data/out.txt", "url": pod.url("results/out.txt")}],
        "executors": [
            {
                **py(writer),
                "stdin": "/data/in.txt",
                "stdout": "/logs/first.out",
            },
            py("import sys; print('second to stderr', file=sys.stderr)"),
        ],
    }
    task["executors"][0]["command"].append("PLACEHOLDER")
    pod.ktes_pod("stage-in", task)
    task["executors"][0]["command"][-1] = str(host_path(pod.workspace, "/data/out.txt"))
    pod.run_executors(task)
    report = pod.stage_out(task)

    assert [e.result.exit_code for e in report.executors] == [0, 0]
    assert report.executors[0].stdout == "wrote\n"  # from the executor's own stdout file
    assert report.executors[1].stderr == "second to stderr\n"
    assert report.executors[1].stdout == ""
    assert report.error is None
    assert [(o.path, o.url, o.size_bytes) for o in report.outputs] == [
        ("/data/out.txt", pod.url("results/out.txt"), "6")
    ]
    assert (pod.remote / "results" / "out.txt").read_text() == "HELLO\n"


def test_a_failed_executor_stops_the_run_and_no_output_is_uploaded(pod: Pod) -> None:
    task = {
        "outputs": [{"path": "/out/x.txt", "url": pod.url("x.txt")}],
        "executors": [
            py("raise SystemExit(4)"),
            py("print('must not run')"),
        ],
    }
    report = pod.run(task)
    assert [e.result.exit_code for e in report.executors] == [4]
    assert report.outputs == [] and report.error is None
    assert not (pod.remote / "x.txt").exists()


def test_ignore_error_keeps_the_code_and_outputs_are_uploaded(pod: Pod) -> None:
    task: dict[str, Any] = {
        "outputs": [{"path": "/out/x.txt", "url": pod.url("x.txt")}],
        "executors": [py("raise SystemExit(1)", ignore_error=True), py("PLACEHOLDER")],
    }
    pod.ktes_pod("stage-in", task)
    target = host_path(pod.workspace, "/out/x.txt")
    task["executors"][1] = py(f"open({str(target)!r}, 'w').write('ok')")
    pod.run_executors(task)
    report = pod.stage_out(task)
    assert [e.result.exit_code for e in report.executors] == [1, 0]
    assert [o.size_bytes for o in report.outputs] == ["2"]
    assert (pod.remote / "x.txt").read_text() == "ok"


def test_a_missing_output_is_an_error_in_the_report_not_a_failed_container(pod: Pod) -> None:
    task = {
        "outputs": [{"path": "/out/never-made.txt", "url": pod.url("never.txt")}],
        "executors": [py("pass")],
    }
    report = pod.run(task)
    assert [e.result.exit_code for e in report.executors] == [0]
    assert report.error is not None and "/out/never-made.txt" in report.error


def test_a_command_that_cannot_start_is_reported(pod: Pod) -> None:
    report = pod.run({"executors": [{"image": "x", "command": ["no-such-tool"]}, py("pass")]})
    assert len(report.executors) == 1
    assert report.executors[0].result.exit_code == 127
    assert report.executors[0].result.error == "exec no-such-tool: No such file or directory"
    assert "no-such-tool" in report.executors[0].stderr


def test_only_the_tail_of_long_output_is_reported(pod: Pod, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTES_K8S_LOG_TAIL_BYTES", "1000")
    code = "import sys\nfor i in range(50000): print(f'line {i} é')"
    report = pod.run({"executors": [py(code)]})
    tail = report.executors[0].stdout
    assert len(tail.encode()) <= 1000
    assert tail.endswith("line 49999 é\n")
    assert "\ufffd" not in tail


def test_read_tail_never_starts_inside_a_character(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes("aé".encode() * 10)  # 3 bytes per pair
    assert podside.read_tail(path, 4) == "aé"  # the cut fell inside "é": its second byte is dropped
    assert podside.read_tail(path, 5) == "éaé"
    assert podside.read_tail(tmp_path / "missing", 10) == ""


def test_stage_out_without_any_executor_result(pod: Pod) -> None:
    task = {"executors": [py("pass")], "outputs": [{"path": "/o/x", "url": pod.url("x")}]}
    pod.ktes_pod("stage-in", task)
    report = pod.stage_out(task)  # e.g. the Pod was deleted before the executors: nothing ran
    assert report.executors == [] and report.outputs == [] and report.error is None
