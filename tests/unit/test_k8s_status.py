"""Pod and Job status → what the user sees, from statuses recorded on the lab cluster (tests/unit/data/k8s)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ktes.backends.kubernetes import status
from ktes.backends.kubernetes.status import Failed, Going, Observed, PodEnded, Progress
from ktes.config import Settings
from ktes.run import result as results
from ktes.run.observations import Ended, ExecutorFinished, ExecutorStarted, OutputsUploaded, SystemLog
from ktes.run.result import ExecutorReport, StageOutReport
from ktes.tes.models import Executor, Output, OutputFileLog, Resources, State, Task

DATA = Path(__file__).parent / "data" / "k8s"
T0 = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)
SETTINGS = Settings(k8s_image_pull_timeout_seconds=60, k8s_unschedulable_timeout_seconds=120)


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return data


def observed(name: str) -> Observed:
    data = recorded(name)
    return Observed(job=data["job"], pods=data["pods"])


def make_task(n_executors: int = 1, **resources: Any) -> Task:
    executors = [Executor(image="localhost/busybox:test", command=["true"]) for _ in range(n_executors)]
    return Task(id="t1", executors=executors, resources=Resources(**resources) if resources else None)


def ended(verdict: status.Verdict) -> Ended:
    assert isinstance(verdict, Failed), verdict
    last = verdict.observations[-1]
    assert isinstance(last, Ended)
    return last


def test_running_executor_is_reported_started_once() -> None:
    progress = Progress()
    pod = recorded("pod-deleted")["running"]
    pod["status"]["initContainerStatuses"][1]["state"] = {"running": {"startedAt": "2026-11-21T06:29:03Z"}}
    first = status.assess(make_task(), Observed(pods=[pod]), progress, SETTINGS, T0)
    assert first.started == [ExecutorStarted(0, "2026-11-21T06:29:03Z")]
    assert first.node == "vm"
    assert isinstance(first.verdict, Going)
    again = status.assess(make_task(), Observed(pods=[pod]), progress, SETTINGS, T0 + timedelta(seconds=1))
    assert again.started == [] and again.node is None


def test_image_pull_error_fails_after_the_configured_time_naming_the_image() -> None:
    progress = Progress()
    task = make_task()
    first = status.assess(task, observed("pull-error"), progress, SETTINGS, T0)
    assert isinstance(first.verdict, Going)
    assert first.verdict.recheck_after == 60
    later = status.assess(task, observed("pull-error"), progress, SETTINGS, T0 + timedelta(seconds=30))
    assert isinstance(later.verdict, Going) and later.verdict.recheck_after == 30
    end = ended(status.assess(task, observed("pull-error"), progress, SETTINGS, T0 + timedelta(seconds=61)).verdict)
    assert end.state == State.SYSTEM_ERROR
    assert end.reason is not None
    assert end.reason.startswith("image localhost/nope:1 (executor 0) could not be pulled: ")
    assert "connection refused" in end.reason


def test_back_off_keeps_the_kubelets_first_explanation() -> None:
    progress = Progress()
    task = make_task()
    status.assess(task, observed("pull-error"), progress, SETTINGS, T0)
    backoff = observed("pull-error")
    waiting = backoff.pods[0]["status"]["initContainerStatuses"][1]["state"]["waiting"]
    waiting.update(reason="ImagePullBackOff", message='Back-off pulling image "localhost/nope:1"')
    end = ended(status.assess(task, backoff, progress, SETTINGS, T0 + timedelta(seconds=90)).verdict)
    assert end.reason is not None and "connection refused" in end.reason


def test_a_pull_that_recovers_restarts_the_clock() -> None:
    progress = Progress()
    task = make_task()
    status.assess(task, observed("pull-error"), progress, SETTINGS, T0)
    pulled = observed("pull-error")
    pulled.pods[0]["status"]["initContainerStatuses"][1]["state"] = {"running": {"startedAt": "x"}}
    assert isinstance(status.assess(task, pulled, progress, SETTINGS, T0 + timedelta(seconds=30)).verdict, Going)
    again = status.assess(task, observed("pull-error"), progress, SETTINGS, T0 + timedelta(seconds=70))
    assert isinstance(again.verdict, Going) and again.verdict.recheck_after == 60


def test_never_pull_fails_at_once() -> None:
    end = ended(status.assess(make_task(), observed("never-pull"), Progress(), SETTINGS, T0).verdict)
    assert end.state == State.SYSTEM_ERROR
    assert end.reason == (
        "image localhost/nope:1 (executor 0) could not be pulled: ErrImageNeverPull: "
        'Container image "localhost/nope:1" is not present with pull policy of Never'
    )


def test_invalid_image_name_fails_at_once() -> None:
    obs = observed("pull-error")
    obs.pods[0]["status"]["initContainerStatuses"][1]["state"]["waiting"] = {
        "reason": "InvalidImageName",
        "message": 'Failed to apply default image tag "Bad Image": invalid reference format',
    }
    end = ended(status.assess(make_task(), obs, Progress(), SETTINGS, T0).verdict)
    assert end.state == State.SYSTEM_ERROR and end.reason is not None and "invalid reference format" in end.reason


def test_container_that_cannot_be_created_fails_after_the_pull_timeout() -> None:
    obs = observed("pull-error")
    obs.pods[0]["status"]["initContainerStatuses"][1]["state"]["waiting"] = {
        "reason": "CreateContainerConfigError",
        "message": 'secret "creds" not found',
    }
    progress = Progress()
    assert isinstance(status.assess(make_task(), obs, progress, SETTINGS, T0).verdict, Going)
    end = ended(status.assess(make_task(), obs, progress, SETTINGS, T0 + timedelta(seconds=60)).verdict)
    assert end.state == State.SYSTEM_ERROR and end.reason is not None and 'secret "creds" not found' in end.reason


def test_unschedulable_fails_with_the_schedulers_message_after_the_timeout() -> None:
    progress = Progress()
    first = status.assess(make_task(), observed("unschedulable"), progress, SETTINGS, T0)
    assert isinstance(first.verdict, Going) and first.verdict.recheck_after == 120
    end = ended(
        status.assess(make_task(), observed("unschedulable"), progress, SETTINGS, T0 + timedelta(seconds=121)).verdict
    )
    assert end.state == State.SYSTEM_ERROR
    assert end.reason == "no node could run the task's pod for 120 s: 0/1 nodes are available: 1 Insufficient cpu."


def test_oom_killed_executor_is_an_executor_error_saying_so() -> None:
    progress = Progress()
    result = status.assess(make_task(ram_gb=0.03125), observed("oom"), progress, SETTINGS, T0)
    assert result.started == [ExecutorStarted(0, "2026-11-21T06:28:58Z")]
    assert isinstance(result.verdict, Failed)
    finished = result.verdict.observations[0]
    assert isinstance(finished, ExecutorFinished) and finished.index == 0 and finished.log.exit_code == 137
    end = ended(result.verdict)
    assert end.state == State.EXECUTOR_ERROR
    assert end.reason == "executor 0 was killed for exceeding its memory limit (ram_gb=0.03125)"


def test_stage_in_failure_is_a_system_error_with_its_message() -> None:
    end = ended(status.assess(make_task(), observed("stage-in-failed"), Progress(), SETTINGS, T0).verdict)
    assert end.state == State.SYSTEM_ERROR
    assert end.reason == "staging the inputs failed: could not download http://x/y: 404 Not Found"


def test_executor_container_that_fails_on_its_own_is_a_system_error() -> None:
    obs = observed("oom")
    term = obs.pods[0]["status"]["initContainerStatuses"][1]["state"]["terminated"]
    term.update(reason="Error", exitCode=128, message="exec /ktes/tools/entrypoint: exec format error")
    end = ended(status.assess(make_task(), obs, Progress(), SETTINGS, T0).verdict)
    assert end.state == State.SYSTEM_ERROR
    assert end.reason is not None and "executor 0 (image localhost/busybox:test)" in end.reason
    assert "exec format error" in end.reason


def test_workspace_over_its_size_is_an_executor_error() -> None:
    end = ended(status.assess(make_task(disk_gb=0.001), observed("evicted-disk"), Progress(), SETTINGS, T0).verdict)
    assert end.state == State.EXECUTOR_ERROR
    assert end.reason == (
        "the task's work directory went over its disk limit of 0.001 GB (disk_gb), so Kubernetes stopped the "
        'task: Usage of EmptyDir volume "workspace" exceeds the limit "1Mi".'
    )


def test_a_container_over_its_ephemeral_storage_limit_is_an_executor_error() -> None:
    obs = observed("evicted-disk")
    obs.pods[0]["status"]["message"] = 'Container executor-0 exceeded its local ephemeral storage limit "1Mi". '
    end = ended(status.assess(make_task(), obs, Progress(), SETTINGS, T0).verdict)
    assert end.state == State.EXECUTOR_ERROR
    assert end.reason == (
        "the task used more disk than it asked for (no disk_gb set) and Kubernetes stopped the task: "
        'Container executor-0 exceeded its local ephemeral storage limit "1Mi".'
    )


def test_eviction_for_node_pressure_is_preemption() -> None:
    obs = observed("evicted-disk")
    obs.pods[0]["status"]["message"] = "The node was low on resource: memory. "
    end = ended(status.assess(make_task(), obs, Progress(), SETTINGS, T0).verdict)
    assert end.state == State.PREEMPTED
    assert end.reason == "the pod was taken off vm (Evicted): The node was low on resource: memory."


def test_job_deadline_is_a_system_error_naming_it() -> None:
    end = ended(status.assess(make_task(), observed("deadline"), Progress(), SETTINGS, T0).verdict)
    assert end.state == State.SYSTEM_ERROR
    assert end.reason == "the task ran longer than its deadline of 8 s (deadline_seconds) and was stopped"


def test_pod_deleted_by_someone_else_is_preemption_even_if_the_job_made_another() -> None:
    pods = recorded("pod-deleted")
    obs = Observed(
        job={"metadata": {"name": "j"}, "status": {}}, pods=[pods["replacement"]], deleted_pods=[pods["deleted"]]
    )
    progress = Progress()
    first = status.assess(make_task(), obs, progress, SETTINGS, T0)
    assert isinstance(first.verdict, Going) and first.verdict.recheck_after == status.LOST_GRACE_SECONDS
    end = ended(status.assess(make_task(), obs, progress, SETTINGS, T0 + timedelta(seconds=6)).verdict)
    assert end.state == State.PREEMPTED
    assert end.reason is not None and pods["deleted"]["metadata"]["name"] in end.reason


def test_pod_being_deleted_while_the_deadline_passes_is_the_deadline() -> None:
    pods = recorded("pod-deleted")
    obs = Observed(job=recorded("deadline")["job"], pods=[pods["deleting"]])
    progress = Progress()
    status.assess(make_task(), Observed(pods=[pods["deleting"]]), progress, SETTINGS, T0)
    end = ended(status.assess(make_task(), obs, progress, SETTINGS, T0 + timedelta(seconds=1)).verdict)
    assert end.state == State.SYSTEM_ERROR and end.reason is not None and "deadline" in end.reason


def test_job_deleted_without_a_pod_is_a_system_error() -> None:
    end = ended(status.assess(make_task(), Observed(job_gone=True), Progress(), SETTINGS, T0).verdict)
    assert end.state == State.SYSTEM_ERROR and end.reason == "the task's Job was deleted before the task finished"


def test_job_that_never_makes_a_pod_fails_after_the_timeout() -> None:
    obs = Observed(job={"metadata": {"name": "j"}, "status": {}})
    progress = Progress()
    assert isinstance(status.assess(make_task(), obs, progress, SETTINGS, T0).verdict, Going)
    end = ended(status.assess(make_task(), obs, progress, SETTINGS, T0 + timedelta(seconds=120)).verdict)
    assert end.state == State.SYSTEM_ERROR and end.reason is not None and "made no pod" in end.reason


def test_pod_that_never_starts_fails_after_the_timeout() -> None:
    pod = copy.deepcopy(recorded("pod-deleted")["running"])
    for item in [*pod["status"].get("initContainerStatuses", []), *pod["status"].get("containerStatuses", [])]:
        item["state"] = {"waiting": {"reason": "PodInitializing"}}
    pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    progress = Progress()
    assert isinstance(status.assess(make_task(), Observed(pods=[pod]), progress, SETTINGS, T0).verdict, Going)
    end = ended(
        status.assess(make_task(), Observed(pods=[pod]), progress, SETTINGS, T0 + timedelta(seconds=121)).verdict
    )
    assert (
        end.state == State.SYSTEM_ERROR and end.reason is not None and "did not start on vm within 120 s" in end.reason
    )


def test_finished_pod_asks_for_the_logs() -> None:
    verdict = status.assess(make_task(), observed("complete"), Progress(), SETTINGS, T0).verdict
    assert isinstance(verdict, PodEnded)
    assert verdict.pod_name.startswith("complete-") and verdict.stage_out_code == 0


def test_a_pod_is_not_over_while_a_container_still_runs() -> None:
    pod = copy.deepcopy(recorded("complete")["pods"][0])
    statuses = pod["status"]["containerStatuses"]
    statuses[0]["state"] = {"running": {"startedAt": "2026-11-21T06:29:03Z"}}
    pod["status"]["phase"] = "Running"
    assert isinstance(status.assess(make_task(), Observed(pods=[pod]), Progress(), SETTINGS, T0).verdict, Going)


def test_stage_in_failure_naming_the_input_is_said_as_the_local_backend_says_it() -> None:
    pod = copy.deepcopy(recorded("stage-in-failed")["pods"][0])
    for item in pod["status"]["initContainerStatuses"]:
        if item["name"] == "stage-in":
            item["state"]["terminated"]["message"] = "input http://h/x.txt: HTTP 404 Not Found"
    end = ended(status.assess(make_task(), Observed(pods=[pod]), Progress(), SETTINGS, T0).verdict)
    assert (end.state, end.reason) == (State.SYSTEM_ERROR, "input http://h/x.txt: HTTP 404 Not Found")


# --- the logs ---------------------------------------------------------------------------------------


def result(index: int, code: int, **more: Any) -> ExecutorReport:
    times = {"start_time": f"2026-11-21T06:3{index}:00Z", "end_time": f"2026-11-21T06:3{index}:05Z"}
    return ExecutorReport(index=index, exit_code=code, **times, **more, stdout="o", stderr="e")


LOG = 'hello\nKTES-REPORT {"uploaded":true,"outputs":[],"error":"x"}\n'
RESULT_LOG = (
    "ktes-entrypoint: something on stderr\n"
    'KTES-RESULT {"index":0,"exit_code":3,"start_time":"2024-01-01T00:00:00Z","end_time":"2024-01-01T00:00:01Z",'
    '"oom_killed":false,"error":null,"stdout":"hi\\n\\ufffd","stderr":""}\n'
)


def test_parse_report_takes_the_last_marker_line() -> None:
    report = results.parse_report(LOG)
    assert report is not None and report.uploaded and report.error == "x"
    older = 'KTES-REPORT {"uploaded":false}\n'
    parsed = results.parse_report(older + LOG + "trailing noise\n")
    assert parsed is not None and parsed.uploaded
    assert results.parse_report("no report here\n") is None
    assert results.parse_report("KTES-REPORT {broken\n") is None


def test_parse_result_reads_the_helpers_line() -> None:
    got = results.parse_result(RESULT_LOG)
    assert got is not None and (got.index, got.exit_code, got.stdout, got.stderr) == (0, 3, "hi\n\ufffd", "")
    assert results.parse_result("") is None  # the executor never ran (an earlier one failed)
    assert results.parse_result("KTES-RESULT {broken\n") is None


def test_results_with_all_executors_ok_complete_with_outputs() -> None:
    task = make_task(2)
    task.outputs = [Output(path="/out/*.txt", url="http://h/o/")]
    outputs = [OutputFileLog(url="http://h/o/a.txt", path="/out/a.txt", size_bytes="3")]
    progress = Progress(started={0})
    report = StageOutReport(uploaded=True, outputs=outputs)
    got = status.final_observations(task, [result(0, 0), result(1, 0)], report, progress, T0)
    assert [type(o) for o in got] == [ExecutorFinished, ExecutorStarted, ExecutorFinished, OutputsUploaded, Ended]
    first = got[0]
    assert isinstance(first, ExecutorFinished)
    assert first.log.stdout == "o" and first.log.stderr == "e" and first.log.start_time == "2026-11-21T06:30:00Z"
    assert got[1] == ExecutorStarted(1, "2026-11-21T06:31:00Z")
    assert got[3] == OutputsUploaded(outputs)
    last = got[-1]
    assert isinstance(last, Ended) and last.state == State.COMPLETE and last.reason is None


def test_a_task_without_outputs_completes_without_stage_out() -> None:
    got = status.final_observations(make_task(1), [result(0, 0)], None, Progress(), T0)
    assert [type(o) for o in got] == [ExecutorStarted, ExecutorFinished, Ended]
    last = got[-1]
    assert isinstance(last, Ended) and last.state == State.COMPLETE


def test_ignored_failure_is_logged_and_the_task_completes() -> None:
    task = make_task(2)
    task.executors[0].ignore_error = True
    got = status.final_observations(task, [result(0, 3), result(1, 0)], None, Progress(), T0)
    assert SystemLog("executor 0 exited with code 3 (ignored: ignore_error is set)") in got
    codes = [o.log.exit_code for o in got if isinstance(o, ExecutorFinished)]
    assert codes == [3, 0]
    last = got[-1]
    assert isinstance(last, Ended) and last.state == State.COMPLETE


def test_failed_executor_stops_the_task_with_its_exit_code() -> None:
    got = status.final_observations(make_task(2), [result(0, 2)], StageOutReport(), Progress(), T0)
    last = got[-1]
    assert isinstance(last, Ended) and last.state == State.EXECUTOR_ERROR
    assert last.reason == "executor 0 exited with code 2"
    assert not any(isinstance(o, OutputsUploaded) for o in got)


def test_report_of_an_oom_kill_says_so() -> None:
    last = status.final_observations(make_task(ram_gb=1), [result(0, 137, oom_killed=True)], None, Progress(), T0)[-1]
    assert isinstance(last, Ended) and last.state == State.EXECUTOR_ERROR
    assert last.reason == "executor 0 was killed for exceeding its memory limit (ram_gb=1)"


def test_command_that_cannot_start_is_explained() -> None:
    results = [result(0, 127, error="exec nosuch: No such file or directory")]
    last = status.final_observations(make_task(), results, None, Progress(), T0)[-1]
    assert isinstance(last, Ended) and last.state == State.EXECUTOR_ERROR
    assert last.reason == "executor 0 could not start its command: exec nosuch: No such file or directory"


def test_upload_error_is_a_system_error() -> None:
    report = StageOutReport(uploaded=True, error="uploading /out/a.txt to http://h/o/a.txt failed: 403")
    last = status.final_observations(make_task(), [result(0, 0)], report, Progress(), T0)[-1]
    assert isinstance(last, Ended) and last.state == State.SYSTEM_ERROR
    assert last.reason == "uploading /out/a.txt to http://h/o/a.txt failed: 403"


def test_stage_out_without_report_is_a_system_error_with_its_words() -> None:
    ended_ = PodEnded("p", 1, "Traceback: boom")
    got = status.no_report(ended_, "line\n", T0)
    last = got[-1]
    assert isinstance(last, Ended) and last.state == State.SYSTEM_ERROR
    assert last.reason == "stage-out ended (exit code 1) without a report: Traceback: boom"


def test_disk_pressure_on_the_node_is_preemption_not_the_tasks_fault() -> None:
    obs = observed("evicted-disk")
    obs.pods[0]["status"]["message"] = "The node was low on resource: ephemeral-storage. "
    assert ended(status.assess(make_task(), obs, Progress(), SETTINGS, T0).verdict).state == State.PREEMPTED
    obs.pods[0]["status"]["message"] = 'Container executor-0 exceeded its local ephemeral storage limit "1Gi". '
    assert ended(status.assess(make_task(), obs, Progress(), SETTINGS, T0).verdict).state == State.EXECUTOR_ERROR


# --- recorded with the containers started together (no init containers) -----------------------------


def test_all_containers_running_means_only_executor_0_has_started() -> None:
    """executor-1's container runs too, but its helper waits for executor 0's result."""
    progress = Progress()
    judged = status.assess(make_task(2), observed("concurrent-running"), progress, SETTINGS, T0)
    assert [s.index for s in judged.started] == [0]
    assert isinstance(judged.verdict, Going)


def test_a_pod_of_executors_alone_ends_without_stage_out() -> None:
    verdict = status.assess(make_task(2), observed("concurrent-complete"), Progress(), SETTINGS, T0).verdict
    assert isinstance(verdict, PodEnded) and verdict.stage_out_code is None


def test_a_regular_stage_in_container_that_fails_ends_the_task_with_its_sentence() -> None:
    end = ended(status.assess(make_task(), observed("concurrent-stage-in-failed"), Progress(), SETTINGS, T0).verdict)
    assert end.state == State.SYSTEM_ERROR
    assert end.reason is not None and end.reason.startswith("input http://192.0.2.2:1/nothing/: ")


def test_a_termination_message_is_read_only_when_it_is_exactly_the_line() -> None:
    """The executor's command ran in the container whose message this is: nothing around the line, no cut
    line, no other executor's index, no other types than the helper's is taken (the log is read instead)."""
    line = RESULT_LOG.splitlines()[-1]
    got = results.parse_result_message(line + "\n", 0)
    assert got is not None and got == results.parse_result(RESULT_LOG)
    assert results.parse_result_message(line, 0) == got
    for bad in (
        "",
        line[:-1],
        "x" + line,
        line + "\nmore",
        "hello\n" + line,
        line.replace("KTES-RESULT", "KTES-REPORT"),
    ):
        assert results.parse_result_message(bad, 0) is None, bad
    assert results.parse_result_message(line, 1) is None
    assert results.parse_result_message(line.replace('"exit_code":3', '"exit_code":"3"'), 0) is None
    assert results.parse_result_message(line.replace('"oom_killed":false', '"oom_killed":0'), 0) is None


def test_a_report_message_is_read_only_when_it_is_exactly_the_line() -> None:
    line = LOG.splitlines()[-1]
    got = results.parse_report_message(line + "\n")
    assert got is not None and got == results.parse_report(LOG)
    assert results.parse_report_message(LOG) is None  # text before it
    assert results.parse_report_message(line[:-2]) is None
    assert results.parse_report_message("stage-out: upload failed") is None


def test_the_kubelets_share_of_termination_messages() -> None:
    assert [results.termination_limit(n) for n in (0, 1, 3, 4, 5, 12, 100)] == [4096, 4096, 4096, 3072, 2457, 1024, 122]
