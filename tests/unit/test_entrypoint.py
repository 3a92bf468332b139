"""The static executor helper (tools/entrypoint), run directly: what an executor in a task Pod goes through."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ktes.run.result import RESULT_MARKER, ExecutorReport, ExecutorResult, parse_result_message

PY = sys.executable


def run_helper(
    entrypoint: Path, state: Path, index: int, command: list[str], *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [str(entrypoint), "--index", str(index), "--state-dir", str(state), *options, "--", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def result(state: Path, index: int) -> ExecutorResult:
    return ExecutorResult.model_validate_json((state / f"{index}.json").read_text())


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def test_success_records_code_times_and_separate_streams(entrypoint_binary: Path, state: Path) -> None:
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
    proc = run_helper(entrypoint_binary, state, 0, [PY, "-c", code])
    assert proc.returncode == 0
    res = result(state, 0)
    assert (res.index, res.exit_code, res.oom_killed, res.error) == (0, 0, False, None)
    start, end = datetime.fromisoformat(res.start_time), datetime.fromisoformat(res.end_time)
    assert start.utcoffset() is not None and start.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert start <= end
    assert res.start_time.endswith("Z") and "." in res.start_time
    assert (state / "0.stdout").read_text() == "to stdout\n"
    assert (state / "0.stderr").read_text() == "to stderr\n"
    assert not (state / "stop").exists()


def test_failure_is_recorded_and_stops_later_executors(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    proc = run_helper(entrypoint_binary, state, 0, [PY, "-c", "raise SystemExit(3)"])
    assert proc.returncode == 0  # the result line tells the real code
    assert result(state, 0).exit_code == 3
    assert (state / "stop").exists()

    marker = tmp_path / "ran"
    proc = run_helper(entrypoint_binary, state, 1, [PY, "-c", f"open({str(marker)!r}, 'w')"])
    assert proc.returncode == 0
    assert not marker.exists()
    assert not (state / "1.json").exists()
    assert not (state / "1.stdout").exists()


def test_ignore_error_keeps_the_code_and_lets_the_run_go_on(entrypoint_binary: Path, state: Path) -> None:
    proc = run_helper(entrypoint_binary, state, 0, [PY, "-c", "raise SystemExit(1)"], "--ignore-error")
    assert proc.returncode == 0
    assert result(state, 0).exit_code == 1
    assert not (state / "stop").exists()
    run_helper(entrypoint_binary, state, 1, [PY, "-c", "print('second')"])
    assert result(state, 1).exit_code == 0
    assert (state / "1.stdout").read_text() == "second\n"


def test_killed_by_a_signal_is_128_plus_the_signal(entrypoint_binary: Path, state: Path) -> None:
    run_helper(entrypoint_binary, state, 0, [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert result(state, 0).exit_code == 128 + signal.SIGKILL
    assert (state / "stop").exists()


def test_sigterm_is_passed_on_to_the_command(entrypoint_binary: Path, state: Path) -> None:
    code = "import time; print('ready', flush=True); time.sleep(60)"
    argv = [str(entrypoint_binary), "--index", "0", "--state-dir", str(state), "--", PY, "-c", code]
    proc = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 30
        while not (state / "0.stdout").exists() or "ready" not in (state / "0.stdout").read_text():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert result(state, 0).exit_code == 128 + signal.SIGTERM


def test_stdin_stdout_stderr_files(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    stdin = tmp_path / "in.txt"
    stdin.write_text("hello from a file\n")
    out, err = tmp_path / "deep" / "er" / "out.txt", tmp_path / "other" / "err.txt"
    code = "import sys; data = sys.stdin.read(); sys.stdout.write(data.upper()); sys.stderr.write('e')"
    opts = ["--stdin", str(stdin), "--stdout", str(out), "--stderr", str(err)]
    run_helper(entrypoint_binary, state, 0, [PY, "-c", code], *opts)
    assert result(state, 0).exit_code == 0
    assert out.read_text() == "HELLO FROM A FILE\n"
    assert err.read_text() == "e"
    assert not (state / "0.stdout").exists()


def test_stdin_is_empty_by_default(entrypoint_binary: Path, state: Path) -> None:
    run_helper(entrypoint_binary, state, 0, [PY, "-c", "import sys; print(len(sys.stdin.read()))"])
    assert (state / "0.stdout").read_text() == "0\n"


def test_a_command_that_cannot_start(entrypoint_binary: Path, state: Path) -> None:
    proc = run_helper(entrypoint_binary, state, 0, ["no-such-tool-here", "x"])
    assert proc.returncode == 0
    res = result(state, 0)
    assert res.exit_code == 127
    assert res.error == "exec no-such-tool-here: No such file or directory"
    assert "no-such-tool-here" in (state / "0.stderr").read_text()
    assert (state / "stop").exists()


def test_a_missing_stdin_file(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    run_helper(entrypoint_binary, state, 0, [PY, "-c", "pass"], "--stdin", str(tmp_path / "missing"))
    res = result(state, 0)
    assert res.exit_code == 127
    assert res.error is not None and "stdin" in res.error and "missing" in res.error


def test_commands_are_found_on_path_and_get_their_arguments_verbatim(entrypoint_binary: Path, state: Path) -> None:
    run_helper(entrypoint_binary, state, 0, ["echo", "a  b", "$HOME", "*"])
    assert (state / "0.stdout").read_text() == "a  b $HOME *\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--state-dir", "/tmp", "--", "true"],
        ["--index", "0", "--", "true"],
        ["--index", "x", "--state-dir", "/tmp", "--", "true"],
        ["--index", "0", "--state-dir", "/tmp", "--"],
        ["--index", "0", "--state-dir", "/tmp", "--bogus", "--", "true"],
    ],
)
def test_usage_errors(entrypoint_binary: Path, argv: list[str]) -> None:
    proc = subprocess.run([str(entrypoint_binary), *argv], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_oom_kill_counter_that_goes_up_is_reported(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    """The count is read before and after; here the command itself bumps a stand-in file, then dies."""
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    events = cgroup / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    code = f"import os, signal; open({str(events)!r}, 'w').write('oom 2\\noom_kill 2\\n'); os.kill(os.getpid(), 9)"
    env = {**os.environ, "KTES_ENTRYPOINT_CGROUP_DIR": str(cgroup)}
    run_helper(entrypoint_binary, state, 0, [PY, "-c", code], "--ignore-error", env=env)
    res = result(state, 0)
    assert (res.exit_code, res.oom_killed) == (137, True)

    run_helper(entrypoint_binary, state, 1, [PY, "-c", "pass"], env=env)
    assert result(state, 1).oom_killed is False


V1_MEMORY = Path("/sys/fs/cgroup/memory")


@pytest.fixture
def memory_cgroup() -> Iterator[Path]:
    """A real cgroup v1 memory cgroup of 48 MiB below this process's own (needs root and cgroup v1 memory)."""
    if not (V1_MEMORY / "memory.oom_control").exists() or os.geteuid() != 0:
        pytest.skip("needs root and the cgroup v1 memory controller")
    own = next(
        line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines() if ":memory:" in line
    )
    path = V1_MEMORY / own.strip().lstrip("/") / f"ktes-test-{uuid.uuid4().hex[:8]}"  # below our own cgroup
    path.mkdir()
    try:
        (path / "memory.limit_in_bytes").write_text(str(48 * 1024 * 1024))
        swap = path / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(48 * 1024 * 1024))
        yield path
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                path.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_a_real_oom_kill_is_detected(entrypoint_binary: Path, state: Path, memory_cgroup: Path) -> None:
    procs = memory_cgroup / "cgroup.procs"
    argv = [str(entrypoint_binary), "--index", "0", "--state-dir", str(state), "--"]
    argv += [PY, "-c", "b = bytearray(300 * 1024 * 1024)"]
    env = {**os.environ, "KTES_ENTRYPOINT_CGROUP_DIR": str(memory_cgroup)}
    proc = subprocess.run(
        argv, env=env, timeout=60, preexec_fn=lambda: procs.write_text(str(os.getpid())), capture_output=True
    )
    assert proc.returncode == 0
    res = result(state, 0)
    assert res.exit_code == 137
    assert res.oom_killed is True


