"""The one module that talks to the Kubernetes API (the official, synchronous ``kubernetes`` client).

Calls run in worker threads of its own (:data:`CALL_THREADS`) and return the API's own JSON (dicts, camelCase),
the shape :mod:`.status` reads. Errors are translated here into :class:`KubeError` and its kinds.
:class:`Watcher` is a thread doing list-then-watch on one kind of object, feeding an asyncio callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream.ws_client import create_websocket, get_websocket_url
from kubernetes.watch.watch import iter_resp_lines
from websocket import ABNF

from ktes import metrics
from ktes.backends.kubernetes.api_requests import request_kind
from ktes.config import Settings
from ktes.errors import BackendError

log = logging.getLogger(__name__)

T = TypeVar("T")
Kind = Literal["pods", "jobs"]
#: :attr:`Watcher.problem` when the API did not answer at all.
NO_ANSWER = "no answer"
#: threads (and pooled connections) for the calls of one :class:`Kube`. Each call mostly waits on the API
#: server (and it on etcd, or on a node's kubelet for a log), so many may wait at once; asyncio's default pool
#: (CPU count + 4 threads, shared with everything else) would let 6 at a time on a 2-CPU machine. On the lab
#: (docs/scale.md) the node, not this, was the bottleneck: the figures did not move.
CALL_THREADS = 32
#: what a Watcher delivers: ("SYNC", every object) after each list, or (ADDED|MODIFIED|DELETED, object).
WatchEvent = tuple[str, Any]


class KubeError(BackendError):
    """The API refused or failed a call. ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def transient(exc: KubeError) -> bool:
    """The API did not answer, or answered that it cannot now (429, 5xx): the same call can work later."""
    return exc.status == 0 or exc.status == 429 or exc.status >= 500


class NotFound(KubeError):
    pass


class AlreadyExists(KubeError):
    """409 on create: an object of that name exists."""


class Conflict(KubeError):
    """409 on update: the object changed meanwhile (its resourceVersion is stale)."""


class Expired(KubeError):
    """410: the resourceVersion a watch started from is too old; list again."""


