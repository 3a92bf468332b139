"""``drs://host/object_id`` inputs, resolved through the GA4GH DRS API and fetched by another plugin.

GET ``https://host/ga4gh/drs/v1/objects/{id}``; the first access method whose type a plugin serves wins;
its ``access_url`` is used, or its ``access_id`` is exchanged at ``/objects/{id}/access/{access_id}``.
Hosts in ``drs_insecure_hosts`` are contacted over plain http (tests). DRS is read-only here: uploads and
bundles (DIRECTORY inputs) are refused with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ktes.config import Settings
from ktes.errors import PermanentTransferError, TransferError
from ktes.filer.base import FilerPlugin
from ktes.filer.http import HttpPlugin, check_status, translate
from ktes.filer.redact import redact

PluginFor = Callable[[str], FilerPlugin | None]


class DrsPlugin:
    schemes: tuple[str, ...] = ("drs",)

    def __init__(self, http: HttpPlugin, plugin_for_scheme: PluginFor, insecure_hosts: list[str]) -> None:
        self.http = http
        self.plugin_for_scheme = plugin_for_scheme
        self.insecure_hosts = {h.lower() for h in insecure_hosts}

    @classmethod
    def from_settings(cls, settings: Settings, http: HttpPlugin, plugin_for_scheme: PluginFor) -> DrsPlugin:
        return cls(http, plugin_for_scheme, settings.drs_insecure_hosts)

    def objects_url(self, url: str) -> str:
        """The DRS API URL of the object ``url`` names."""
        parts = urlsplit(url)
        object_id = parts.path.lstrip("/")
        if not parts.netloc or not object_id:
            raise PermanentTransferError(f"{redact(url)}: a DRS URL is drs://host/object_id")
        host = parts.netloc.rsplit("@", 1)[-1]
        scheme = (
            "http" if host.lower() in self.insecure_hosts or (parts.hostname or "") in self.insecure_hosts else "https"
        )
        return f"{scheme}://{host}/ga4gh/drs/v1/objects/{quote(object_id, safe='')}"

    def _get_json(self, url: str, api_url: str) -> dict[str, Any]:
        try:
            response = self.http.client.get(api_url)
            check_status(url, response)
            document = response.json()
        except httpx.HTTPError as err:
            raise translate(url, err, self.http.timeout_seconds) from err
        except ValueError as err:
            raise PermanentTransferError(f"{redact(url)}: the DRS server did not answer with JSON") from err
        if not isinstance(document, dict):
            raise PermanentTransferError(f"{redact(url)}: the DRS server's answer is not an object")
        return document

    def resolve(self, url: str) -> tuple[str, dict[str, str]]:
        """The access URL of the object and the headers to send with it."""
        api_url = self.objects_url(url)
        record = self._get_json(url, api_url)
        if record.get("contents") and not record.get("access_methods"):
            raise PermanentTransferError(f"{redact(url)}: DRS bundles are not supported as inputs")
        methods = record.get("access_methods") or []
        types = [str(m.get("type", "")).lower() for m in methods if isinstance(m, dict)]
        for method in methods:
            if not isinstance(method, dict) or self.plugin_for_scheme(str(method.get("type", "")).lower()) is None:
                continue
            access = method.get("access_url")
            if not isinstance(access, dict) and method.get("access_id"):
                access = self._get_json(url, f"{api_url}/access/{quote(str(method['access_id']), safe='')}")
            if isinstance(access, dict) and access.get("url"):
                return str(access["url"]), _headers(access.get("headers"))
        offered = ", ".join(types) or "none"
        raise PermanentTransferError(f"{redact(url)}: no access method ktes can use (offered: {offered})")

    def download_file(self, url: str, dest: Path) -> None:
        access_url, headers = self.resolve(url)
        scheme = access_url.split("://", 1)[0].lower()
        try:
            if scheme in self.http.schemes:
                self.http.download_file(access_url, dest, headers=headers)
                return
            plugin = self.plugin_for_scheme(scheme)
            if plugin is None:
                raise PermanentTransferError(f"{redact(url)}: access URL scheme {scheme!r} is not served")
            plugin.download_file(access_url, dest)
        except TransferError as err:
            # The access URL is often signed: name the DRS URL, and the reason only.
            reason = str(err).split(": ", 1)[-1]
            raise type(err)(f"{redact(url)}: {reason} (fetching its access URL)") from err

    def list_dir(self, url: str) -> Iterator[tuple[str, str]]:
        raise PermanentTransferError(f"{redact(url)}: DRS objects are files; DIRECTORY inputs are not supported")

    def upload_file(self, src: Path, url: str) -> None:
        raise PermanentTransferError(f"{redact(url)}: DRS is read-only; outputs cannot be written to drs:// URLs")


def _headers(raw: Any) -> dict[str, str]:
    """DRS gives headers as ["Name: value", ...]."""
    headers: dict[str, str] = {}
    if isinstance(raw, list):
        for line in raw:
            name, sep, value = str(line).partition(":")
            if sep:
                headers[name.strip()] = value.strip()
    elif isinstance(raw, dict):
        headers = {str(k): str(v) for k, v in raw.items()}
    return headers
