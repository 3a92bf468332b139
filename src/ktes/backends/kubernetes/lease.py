"""One engine among replicas: a ``coordination.k8s.io/v1`` Lease (``ktes-engine-<installation id>``) held by the replica
that runs the engine. Every replica serves the API; the others wait to take the Lease over.

As client-go's leader election does, a Lease is taken over only after this replica has watched it go
``k8s_lease_duration_seconds`` without a renewal (by its own clock, so clocks need not agree), or when its
holder released it (a clean shutdown empties ``holderIdentity``). Updates carry the resourceVersion read, so
two replicas cannot both win. A leader that cannot renew within the duration stops its engine. While no
engine can run (the API does not answer), the QUEUED tasks say why in their ``system_logs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ktes.backends.kubernetes.client import AlreadyExists, Conflict, Kube, KubeError
from ktes.backends.kubernetes.installation import lease_name
from ktes.config import Settings

if TYPE_CHECKING:
    from ktes.engine.engine import Engine

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
        self.host = kube.host
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


async def _lead(lease: Lease, settings: Settings, engine: Engine) -> None:
    """Forever: wait for the Lease, run the engine while it is held, stop it when it is lost."""
    renew = max(0.2, min(settings.k8s_lease_renew_seconds, settings.k8s_lease_duration_seconds / 3))
    while True:
        try:
            acquired = await lease.try_acquire()
        except KubeError as exc:
            log.warning("lease %s: %s", lease.name, exc)
            what = f"the API at {lease.host} does not answer" if exc.status == 0 else str(exc)
            await engine.note_queued(f"no engine can run: the Lease {lease.name} cannot be taken ({what})")
            acquired = False
        if not acquired:
            await asyncio.sleep(renew)
            continue
        log.info("lease %s: %s leads; starting the engine", lease.name, lease.holder)
        try:
            await engine.start()
        except Exception as exc:
            log.exception("lease %s: the engine did not start; giving the Lease up and trying again", lease.name)
            await engine.note_queued(f"the engine could not start ({exc})")
            with contextlib.suppress(Exception):
                await engine.stop()
            await lease.release()
            await asyncio.sleep(settings.k8s_lease_duration_seconds)
            continue
        try:
            last_renewal = time.monotonic()
            while True:
                await asyncio.sleep(renew)
                try:
                    if not await lease.try_acquire():
                        log.warning("lease %s: another replica took it; stopping the engine", lease.name)
                        break
                    last_renewal = time.monotonic()
                except KubeError as exc:
                    if time.monotonic() - last_renewal >= settings.k8s_lease_duration_seconds:
                        log.warning("lease %s: could not renew it in time (%s); stopping the engine", lease.name, exc)
                        break
        finally:
            await engine.stop()


@contextlib.asynccontextmanager
async def run_engine_while_leader(settings: Settings, engine: Engine) -> AsyncIterator[None]:
    """The engine runner of ``ktes serve`` with the Kubernetes backend: the engine runs only while this
    replica holds the Lease. On exit the engine stops and the Lease is released."""
    kube = await asyncio.to_thread(Kube, settings)
    lease = Lease(kube, settings)
    leading = asyncio.create_task(_lead(lease, settings, engine), name="ktes-lease")
    try:
        yield
    finally:
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading
        with contextlib.suppress(Exception):
            await lease.release()
        kube.close()
