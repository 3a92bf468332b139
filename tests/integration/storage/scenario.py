"""The tasks of the storage end-to-end tests: the data they read, the documents submitted, what must arrive.

Every object a scenario makes lives under its own ``run`` prefix (a bucket prefix, an FTP directory, an HTTP
directory, DRS ids), so the scenarios of both backends share the session's storage servers safely.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.servers import DrsServer, FtpServer, HttpServer, S3Server

TERMINAL = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})
MIB = 1024 * 1024

#: the inputs of the everything task: (container path, its bytes); the executor concatenates them in this order.
S3_FILE = ("/inputs/s3/one.txt", b"s3 file\n")
S3_DIR = {"a.txt": b"s3 dir a\n", "sub/b.txt": b"s3 dir sub b\n"}
FTP_FILE = ("/inputs/ftp/f.txt", b"ftp file\n")
FTP_DIR = {"c.txt": b"ftp dir c\n", "deep/d.txt": b"ftp dir deep d\n"}
HTTP_PLAIN = ("/inputs/http/plain.txt", b"http plain\n")
HTTP_REDIRECTED = ("/inputs/http/redirected.txt", b"http via a redirect\n")
HTTP_FLAKY = ("/inputs/http/flaky.txt", b"http after two 503s\n")
DRS_OBJECT = ("/inputs/drs.txt", b"drs object, fetched over http\n")
CONTENT = ("/inputs/content.txt", "inline content\n")
FLAKY_FAILURES = 2

#: what the executor writes besides /outputs/all.txt.
DIR_OUTPUTS = {"x.txt": b"dir x\n", "sub/y.txt": b"dir sub y\n"}
CSV_OUTPUTS = {"a.csv": b"a\n", "b.csv": b"bb\n"}

SCRIPT = """set -e
cat {files} > /outputs/all.txt
cd /inputs && busybox find . -type f | busybox sort
mkdir -p /outputs/dir/sub /outputs/glob
echo 'dir x' > /outputs/dir/x.txt
echo 'dir sub y' > /outputs/dir/sub/y.txt
echo a > /outputs/glob/a.csv
echo bb > /outputs/glob/b.csv
echo 'not a csv' > /outputs/glob/c.txt
"""


@dataclass
class Storage:
    """The session's storage servers."""

    s3: S3Server
    ftp: FtpServer
    http: HttpServer
    drs: DrsServer


