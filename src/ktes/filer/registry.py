"""Which plugin serves a URL: one per scheme, each made on first use, each wrapped once for retries."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ktes.config import Settings
from ktes.errors import PermanentTransferError
from ktes.filer.base import FilerPlugin
from ktes.filer.drs import DrsPlugin
from ktes.filer.file import FilePlugin
from ktes.filer.ftp import FtpPlugin
from ktes.filer.http import HttpPlugin
from ktes.filer.redact import redact
from ktes.filer.retry import RetryingPlugin, backoff_delays
from ktes.filer.urls import scheme_of


def _s3_plugin(settings: Settings) -> FilerPlugin:
    from ktes.filer.s3 import S3Plugin  # boto3 takes a while to import: only once an s3:// URL comes

    return S3Plugin.from_settings(settings)


class Filer:
    """The filer of one ktes process: ``for_url`` picks the plugin, ``schemes`` lists what is served."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.delays = backoff_delays(settings.transfer_retries, settings.transfer_retry_backoff_seconds)
        self.retry_budget_seconds = settings.transfer_retry_max_seconds
        self.http = HttpPlugin.from_settings(settings)  # cheap, and DRS resolves through it
        self._lock = threading.Lock()
        self._plugins: dict[str, FilerPlugin] = {}
        factories: list[tuple[tuple[str, ...], Callable[[], FilerPlugin]]] = [
            (FilePlugin.schemes, lambda: FilePlugin.from_settings(settings)),
            (HttpPlugin.schemes, lambda: self.http),
            (("s3",), lambda: _s3_plugin(settings)),
            (FtpPlugin.schemes, lambda: FtpPlugin.from_settings(settings)),
            (DrsPlugin.schemes, lambda: DrsPlugin.from_settings(settings, self.http, self._fetcher)),
        ]
        #: scheme -> (name of the plugin that serves it, its factory); schemes of one plugin share it.
        self._factories = {scheme: (schemes[0], make) for schemes, make in factories for scheme in schemes}

    def schemes(self) -> tuple[str, ...]:
        """Every URL scheme served, sorted (for service-info and validation)."""
        return tuple(sorted(self._factories))

    def for_url(self, url: str) -> FilerPlugin:
        """The plugin for ``url`` (a plain absolute path is a file), retrying transient failures."""
        return RetryingPlugin(self._plugin(url), self.delays, self.retry_budget_seconds)

    def _plugin(self, url: str) -> FilerPlugin:
        scheme = scheme_of(url)
        if scheme not in self._factories:
            served = ", ".join(self.schemes())
            what = f"unsupported URL scheme {scheme!r}" if scheme else "neither a URL nor an absolute path"
            raise PermanentTransferError(f"{redact(url)}: {what} (ktes serves {served})")
        name, make = self._factories[scheme]
        with self._lock:
            if name not in self._plugins:
                self._plugins[name] = make()
            return self._plugins[name]

    def _fetcher(self, scheme: str) -> FilerPlugin | None:
        """The plugin DRS fetches an access URL of ``scheme`` with (never DRS itself)."""
        if scheme not in self._factories or scheme == "drs":
            return None
        return self._plugin(scheme + "://")