class ExecFailed(KubeError):
    """A command run in a container (pods/exec) exited non-zero (``code``) or its stream broke (``code`` -1)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


#: The exec stream's channels (the v4 protocol every Kubernetes since 1.5 speaks): the command's stdout,
#: its stderr, and the API's status of the command's end.
EXEC_PROTOCOL = "v4.channel.k8s.io"
_STDOUT_CHANNEL, _STDERR_CHANNEL, _STATUS_CHANNEL = 1, 2, 3
#: Frames of a command's stdout held between the reading thread and its consumer.
EXEC_FRAMES_HELD = 8


def _translate(exc: ApiException, what: str) -> KubeError:
    message = exc.reason or ""
    reason = ""
    with contextlib.suppress(ValueError, TypeError):
        body = json.loads(exc.body or "")
        message = body.get("message") or message
        reason = body.get("reason") or ""
    text = f"{what}: {message}" if message else what
    if exc.status == 404:
        return NotFound(text, 404)
    if exc.status == 409:
        return AlreadyExists(text, 409) if reason == "AlreadyExists" else Conflict(text, 409)
    if exc.status == 410:
        return Expired(text, 410)
    return KubeError(text, exc.status or 0)


def _load_config(settings: Settings) -> k8s.Configuration:
    """In-cluster config, else ``settings.k8s_kubeconfig`` / ``KUBECONFIG`` / ``~/.kube/config``."""
    configuration = k8s.Configuration()
    if settings.k8s_kubeconfig is not None:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            str(settings.k8s_kubeconfig), client_configuration=configuration
        )
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


class _CountingApiClient(k8s.ApiClient):
    """The door every request of :class:`Kube` and :class:`Watcher` goes through: each is counted by verb and
    resource (``ktes_kubernetes_requests_total``) before it is sent, answered or not."""

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        metrics.kubernetes_request(*request_kind(method, url))
        return super().call_api(method, url, *args, **kwargs)


class Kube:
    """The calls the backend makes, in its namespace. Every method may raise :class:`KubeError`."""

    def __init__(self, settings: Settings) -> None:
        self.namespace = settings.k8s_namespace
        try:
            configuration = _load_config(settings)
        except Exception as exc:  # the client raises ConfigException, OSError, ...
            raise KubeError(f"no Kubernetes configuration (in-cluster or kubeconfig): {exc}") from exc
        configuration.connection_pool_maxsize = CALL_THREADS
        self.api = _CountingApiClient(configuration)
        self._threads = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="ktes-kube")
        self.core = k8s.CoreV1Api(self.api)
        self.batch = k8s.BatchV1Api(self.api)
        self.coordination = k8s.CoordinationV1Api(self.api)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            self.api.close()  # type: ignore[no-untyped-call]

    async def _in_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    # --- calling ---------------------------------------------------------------------------------

    def _sync(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``call`` and return its JSON (parsed), translating errors."""
        try:
            resp = call(*args, _preload_content=False, _request_timeout=(10, 60), **kwargs)
        except ApiException as exc:
            error = _translate(exc, what)
            if not isinstance(error, (NotFound, AlreadyExists, Conflict, Expired)):  # those are answers
                metrics.backend_error("kubernetes_api")
            raise error from None
        except Exception as exc:  # urllib3 connection errors and the like
            metrics.backend_error("kubernetes_unreachable")
            raise KubeError(f"{what}: {exc}") from exc
        data = resp.data
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode("utf-8", errors="replace")

    async def _call(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._in_thread(functools.partial(self._sync, what, call, *args, **kwargs))

    # --- objects ---------------------------------------------------------------------------------

    async def create_config_map(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        result: dict[str, Any] = await self._call(
            f"creating ConfigMap {name}", self.core.create_namespaced_config_map, self.namespace, body
        )
        return result

    async def delete_config_map(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self._call(f"deleting ConfigMap {name}", self.core.delete_namespaced_config_map, name, self.namespace)

    async def create_secret(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        result: dict[str, Any] = await self._call(
            f"creating Secret {name}", self.core.create_namespaced_secret, self.namespace, body
        )
        return result

    async def set_secret_owner(self, name: str, owner: dict[str, Any]) -> None:
        patch = {"metadata": {"ownerReferences": [owner]}}
        await self._call(f"patching Secret {name}", self.core.patch_namespaced_secret, name, self.namespace, patch)

    async def delete_secret(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self._call(f"deleting Secret {name}", self.core.delete_namespaced_secret, name, self.namespace)

    async def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        result: dict[str, Any] = await self._call(
            f"creating Job {name}", self.batch.create_namespaced_job, self.namespace, body
        )
        return result

    async def read_job(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call(
                f"reading Job {name}", self.batch.read_namespaced_job, name, self.namespace
            )
        except NotFound:
            return None
        return result

    async def delete_job(self, name: str) -> None:
        """Delete a Job; its Pods go with it (Background propagation). Not there is fine."""
        with contextlib.suppress(NotFound):
            await self._call(
                f"deleting Job {name}",
                self.batch.delete_namespaced_job,
                name,
                self.namespace,
                propagation_policy="Background",
            )

    async def delete_pod(self, name: str, grace_seconds: int) -> None:
        """Delete a Pod (again: that shortens a longer grace period the GC gave). Not there is fine."""
        with contextlib.suppress(NotFound):
            await self._call(
                f"deleting Pod {name}",
                self.core.delete_namespaced_pod,
                name,
                self.namespace,
                grace_period_seconds=grace_seconds,
            )

    async def delete_pods(self, selector: str, grace_seconds: int) -> None:
        """Delete the Pods ``selector`` matches, one by one (RBAC: list + delete, no deletecollection)."""
        for pod in await self.list_objects("pods", selector):
            await self.delete_pod(str(pod["metadata"]["name"]), grace_seconds)

    async def list_objects(
        self, kind: Literal["pods", "jobs", "secrets", "configmaps"], selector: str
    ) -> list[dict[str, Any]]:
        calls = {
            "pods": self.core.list_namespaced_pod,
            "jobs": self.batch.list_namespaced_job,
            "secrets": self.core.list_namespaced_secret,
            "configmaps": self.core.list_namespaced_config_map,
        }
        result = await self._call(f"listing {kind}", calls[kind], self.namespace, label_selector=selector)
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    async def pod_log(self, name: str, container: str) -> str:
        def read() -> str:
            try:
                resp: Any = self.core.read_namespaced_pod_log(
                    name, self.namespace, container=container, _preload_content=False, _request_timeout=(10, 120)
                )
            except ApiException as exc:
                raise _translate(exc, f"reading the log of {name}/{container}") from None
            except Exception as exc:
                raise KubeError(f"reading the log of {name}/{container}: {exc}") from exc
            data: bytes = resp.data
            return data.decode("utf-8", errors="replace")

        return await self._in_thread(read)

    async def exec_output(self, pod: str, container: str, command: list[str]) -> AsyncGenerator[bytes, None]:
        """Run ``command`` in a running container (pods/exec) and yield its stdout as it comes; return when
        it exits 0. Raises :class:`ExecFailed` when it exits non-zero or the stream breaks, :class:`KubeError`
        when the API refuses (the container is not running, no ``pods/exec`` permission).

        The kubernetes package's own ``stream()`` swaps the shared client's transport while it connects,
        which would race the watches' threads, so the WebSocket is opened here with the client's settings.
        One thread per call reads frames and hands at most :data:`EXEC_FRAMES_HELD` of them over."""
        query = [("container", container), *(("command", arg) for arg in command), ("stdout", "true")]
        query += [("stderr", "true"), ("stdin", "false"), ("tty", "false")]
        configuration = self.api.configuration
        address = f"{configuration.host}/api/v1/namespaces/{self.namespace}/pods/{pod}/exec"
        url = get_websocket_url(address)  # type: ignore[no-untyped-call]
        url = f"{url}?{urlencode(query)}"
        headers = {"sec-websocket-protocol": EXEC_PROTOCOL}
        bearer = configuration.auth_settings().get("BearerToken")
        if bearer and bearer.get("value"):
            headers["authorization"] = str(bearer["value"])
        what = f"running {command[0]} in {pod}/{container}"
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        room = threading.Semaphore(EXEC_FRAMES_HELD)
        stop = threading.Event()
        socket: list[Any] = []

        def hand(item: bytes | BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads any more
                loop.call_soon_threadsafe(frames.put_nowait, item)

        def read() -> None:
            status: dict[str, Any] | None = None
            errors = b""
            try:
                try:
                    ws = create_websocket(configuration, url, headers)  # type: ignore[no-untyped-call]
                except Exception as exc:  # the handshake's HTTP error: 400 not running, 403 forbidden, ...
                    http_status = int(getattr(exc, "status_code", 0) or 0)
                    raise KubeError(f"{what}: {exc}", http_status) from None
                socket.append(ws)
                if stop.is_set():
                    return
                while not stop.is_set():
                    opcode, frame = ws.recv_data_frame(True)
                    if opcode == ABNF.OPCODE_CLOSE:
                        break
                    if opcode not in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT) or not frame.data:
                        continue
                    data: bytes = frame.data if isinstance(frame.data, bytes) else frame.data.encode()
                    channel, payload = data[0], data[1:]
                    if channel == _STDOUT_CHANNEL and payload:
                        room.acquire()
                        hand(payload)
                    elif channel == _STDERR_CHANNEL:
                        errors = (errors + payload)[-1024:]
                    elif channel == _STATUS_CHANNEL and payload:
                        status = json.loads(payload)
                if stop.is_set():
                    return
                if status is None:
                    raise ExecFailed(f"{what}: the stream ended without the command's status", -1)
                if status.get("status") != "Success":
                    causes = (status.get("details") or {}).get("causes") or [{}]
                    exit_code = str(causes[0].get("message") if causes[0].get("reason") == "ExitCode" else "")
                    why = errors.decode(errors="replace").strip() or status.get("message") or "failed"
                    raise ExecFailed(f"{what}: {why}", int(exit_code) if exit_code.isdigit() else -1)
                hand(None)
            except BaseException as exc:
                if not stop.is_set():
                    hand(exc if isinstance(exc, KubeError) else ExecFailed(f"{what}: {exc}", -1))
            finally:
                for ws in socket:
                    with contextlib.suppress(Exception):
                        ws.close()

        thread = threading.Thread(target=read, name=f"ktes-exec-{pod}-{container}", daemon=True)
        thread.start()
        try:
            while True:
                item = await frames.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                room.release()
                yield item
        finally:
            stop.set()
            for _ in range(EXEC_FRAMES_HELD):
                room.release()
            for ws in socket:  # unblocks the thread's read
                with contextlib.suppress(Exception):
                    ws.shutdown()

    # --- start-up checks -------------------------------------------------------------------------

    async def may(self, verb: str, resource: str, group: str = "", subresource: str = "") -> bool:
        """Whether ktes's credentials allow ``verb`` on ``resource`` in the namespace (a
        SelfSubjectAccessReview, which every authenticated user may make)."""
        attributes = {"namespace": self.namespace, "verb": verb, "group": group, "resource": resource}
        if subresource:
            attributes["subresource"] = subresource
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        api = k8s.AuthorizationV1Api(self.api)
        result = await self._call("asking what ktes may do", api.create_self_subject_access_review, body)
        return bool(((result or {}).get("status") or {}).get("allowed"))

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    # --- leases ----------------------------------------------------------------------------------

    async def read_lease(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call(
                f"reading Lease {name}", self.coordination.read_namespaced_lease, name, self.namespace
            )
        except NotFound:
            return None
        return result

    async def create_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        result: dict[str, Any] = await self._call(
            f"creating Lease {name}", self.coordination.create_namespaced_lease, self.namespace, body
        )
        return result

    async def delete_lease(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self._call(f"deleting Lease {name}", self.coordination.delete_namespaced_lease, name, self.namespace)

    async def replace_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a Lease; raises :class:`Conflict` if it changed since ``body``'s resourceVersion."""
        name = body["metadata"]["name"]
        result: dict[str, Any] = await self._call(
            f"updating Lease {name}", self.coordination.replace_namespaced_lease, name, self.namespace, body
        )
        return result

    # --- watching --------------------------------------------------------------------------------

    def watcher(
        self,
        kind: Kind,
        selector: str,
        deliver: Callable[[WatchEvent], None],
        resync_seconds: float,
    ) -> Watcher:
        lister = {"pods": self.core.list_namespaced_pod, "jobs": self.batch.list_namespaced_job}[kind]
        return Watcher(kind, lister, self.namespace, selector, deliver, resync_seconds)


class Watcher:
    """List, then watch from the list's resourceVersion; list again on 410, on errors, and every
    ``resync_seconds`` (a resync: the full list is delivered again as ``("SYNC", items)``).

    The first list, and a list after 410 or an error, asks for the latest state (read from etcd). A resync
    asks for a state not older than the last one watched, which the API server answers from its watch cache
    (as client-go's reflector does), so resyncs cost etcd nothing.

    Runs in its own thread. ``deliver`` is called from that thread; the backend wraps it to hop onto its
    event loop.
    """

    def __init__(
        self,
        kind: str,
        lister: Callable[..., Any],
        namespace: str,
        selector: str,
        deliver: Callable[[WatchEvent], None],
        resync_seconds: float,
    ) -> None:
        self.kind = kind
        self._lister = lister
        self._namespace = namespace
        self._selector = selector
        self._deliver = deliver
        self._resync = max(5.0, resync_seconds)
        self._stop = threading.Event()
        self._resp: Any = None
        #: the last resourceVersion watched (None: the next list asks for the latest state).
        self._version: str | None = None
        #: why the last list or watch failed (None: the last list worked); read by the backend's readiness.
        self.problem: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"ktes-watch-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._list_and_watch()
                failures = 0
            except Expired:
                self._version = None
                log.debug("watch %s: resourceVersion expired; listing again", self.kind)
            except Exception as exc:
                self._version = None
                if self._stop.is_set():
                    return
                failures += 1
                # stable text (no object addresses), so a reason told to users is not told again and again
                self.problem = str(exc) if isinstance(exc, KubeError) and exc.status else NO_ANSWER
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning("watch %s failed (%s); listing again in %.1f s", self.kind, exc, delay)
                self._stop.wait(delay)

    def _list_and_watch(self) -> None:
        since = {"resource_version": self._version} if self._version else {}
        try:
            resp = self._lister(
                self._namespace,
                label_selector=self._selector,
                _preload_content=False,
                _request_timeout=(10, 60),
                **since,
            )
        except ApiException as exc:
            raise _translate(exc, f"listing {self.kind}") from None
        listed = json.loads(resp.data)
        self._version = listed["metadata"]["resourceVersion"]
        self.problem = None
        self._deliver(("SYNC", listed.get("items") or []))
        until = time.monotonic() + self._resync
        while not self._stop.is_set():
            left = until - time.monotonic()
            if left <= 1:
                return  # time to resync
            self._version = self._watch(self._version, int(left))

    def _watch(self, version: str, seconds: int) -> str:
        try:
            resp = self._lister(
                self._namespace,
                label_selector=self._selector,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=seconds,
                _preload_content=False,
                _request_timeout=(10, seconds + 30),
            )
        except ApiException as exc:
            raise _translate(exc, f"watching {self.kind}") from None
        self._resp = resp
        try:
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    break
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired(f"watching {self.kind}: {obj.get('message')}", 410)
                    raise KubeError(f"watching {self.kind}: {obj.get('message')}", int(obj.get("code") or 0))
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._deliver((kind, obj))
        finally:
            self._resp = None
            with contextlib.suppress(Exception):
                resp.release_conn()
        return version
