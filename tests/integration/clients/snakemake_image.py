"""A container image in which Snakemake runs its jobs, built from this machine's own files (no registry).

Snakemake's TES executor runs every job as ``/bin/bash /tmp/run_snakemake.sh`` in the image given by
``--container-image`` (default: the public ``snakemake/snakemake`` image, which cannot be pulled here), and the job
calls ``python -m snakemake`` with the S3 storage plugin. So the image carries the client venv of
scripts/client-venvs.sh at the same path, the Python it was made with (standard library only), bash, busybox for
the few commands a job script uses, and every shared library those need (their ``ldd`` closure).

Each job also starts with ``pip install --target .snakemake/pip-deployments snakemake-storage-plugin-s3``
(the plugin's auto-deployment, not optional). Tests reach no index on the internet, so the image's pip installs
from a wheelhouse baked in at ``/opt/wheelhouse`` (``PIP_NO_INDEX``, ``PIP_FIND_LINKS``), as at a site with a
local mirror.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path

from tests.fixtures.images import podman_global_args

BUSYBOX_APPLETS = ("sh", "mkdir", "cat", "ls", "rm", "cp", "mv", "echo", "env", "test", "true", "sleep", "uname", "wc")
# Loaded with dlopen by glibc (thread cancellation), so ldd does not list it.
DLOPENED = ("/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",)
STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"}
WHEELHOUSE = "/opt/wheelhouse"
_LDD_PATH = re.compile(r"(/\S+)")


def python_prefix(venv: Path) -> Path:
    """The installation the venv was made from (``home`` in pyvenv.cfg is its bin directory)."""
    for line in (venv / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip()).parent
    raise RuntimeError(f"{venv}/pyvenv.cfg names no home")


def python_version(venv: Path) -> str:
    """``python3.11`` for a venv made by Python 3.11."""
    for line in (venv / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "version":
            major, minor = value.strip().split(".")[:2]
            return f"python{major}.{minor}"
    raise RuntimeError(f"{venv}/pyvenv.cfg names no version")


def wheelhouse(venv: Path) -> Path:
    """The wheels scripts/client-venvs.sh downloaded beside the venv."""
    return venv.parent / f"{venv.name}-wheelhouse"


def image_tag(venv: Path) -> str:
    """A tag that changes whenever the venv or wheelhouse is rebuilt (their stamps) or this recipe changes."""
    stamps = b"".join(venv.parent.joinpath(f"{name}.stamp").read_bytes() for name in (venv.name, wheelhouse(venv).name))
    recipe = Path(__file__).read_bytes()
    digest = hashlib.sha256(stamps + str(venv).encode() + recipe).hexdigest()[:12]
    return f"localhost/ktes-test/snakemake:{digest}"


def _elf_files(root: Path) -> Iterable[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and (path.suffix == ".so" or ".so." in path.name):
            yield path


def _shared_libraries(binaries: Iterable[Path]) -> set[str]:
    libs: set[str] = set(DLOPENED)
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            match = _LDD_PATH.search(line.split("=>")[-1])
            if match:
                libs.add(match.group(1))
    return libs


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_file_as(tar: tarfile.TarFile, source: Path, name: str) -> None:
    """``source`` (symlinks followed) stored under ``name``."""
    info = tar.gettarinfo(str(source.resolve()), arcname=name)
    with source.open("rb") as handle:
        tar.addfile(info, handle)


def _arcname(path: str) -> str:
    """Where a host file goes in the image: its real directory (``/lib`` is ``/usr/lib`` on bookworm)."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path)).lstrip("/")


def write_rootfs(tar: tarfile.TarFile, venv: Path) -> None:
    prefix = python_prefix(venv)
    version = python_version(venv)
    stdlib = prefix / "lib" / version
    for link, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "usr/sbin")):
        _add_symlink(tar, link, target)
    for directory in ("usr/bin", "usr/lib", "usr/lib64", "usr/sbin", "etc", "root", "var", "var/cache"):
        _add_dir(tar, directory)
    _add_dir(tar, "tmp", 0o1777)
    _add_text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/bin/false\n")
    _add_text(tar, "etc/group", "root:x:0:\nnogroup:x:65534:\n")

    # Python: interpreter, libpython, the standard library without site-packages and tests.
    interpreter = (prefix / "bin" / version).resolve()
    _add_dir(tar, str(prefix / "bin").lstrip("/"))
    _add_file_as(tar, interpreter, str(prefix / "bin" / version).lstrip("/"))
    for alias in ("python", "python3"):
        _add_symlink(tar, str(prefix / "bin" / alias).lstrip("/"), version)
    for lib in (prefix / "lib").glob("libpython*.so*"):
        _add_file_as(tar, lib, str(lib).lstrip("/"))
    tar.add(str(stdlib), arcname=str(stdlib).lstrip("/"), filter=_skip_stdlib_parts(stdlib))
    tar.add(str(venv), arcname=str(venv).lstrip("/"))
    _add_dir(tar, "opt")
    tar.add(str(wheelhouse(venv)), arcname=WHEELHOUSE.lstrip("/"))

    # Shell and the commands a job script uses.
    _add_file_as(tar, Path("/usr/bin/bash"), "usr/bin/bash")
    _add_file_as(tar, Path("/usr/bin/busybox"), "usr/bin/busybox")
    for applet in BUSYBOX_APPLETS:
        _add_symlink(tar, f"usr/bin/{applet}", "busybox")

    binaries = [interpreter, Path("/usr/bin/bash"), *_elf_files(stdlib / "lib-dynload"), *_elf_files(venv)]
    binaries += list((prefix / "lib").glob("libpython*.so*"))
    added: set[str] = set()
    for library in sorted(_shared_libraries(binaries)):
        name = _arcname(library)
        if name not in added and not library.startswith((str(prefix), str(venv))):
            _add_file_as(tar, Path(library), name)
            added.add(name)


def _skip_stdlib_parts(stdlib: Path) -> Callable[[tarfile.TarInfo], tarfile.TarInfo | None]:
    base = str(stdlib).lstrip("/") + "/"

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        rest = info.name[len(base) :] if info.name.startswith(base) else ""
        return None if rest.split("/", 1)[0] in STDLIB_SKIP else info

    return keep


def ensure_image(venv: Path) -> str:
    """Build the image once per venv; return its name."""
    tag = image_tag(venv)
    podman = ["podman", *podman_global_args()]
    if subprocess.run([*podman, "image", "exists", tag], check=False).returncode == 0:
        return tag
    changes = [
        f"ENV PATH={venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "ENV PIP_NO_INDEX=1",
        f"ENV PIP_FIND_LINKS={WHEELHOUSE}",
        "ENV PIP_DISABLE_PIP_VERSION_CHECK=1",
        'CMD ["/bin/bash"]',
    ]
    proc = subprocess.Popen(
        [*podman, "import", *(arg for change in changes for arg in ("--change", change)), "-", tag],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
        write_rootfs(tar, venv)
    proc.stdin.close()
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise RuntimeError(f"podman import of {tag} failed: {stderr.decode(errors='replace')}")
    _remove_older_builds(podman, tag)
    return tag


def _remove_older_builds(podman: list[str], keep: str) -> None:
    """Drop earlier builds of this image (each is ~380 MB); one still in use by a container stays."""
    repository = keep.rsplit(":", 1)[0]
    listed = subprocess.run(
        [*podman, "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for old in (name for name in listed if name != keep and name.startswith(repository + ":")):
        subprocess.run([*podman, "rmi", old], capture_output=True, check=False)
