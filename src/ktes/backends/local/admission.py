"""How many tasks fit on this machine at once: CPU cores and RAM reserved per task (pure bookkeeping)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ktes.config import Settings
from ktes.tes.models import Task

#: Share of the machine's RAM tasks may reserve when local_max_ram_gb is not set.
DEFAULT_RAM_SHARE = 0.8
GB = 1024**3


def machine_ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (ValueError, OSError):
        return 4.0


@dataclass(frozen=True)
class Request:
    cpus: float
    ram_gb: float


def request_of(task: Task) -> Request:
    """What a task reserves: its cpu_cores (1 when unset) and ram_gb (0 when unset)."""
    resources = task.resources
    cpus = float(resources.cpu_cores) if resources is not None and resources.cpu_cores else 1.0
    ram = float(resources.ram_gb) if resources is not None and resources.ram_gb else 0.0
    return Request(cpus=cpus, ram_gb=ram)


class Admission:
    """Reservations keyed by task id against a CPU and a RAM budget."""

    def __init__(self, max_cpus: float, max_ram_gb: float) -> None:
        self.max_cpus = max_cpus
        self.max_ram_gb = max_ram_gb
        self._held: dict[str, Request] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        cpus = settings.local_max_cpus if settings.local_max_cpus is not None else float(os.cpu_count() or 1)
        ram = (
            settings.local_max_ram_gb if settings.local_max_ram_gb is not None else machine_ram_gb() * DEFAULT_RAM_SHARE
        )
        return cls(cpus, ram)

    def too_big(self, task: Task) -> str | None:
        """Why ``task`` can never run here (a sentence naming the limit), or None."""
        req = request_of(task)
        if req.cpus > self.max_cpus:
            return (
                f"the task asks for {req.cpus:g} CPU cores; this machine runs tasks with at most "
                f"{self.max_cpus:g} (local_max_cpus)"
            )
        if req.ram_gb > self.max_ram_gb:
            return (
                f"the task asks for {req.ram_gb:g} GB of RAM; this machine runs tasks with at most "
                f"{self.max_ram_gb:.1f} GB (local_max_ram_gb)"
            )
        return None

    @property
    def used(self) -> Request:
        return Request(cpus=sum(r.cpus for r in self._held.values()), ram_gb=sum(r.ram_gb for r in self._held.values()))

    def reserve(self, task_id: str, task: Task) -> bool:
        """Reserve room for the task if it fits now. A task that can never fit is let through unreserved
        (the backend fails it at once, naming the limit) so the engine never waits on it forever."""
        if task_id in self._held:
            return True
        if self.too_big(task) is not None:
            return True
        req = request_of(task)
        used = self.used
        if used.cpus + req.cpus > self.max_cpus + 1e-9 or used.ram_gb + req.ram_gb > self.max_ram_gb + 1e-9:
            return False
        self._held[task_id] = req
        return True

    def hold(self, task_id: str, task: Task) -> None:
        """Reserve unconditionally (a re-adopted task is already running)."""
        if self.too_big(task) is None:
            self._held[task_id] = request_of(task)

    def release(self, task_id: str) -> None:
        self._held.pop(task_id, None)