@dataclass
class Scenario:
    """The tasks one backend runs, under the prefix ``run``."""

    storage: Storage
    image: str
    run: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex[:8]}")

    # --- URLs -------------------------------------------------------------------------------------

    def s3_url(self, key: str) -> str:
        return f"s3://{self.storage.s3.bucket}/{self.run}/{key}"

    def ftp_url(self, path: str) -> str:
        return f"{self.storage.ftp.url}/{self.run}/{path}"

    def http_url(self, kind: str, path: str) -> str:
        return self.storage.http.url(kind, f"{self.run}/{path}")

    # --- the everything task ----------------------------------------------------------------------

    def input_files(self) -> list[tuple[str, bytes]]:
        """Every file the executor finds under /inputs, in the order it concatenates them."""
        return [
            S3_FILE,
            *((f"/inputs/s3dir/{name}", data) for name, data in S3_DIR.items()),
            FTP_FILE,
            *((f"/inputs/ftpdir/{name}", data) for name, data in FTP_DIR.items()),
            HTTP_PLAIN,
            HTTP_REDIRECTED,
            HTTP_FLAKY,
            DRS_OBJECT,
            (CONTENT[0], CONTENT[1].encode()),
        ]

    def concatenation(self) -> bytes:
        return b"".join(data for _, data in self.input_files())

    def listing(self) -> str:
        """The executor's stdout: every input file below /inputs, as ``find . -type f | sort`` prints them."""
        return "".join(f".{path.removeprefix('/inputs')}\n" for path, _ in sorted(self.input_files()))

    def seed(self) -> str:
        """Put the inputs on the servers; the drs:// URL of the DRS object."""
        s3 = self.storage.s3.client()
        s3.put_object(Bucket=self.storage.s3.bucket, Key=f"{self.run}/in/one.txt", Body=S3_FILE[1])
        for name, data in S3_DIR.items():
            s3.put_object(Bucket=self.storage.s3.bucket, Key=f"{self.run}/in/dir/{name}", Body=data)
        ftp_home = self.storage.ftp.home / self.run / "in"
        write(ftp_home / "f.txt", FTP_FILE[1])
        for name, data in FTP_DIR.items():
            write(ftp_home / "fdir" / name, data)
        http_root = self.storage.http.root / self.run
        write(http_root / "plain.txt", HTTP_PLAIN[1])
        write(http_root / "redirected.txt", HTTP_REDIRECTED[1])
        write(http_root / "flaky.txt", HTTP_FLAKY[1])
        write(http_root / "drs.txt", DRS_OBJECT[1])
        return self.storage.drs.add_object(f"{self.run}-object", self.http_url("files", "drs.txt"))

    def everything_task(self, drs_url: str) -> dict[str, Any]:
        """Inputs from every scheme, outputs to every writable one."""
        inputs = [
            {"path": S3_FILE[0], "url": self.s3_url("in/one.txt")},
            {"path": "/inputs/s3dir", "url": self.s3_url("in/dir/"), "type": "DIRECTORY"},
            {"path": FTP_FILE[0], "url": self.ftp_url("in/f.txt")},
            {"path": "/inputs/ftpdir", "url": self.ftp_url("in/fdir"), "type": "DIRECTORY"},
            {"path": HTTP_PLAIN[0], "url": self.http_url("files", "plain.txt")},
            {"path": HTTP_REDIRECTED[0], "url": self.http_url("redirect", "redirected.txt")},
            {"path": HTTP_FLAKY[0], "url": self.http_url(f"flaky/{FLAKY_FAILURES}", "flaky.txt")},
            {"path": DRS_OBJECT[0], "url": drs_url},
            {"path": CONTENT[0], "content": CONTENT[1]},
        ]
        outputs = [
            {"path": "/outputs/all.txt", "url": self.s3_url("out/all.txt")},
            {"path": "/outputs/dir", "url": self.s3_url("out/dir"), "type": "DIRECTORY"},
            {"path": "/outputs/glob/*.csv", "path_prefix": "/outputs/glob", "url": self.s3_url("out/csv")},
            {"path": "/outputs/all.txt", "url": self.ftp_url("out/all.txt")},
            {"path": "/outputs/dir", "url": self.ftp_url("out/dir"), "type": "DIRECTORY"},
            {"path": "/outputs/all.txt", "url": self.http_url("files", "out/all.txt")},
        ]
        files = " ".join(path for path, _ in self.input_files())
        return task_document("every scheme", self.image, SCRIPT.format(files=files), inputs, outputs)

    def expected_outputs(self) -> dict[str, int]:
        """URL -> size of every file the everything task uploads."""
        total = len(self.concatenation())
        expected = {
            self.s3_url("out/all.txt"): total,
            self.ftp_url("out/all.txt"): total,
            self.http_url("files", "out/all.txt"): total,
        }
        for name, data in DIR_OUTPUTS.items():
            expected[self.s3_url(f"out/dir/{name}")] = len(data)
            expected[self.ftp_url(f"out/dir/{name}")] = len(data)
        for name, data in CSV_OUTPUTS.items():
            expected[self.s3_url(f"out/csv/{name}")] = len(data)
        return expected

    # --- tasks that must fail ---------------------------------------------------------------------

    def reading(self, name: str, url: str) -> dict[str, Any]:
        """A task that only reads ``url`` (so it fails in staging when the URL cannot be read)."""
        return task_document(name, self.image, "cat /inputs/x", [{"path": "/inputs/x", "url": url}], [])

    # --- a large file -----------------------------------------------------------------------------

    def seed_large(self, size: int, scratch: Path) -> str:
        """A ``size``-byte object of random bytes at ``large/in.bin`` (uploaded in parts); its sha256."""
        source = scratch / f"{self.run}-large.bin"
        digest = hashlib.sha256()
        with source.open("wb") as sink:
            for _ in range(size // MIB):
                block = os.urandom(MIB)
                digest.update(block)
                sink.write(block)
        self.storage.s3.client().upload_file(str(source), self.storage.s3.bucket, f"{self.run}/large/in.bin")
        source.unlink()
        return digest.hexdigest()

    def large_task(self) -> dict[str, Any]:
        inputs = [{"path": "/data/in.bin", "url": self.s3_url("large/in.bin")}]
        outputs = [{"path": "/results/out.bin", "url": self.s3_url("large/out.bin")}]
        return task_document("large file", self.image, "cat /data/in.bin > /results/out.bin", inputs, outputs)

    def object_sha256(self, key: str) -> str:
        """sha256 of an object of this run, streamed."""
        body = self.storage.s3.client().get_object(Bucket=self.storage.s3.bucket, Key=f"{self.run}/{key}")["Body"]
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(MIB):
            digest.update(chunk)
        return digest.hexdigest()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def task_document(
    name: str, image: str, script: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "inputs": inputs,
        "outputs": outputs,
        "executors": [{"image": image, "command": ["sh", "-c", script]}],
    }


def submit_all(tes_url: str, documents: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """POST every task at once (before any is looked at); name -> task id."""
    with httpx.Client(base_url=tes_url, timeout=30) as client:
        ids: dict[str, str] = {}
        for name, document in documents.items():
            response = client.post("/tasks", json=document)
            assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
            ids[name] = str(response.json()["id"])
        return ids


def wait_all(tes_url: str, ids: Mapping[str, str], within: float) -> dict[str, dict[str, Any]]:
    """Poll until every task is terminal; name -> the task (FULL view, as JSON)."""
    deadline = time.monotonic() + within
    done: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=tes_url, timeout=30) as client:
        while True:
            for name, task_id in ids.items():
                if name not in done:
                    task = client.get(f"/tasks/{task_id}", params={"view": "FULL"}).raise_for_status().json()
                    if task["state"] in TERMINAL:
                        done[name] = task
            if len(done) == len(ids):
                return done
            if time.monotonic() > deadline:
                pending = {name: ids[name] for name in ids if name not in done}
                raise AssertionError(f"tasks not finished after {within:g} s: {pending}")
            time.sleep(0.25)
