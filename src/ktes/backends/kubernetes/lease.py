"""One engine among replicas: a ``coordination.k8s.io/v1`` Lease (``ktes-engine-<installation id>``) held by the replica
that runs the engine. Every replica serves the API; the others wait to take the Lease over.

As client-go's leader election does, a Lease is taken over only after this replica has watched it go
``k8s_lease_duration_seconds`` without a renewal (by its own clock, so clocks need not agree), or when its
holder released it (a clean shutdown empties ``holderIdentity``). Updates carry the resourceVersion read, so
two replicas cannot both win. A leader that cannot renew within the duration stops leading. ``ktes serve``
runs the engine only while :class:`LeaseLeadership` says this replica leads (:mod:`ktes.engine.runner`).
While the Lease cannot be taken (the API does not answer), the QUEUED tasks say why in their
``system_logs`` (:meth:`LeaseLeadership.not_ready_reason`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from ktes.backends.kubernetes.client import AlreadyExists, Conflict, Kube, KubeError
from ktes.backends.kubernetes.installation import lease_name
from ktes.config import Settings

log = logging.getLogger(__name__)


def identity() -> str:
    """This replica: the pod name (HOSTNAME in a pod) or host name, and the process id."""
    host = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname()
    return f"{host}_{os.getpid()}"


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Lease:
    """Acquire, renew and release one Lease in the backend's namespace."""

    def __init__(self, kube: Kube, settings: Settings, holder: str | None = None) -> None:
        self._kube = kube
        self.name = lease_name(settings)
        self.holder = holder or identity()
        self.duration = settings.k8s_lease_duration_seconds
        #: the last (holder, renewTime) seen, and when (monotonic) it was first seen.
        self._seen: tuple[str, str] | None = None
        self._seen_at = 0.0
        self.held = False

    def _spec(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro_time(datetime.now(UTC))
        old = (previous or {}).get("spec") or {}
        transitions = int(old.get("leaseTransitions") or 0)
        taking_over = old.get("holderIdentity") != self.holder
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": max(1, math.ceil(self.duration)),
            "acquireTime": now if taking_over or not old.get("acquireTime") else old["acquireTime"],
            "renewTime": now,
            "leaseTransitions": transitions + 1 if taking_over and previous is not None else transitions,
        }

    def _expired(self, lease: dict[str, Any]) -> bool:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if not holder:
            return True
        record = (holder, str(spec.get("renewTime") or ""))
        now = time.monotonic()
        if record != self._seen:
            self._seen, self._seen_at = record, now
            return False
        return now - self._seen_at >= self.duration

    async def try_acquire(self) -> bool:
        """Take or renew the Lease if this replica may; whether it holds it now."""
        try:
            lease = await self._kube.read_lease(self.name)
            if lease is None:
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": self.name}}
                body["spec"] = self._spec(None)
                await self._kube.create_lease(body)
                self.held = True
                return True
            holder = (lease.get("spec") or {}).get("holderIdentity")
            if holder != self.holder and not self._expired(lease):
                self.held = False
                return False
            lease["spec"] = self._spec(lease)
            await self._kube.replace_lease(lease)
            self.held = True
            return True
        except (AlreadyExists, Conflict):  # another replica got there first
            self.held = False
            return False

    async def release(self) -> None:
        """Give the Lease up (empty holder), so another replica takes it at once."""
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(KubeError):
            lease = await self._kube.read_lease(self.name)
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.holder:
                lease["spec"]["holderIdentity"] = ""
                await self._kube.replace_lease(lease)


class LeaseLeadership:
    """:class:`ktes.backends.base.Leadership` through one Lease: acquire waits for it, hold renews it
    until it is lost (another replica took it, or it could not be renewed within its duration)."""

    def __init__(self, settings: Settings, holder: str | None = None) -> None:
        self._settings = settings
        self._holder = holder
        self._kube: Kube | None = None
        self._lease: Lease | None = None
        self._renew = max(0.2, min(settings.k8s_lease_renew_seconds, settings.k8s_lease_duration_seconds / 3))
        #: why the Lease could not be read or taken at the last try (None: the API answered).
        self._problem: str | None = None

    def not_ready_reason(self) -> str | None:
        """Why no engine can run here now (for the QUEUED tasks' logs and ``/readyz``), or None: the Lease
        could not be read or written at the last try."""
        return self._problem

    async def _the_lease(self) -> Lease:
        if self._lease is None:
            self._kube = await asyncio.to_thread(Kube, self._settings)
            self._lease = Lease(self._kube, self._settings, self._holder)
        return self._lease

    async def acquire(self) -> None:
        while True:
            try:
                lease = await self._the_lease()
                acquired = await lease.try_acquire()
                self._problem = None
                if acquired:
                    log.info("lease %s: %s leads", lease.name, lease.holder)
                    return
            except KubeError as exc:
                log.warning("lease %s: %s", lease_name(self._settings), exc)
                self._problem = self._cannot(exc, "taken")
            await asyncio.sleep(self._renew)

    def _cannot(self, exc: KubeError, done: str) -> str:
        name = lease_name(self._settings)
        host = self._kube.host if self._kube is not None else "its address"
        what = f"the API at {host} does not answer" if exc.status == 0 else str(exc)
        return f"no engine can run: the Lease {name} cannot be {done} ({what})"

    async def hold(self) -> None:
        lease = await self._the_lease()
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(self._renew)
            try:
                if not await lease.try_acquire():
                    log.warning("lease %s: another replica took it", lease.name)
                    return
                last_renewal = time.monotonic()
                self._problem = None
            except KubeError as exc:
                self._problem = self._cannot(exc, "renewed")
                if time.monotonic() - last_renewal >= self._settings.k8s_lease_duration_seconds:
                    log.warning("lease %s: could not renew it in time (%s)", lease.name, exc)
                    return

    async def release(self) -> None:
        if self._lease is not None:
            with contextlib.suppress(Exception):
                await self._lease.release()

    async def close(self) -> None:
        await self.release()
        if self._kube is not None:
            self._kube.close()
            self._kube = None
            self._lease = None