def test_stdout_and_stderr_to_one_file_interleave(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    both = tmp_path / "both.txt"
    code = (
        "import sys\nfor i in range(3):\n print(f'out {i}', flush=True); print(f'err {i}', file=sys.stderr, flush=True)"
    )
    run_helper(entrypoint_binary, state, 0, [PY, "-c", code], "--stdout", str(both), "--stderr", str(both))
    assert both.read_text().splitlines() == ["out 0", "err 0", "out 1", "err 1", "out 2", "err 2"]


# --- the order: every container of the Pod starts at once, the helper waits for its turn -------------


def result_line(stdout: str) -> ExecutorReport:
    """The helper's last stdout line, what the engine reads from the executor container's log."""
    last = stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith(RESULT_MARKER)
    return ExecutorReport.model_validate(json.loads(last[len(RESULT_MARKER) :]))


def start_waiting(
    entrypoint: Path, state: Path, index: int, command: list[str], *options: str
) -> subprocess.Popen[str]:
    argv = [str(entrypoint), "--index", str(index), "--state-dir", str(state), *options, "--", *command]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def polling(proc: subprocess.Popen[str], within: float = 30.0) -> None:
    """Until the helper sits in its wait loop (its signal handlers are set by then)."""
    deadline = time.monotonic() + within
    wchan = Path(f"/proc/{proc.pid}/wchan")
    while "nanosleep" not in wchan.read_text():
        assert proc.poll() is None, "the helper ended instead of waiting"
        assert time.monotonic() < deadline, "the helper never started waiting"
        time.sleep(0.01)


def test_an_executor_waits_for_stage_in_and_the_one_before(entrypoint_binary: Path, state: Path) -> None:
    waits = ["--wait", "stage-in.done", "--wait", "0.json"]
    second = start_waiting(entrypoint_binary, state, 1, [PY, "-c", "print('second')"], *waits)
    first = start_waiting(entrypoint_binary, state, 0, [PY, "-c", "print('first')"], "--wait", "stage-in.done")
    try:
        polling(first)
        polling(second)
        released = datetime.now(UTC)
        (state / "stage-in.done").touch()
        out0, _ = first.communicate(timeout=30)
        out1, _ = second.communicate(timeout=30)
    finally:
        first.kill()
        second.kill()
    # nothing ran before stage-in said so, and the second only after the first
    assert datetime.fromisoformat(result(state, 0).start_time) >= released
    assert result(state, 1).start_time >= result(state, 0).end_time
    assert result_line(out0).stdout == "first\n" and result_line(out1).stdout == "second\n"


@pytest.mark.parametrize("marker", ["stop", "stage-in.failed"])
def test_a_waiting_executor_leaves_when_the_run_is_over(entrypoint_binary: Path, state: Path, marker: str) -> None:
    waiting = start_waiting(entrypoint_binary, state, 1, [PY, "-c", "print('ran')"], "--wait", "0.json")
    try:
        polling(waiting)
        (state / marker).write_text("why\n")
        out, _ = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0
    assert out == "" and not (state / "1.json").exists() and not (state / "1.stdout").exists()


def test_sigterm_ends_a_waiting_helper(entrypoint_binary: Path, state: Path) -> None:
    waiting = start_waiting(entrypoint_binary, state, 0, ["true"], "--wait", "stage-in.done")
    try:
        polling(waiting)
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        waiting.kill()
    assert not (state / "0.json").exists()


def test_the_stop_marker_is_there_before_the_result(entrypoint_binary: Path, state: Path) -> None:
    """Whoever sees executor i's result also sees that the run stops, so executor i+1 never runs."""
    proc = run_helper(entrypoint_binary, state, 0, [PY, "-c", "raise SystemExit(5)"])
    assert (state / "stop").stat().st_mtime_ns <= (state / "0.json").stat().st_mtime_ns
    line = result_line(proc.stdout)
    assert (line.exit_code, line.index) == (5, 0)


def test_result_line_holds_json_safe_tails_of_both_streams(entrypoint_binary: Path, state: Path) -> None:
    code = (
        "import sys; o = sys.stdout.buffer; "
        "o.write(b'x' * 100 + b'tab\\there \"quoted\" back\\\\slash \\x00nul \\x1besc \\xff bad \\xe2\\x82\\xac end'); "
        "sys.stderr.write('only err\\n')"
    )
    proc = run_helper(entrypoint_binary, state, 0, [PY, "-c", code], "--tail-bytes", "60")
    line = result_line(proc.stdout)
    written = b"x" * 100 + b'tab\there "quoted" back\\slash \x00nul \x1besc \xff bad \xe2\x82\xac end'
    assert line.stdout == written[-60:].decode("utf-8", errors="replace")
    assert line.stderr == "only err\n"
    assert (line.exit_code, line.oom_killed, line.error) == (0, False, None)
    assert line.start_time == result(state, 0).start_time


def test_a_cut_inside_a_character_drops_its_rest(entrypoint_binary: Path, state: Path) -> None:
    code = "import sys; sys.stdout.write('\u20ac' * 10)"  # 3 bytes each: 10 bytes cut one in the middle
    proc = run_helper(entrypoint_binary, state, 0, [PY, "-c", code], "--tail-bytes", "10")
    assert result_line(proc.stdout).stdout == "\u20ac" * 3


def test_tails_come_from_the_users_files(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    proc = run_helper(entrypoint_binary, state, 0, ["echo", "to file"], "--stdout", str(out))
    assert result_line(proc.stdout).stdout == "to file\n"
    nothing = run_helper(entrypoint_binary, state, 1, ["echo", "x"], "--tail-bytes", "0")
    assert result_line(nothing.stdout).stdout == ""


# --- the reader (--read): live output, read inside the executor's container ---------------------------------


def read_stream(entrypoint: Path, state: Path, helper: subprocess.Popen[str], stream: str, *options: str) -> list[str]:
    return [
        str(entrypoint),
        "--read",
        stream,
        "--index",
        "0",
        "--state-dir",
        str(state),
        "--pid",
        str(helper.pid),
        *options,
    ]


def test_a_reader_follows_the_executors_own_stream_whatever_the_task_does_to_its_path(
    entrypoint_binary: Path, state: Path, tmp_path: Path
) -> None:
    """The task swaps its stdout file for a link to another file: the reader still sends only what the
    command wrote, live, and ends with the executor."""
    go = tmp_path / "go"
    secret = tmp_path / "not-yours"
    secret.write_text("someone else's\n")
    code = (
        "import os, sys, time\n"
        f"os.rename({str(state / '0.stdout')!r}, {str(state / 'moved')!r})\n"
        f"os.symlink({str(secret)!r}, {str(state / '0.stdout')!r})\n"
        "print('one', flush=True); print('warn', file=sys.stderr, flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "print('two', flush=True)\n"
    )
    helper = start_waiting(entrypoint_binary, state, 0, [PY, "-c", code])
    reader = subprocess.Popen(
        read_stream(entrypoint_binary, state, helper, "stdout", "--follow"), stdout=subprocess.PIPE
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline() == b"one\n"  # the command waits for `go`: this came live
        errors = subprocess.run(
            read_stream(entrypoint_binary, state, helper, "stderr"), capture_output=True, timeout=30
        )
        assert (errors.returncode, errors.stdout) == (0, b"warn\n")
        from_two = subprocess.run(
            read_stream(entrypoint_binary, state, helper, "stdout", "--offset", "2"), capture_output=True, timeout=30
        )
        assert (from_two.returncode, from_two.stdout) == (0, b"e\n")
        go.touch()
        assert reader.stdout.read() == b"two\n"
        assert reader.wait(timeout=30) == 0
        helper.communicate(timeout=30)
    finally:
        reader.kill()
        helper.kill()
    assert helper.returncode == 0
    # the helper has gone: a reader now finds nothing (the result line holds the output)
    after = subprocess.run(read_stream(entrypoint_binary, state, helper, "stdout"), capture_output=True, timeout=30)
    assert after.returncode in (3, 4) and after.stdout == b""


def test_a_reader_waits_for_the_executor_to_start_and_leaves_when_the_run_is_over(
    entrypoint_binary: Path, state: Path
) -> None:
    helper = start_waiting(entrypoint_binary, state, 0, ["echo", "never"], "--wait", "stage-in.done")
    try:
        polling(helper)
        now = subprocess.run(read_stream(entrypoint_binary, state, helper, "stdout"), capture_output=True, timeout=30)
        assert (now.returncode, now.stdout) == (3, b"")  # not started: nothing to read yet
        follower = subprocess.Popen(read_stream(entrypoint_binary, state, helper, "stdout", "--follow"))
        polling_reader = Path(f"/proc/{follower.pid}/wchan")
        deadline = time.monotonic() + 30
        while "nanosleep" not in polling_reader.read_text():  # it waits for the executor to start
            assert follower.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        (state / "stage-in.failed").write_text("no input\n")
        assert follower.wait(timeout=30) == 3
        helper.communicate(timeout=30)
    finally:
        helper.kill()


@pytest.mark.parametrize(
    "argv",
    [["--read", "stdin", "--index", "0", "--state-dir", "/tmp"], ["--read", "stdout", "--index", "0"]],
    ids=["not-a-stream", "no-state-dir"],
)
def test_reader_usage_errors(entrypoint_binary: Path, argv: list[str]) -> None:
    done = subprocess.run([str(entrypoint_binary), *argv], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage: entrypoint --read" in done.stderr


# --- the termination message ----------------------------------------------------------------------


def message_file(tmp_path: Path, text: str = "") -> Path:
    """A container's termination message file, as the kubelet makes it (it exists before the container)."""
    path = tmp_path / "termination-log"
    path.write_text(text)
    return path


def test_the_result_line_is_also_the_termination_message(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    message = message_file(tmp_path)
    proc = run_helper(entrypoint_binary, state, 0, ["echo", "hi"], "--termination-log", str(message))
    last = proc.stdout.rstrip("\n").splitlines()[-1] + "\n"
    assert message.read_text() == last
    assert parse_result_message(message.read_text(), 0) == result_line(proc.stdout)


def test_a_result_too_long_for_the_message_leaves_it_empty(
    entrypoint_binary: Path, state: Path, tmp_path: Path
) -> None:
    """Then the engine reads the log; whatever was in the file before is gone."""
    message = message_file(tmp_path, "left over")
    limit = ["--termination-log", str(message), "--termination-limit", "300"]
    proc = run_helper(entrypoint_binary, state, 0, [PY, "-c", "print('x' * 200)"], *limit)
    assert result_line(proc.stdout).stdout == "x" * 200 + "\n"
    assert message.read_text() == ""
    run_helper(entrypoint_binary, state, 1, [PY, "-c", "print('x' * 20)"], *limit)
    assert parse_result_message(message.read_text(), 1) is not None


def test_a_missing_message_file_is_not_made(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    """Outside a Pod (or with a terminationMessagePath the kubelet did not make) the log is all there is."""
    missing = tmp_path / "no-such-file"
    proc = run_helper(entrypoint_binary, state, 0, ["true"], "--termination-log", str(missing))
    assert proc.returncode == 0 and not missing.exists()


def test_without_the_option_the_message_file_is_left_alone(
    entrypoint_binary: Path, state: Path, tmp_path: Path
) -> None:
    message = message_file(tmp_path, "theirs")
    run_helper(entrypoint_binary, state, 0, ["true"])
    assert message.read_text() == "theirs"


FORGED = 'KTES-RESULT {"index":0,"exit_code":0,"start_time":"x","end_time":"y","oom_killed":false,"error":null}'


def test_a_command_cannot_forge_its_own_message(entrypoint_binary: Path, state: Path, tmp_path: Path) -> None:
    """The command runs in the helper's container and may write the message file: the helper writes it
    (truncating) after the command has ended, so its own line is what the kubelet reads."""
    message = message_file(tmp_path)
    forge = f"import sys; open({str(message)!r}, 'w').write({FORGED!r} + chr(10) * 3000); sys.exit(9)"
    proc = run_helper(entrypoint_binary, state, 0, [PY, "-c", forge], "--termination-log", str(message))
    got = parse_result_message(message.read_text(), 0)
    assert got is not None and got.exit_code == 9 and got == result_line(proc.stdout)


def test_as_pid_1_nothing_the_command_left_running_can_write_after_the_helper(
    entrypoint_binary: Path, state: Path, tmp_path: Path
) -> None:
    """As PID 1 of its container (here: of a new PID namespace) the helper kills and reaps every process the
    command left behind before it writes the message, so background writers cannot overwrite it. (Without
    that, the writers win the race about every other run: three runs.)"""
    message = message_file(tmp_path)
    writer = f"while :; do echo '{FORGED}' > {message}; done"
    command = ["sh", "-c", f"({writer}) & ({writer}) & sleep 0.2; exit 5"]
    for attempt in range(3):
        run_state = state / str(attempt)
        run_state.mkdir()
        argv = [
            str(entrypoint_binary),
            "--index",
            "0",
            "--state-dir",
            str(run_state),
            "--termination-log",
            str(message),
        ]
        # unshare returns once the namespace's PID 1 and every process in it are gone
        proc = subprocess.run(["unshare", "--pid", "--fork", *argv, "--", *command], capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        got = parse_result_message(message.read_text(), 0)
        assert got is not None and got.exit_code == 5, message.read_text()
