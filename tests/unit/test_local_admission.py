"""How many tasks the local backend lets run at once."""

from __future__ import annotations

from ktes.backends.local.admission import Admission
from ktes.tes.models import Executor, Resources, Task


def task(cpus: int | None = None, ram: float | None = None) -> Task:
    return Task(executors=[Executor(image="i", command=["true"])], resources=Resources(cpu_cores=cpus, ram_gb=ram))


def test_cpus_bound_the_number_of_tasks() -> None:
    room = Admission(max_cpus=2, max_ram_gb=8)
    assert room.reserve("a", task()) and room.reserve("b", task())
    assert not room.reserve("c", task())
    room.release("a")
    assert room.reserve("c", task())


def test_ram_is_reserved_too() -> None:
    room = Admission(max_cpus=8, max_ram_gb=4)
    assert room.reserve("a", task(ram=3))
    assert not room.reserve("b", task(ram=2))
    assert room.reserve("c", task(ram=1))


def test_a_task_larger_than_the_machine_is_let_through_to_fail() -> None:
    room = Admission(max_cpus=2, max_ram_gb=4)
    assert room.reserve("huge", task(cpus=64))
    assert room.used.cpus == 0
    assert "local_max_cpus" in (room.too_big(task(cpus=64)) or "")
    assert "local_max_ram_gb" in (room.too_big(task(ram=100)) or "")
    assert room.too_big(task(cpus=2, ram=4)) is None


def test_adopted_tasks_are_held_even_when_full() -> None:
    room = Admission(max_cpus=1, max_ram_gb=4)
    room.hold("a", task())
    room.hold("b", task())
    assert room.used.cpus == 2
    assert not room.reserve("c", task())
