#!/usr/bin/env bash
# Build the ktes image without any container registry, and print its reference as the last line.
#
# The same image as the Dockerfile (ktes + its dependencies on Debian bookworm's Python 3.11, with the static
# executor helper inside the package as pip installs it; ENTRYPOINT ["ktes"], CMD ["serve"]), in two layers:
#   base  localhost/ktes-base:<key>: a minimal Debian bookworm rootfs (debootstrap --variant=minbase with
#         python3 and ca-certificates, from the mirror this machine's apt sources name) plus ktes's
#         dependencies (this machine's pip, binary wheels only, into /usr/local/lib/python3.11/dist-packages),
#         imported with `tar | podman import`. Built once per dependency list; the rootfs and the
#         dependencies are also cached in $KTES_BUILD_CACHE, so a lost podman store costs seconds.
#   ktes  ktes's own package (with the helper binaries of src/ktes/run/bin) and the `ktes` launcher, added by a COPY-only
#         `podman build` (no container is run). The tag is a hash of every input, so a changed source
#         gives a new tag (imagePullPolicy IfNotPresent picks it up) and an unchanged one is not rebuilt.
# Needs root, debootstrap, Python 3.11 with pip, podman.
#
# Environment: KTES_BUILD_CACHE (default /var/cache/ktes-build), KTES_IMAGE_NAME (default localhost/ktes),
# PYTHON (default python3), PODMAN (default podman), KTES_IMAGE_FORCE=1 rebuilds an existing tag.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KTES_BUILD_CACHE:-/var/cache/ktes-build}
NAME=${KTES_IMAGE_NAME:-localhost/ktes}
PYTHON=${PYTHON:-python3}
read -r -a PODMAN <<<"${PODMAN:-podman}"
SUITE=bookworm
BASE_PACKAGES=python3,ca-certificates
SITE=usr/local/lib/python3.11/dist-packages

log() { printf 'build-image: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and the rootfs need it)"
for tool in debootstrap tar flock "${PODMAN[0]}"; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "$PYTHON must be Python 3.11 (the image's Debian bookworm python3 is 3.11)"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one build at a time on this machine

# --- the tags: hashes of every input --------------------------------------------------------------
requirements=$("$PYTHON" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
EOF
)
# The base's recipe is this script's part above "--- 3.": a change there makes a new base.
recipe=$(sed -n '/^# --- 1\./,/^# --- 3\./p' "${BASH_SOURCE[0]}")
base_key=$(printf '%s\n%s\n%s\n' "$SUITE $BASE_PACKAGES" "$requirements" "$recipe" | sha256sum | cut -c1-12)
base_image="$NAME-base:$base_key"
source_key=$(
    cd "$REPO" &&
        find src/ktes scripts/build-image.sh -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12
)
image="$NAME:$source_key-${base_key:0:6}"
if [ "${KTES_IMAGE_FORCE:-0}" != 1 ] && "${PODMAN[@]}" image exists "$image"; then
    log "$image exists already (same sources); KTES_IMAGE_FORCE=1 rebuilds it"
    echo "$image"
    exit 0
fi

work=$(mktemp -d "$CACHE/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- 1. the base: Debian rootfs + dependencies (cached) -------------------------------------------
# The mirror and its keyring come from this machine's own apt sources (deb822 or one-line format).
apt_source() {
    "$PYTHON" - "$SUITE" <<'EOF'
import glob, re, sys
suite = sys.argv[1]
def entries():
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for para in re.split(r"\n\s*\n", open(path, encoding="utf-8", errors="replace").read()):
            fields = {}
            for line in para.splitlines():
                m = re.match(r"([A-Za-z-]+):\s*(.*)$", line)
                if m and not line.startswith("#"):
                    fields[m.group(1).lower()] = m.group(2).strip()
            if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
                continue
            if suite in fields.get("suites", "").split() and "main" in fields.get("components", "").split():
                for uri in fields.get("uris", "").split():
                    yield uri, fields.get("signed-by", "")
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
        except OSError:
            continue
        for line in lines:
            m = re.match(r"^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line.strip())
            if m and m.group(3) == suite and "main" in m.group(4).split("#")[0].split():
                opts = dict(kv.split("=", 1) for kv in (m.group(1) or "").split() if "=" in kv)
                yield m.group(2), opts.get("signed-by", "")
for uri, keyring in entries():
    print(uri, keyring if keyring.startswith("/") else "")
    break
else:
    sys.exit(f"no enabled 'deb' source for {suite} main in /etc/apt")
EOF
}

build_rootfs() { # -> $CACHE/rootfs-<key>: debootstrap'd, trimmed
    local key dir mirror keyring
    key=$(printf '%s\n' "$SUITE $BASE_PACKAGES" | sha256sum | cut -c1-12)
    dir="$CACHE/rootfs-$key"
    if [ ! -f "$dir/.complete" ]; then
        read -r mirror keyring < <(apt_source) || die "no apt source for $SUITE main in /etc/apt"
        log "debootstrap $SUITE (minbase + $BASE_PACKAGES) into $dir"
        rm -rf "$dir" "$dir.partial"
        local keyring_arg=()
        [ -n "${keyring:-}" ] && keyring_arg=(--keyring "$keyring")
        debootstrap --variant=minbase --include="$BASE_PACKAGES" "${keyring_arg[@]}" "$SUITE" "$dir.partial" \
            "$mirror" >&2
        (
            cd "$dir.partial"
            rm -rf var/cache/apt/* var/lib/apt/lists/* var/log/* usr/share/man usr/share/info usr/share/lintian
            find usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
            find usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
            rm -f etc/hostname etc/resolv.conf
            : >etc/machine-id
            echo 'ktes:x:10001:10001:ktes:/var/lib/ktes:/usr/sbin/nologin' >>etc/passwd
            echo 'ktes:x:10001:' >>etc/group
            mkdir -p var/lib/ktes && chown 10001:10001 var/lib/ktes
        )
        touch "$dir.partial/.complete"
        mv "$dir.partial" "$dir"
    fi
    ROOTFS=$dir
}

install_deps() { # -> $CACHE/deps-<key>: the dependencies' site-packages, compiled
    local key dir
    key=$(printf '%s\n' "$requirements" | sha256sum | cut -c1-12)
    dir="$CACHE/deps-$key"
    if [ ! -f "$dir/.complete" ]; then
        log "pip install the dependencies into $dir"
        rm -rf "$dir" "$dir.partial"
        printf '%s\n' "$requirements" >"$work/requirements.txt"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
            --target "$dir.partial" -r "$work/requirements.txt" >&2
        touch "$dir.partial/.complete"
        mv "$dir.partial" "$dir"
    fi
    DEPS=$dir
}

if ! "${PODMAN[@]}" image exists "$base_image"; then
    build_rootfs
    install_deps
    log "assemble and import $base_image"
    cp -a "$ROOTFS" "$work/base"
    mkdir -p "$work/base/$SITE"
    cp -a "$DEPS/." "$work/base/$SITE/"
    (
        cd "$work/base"
        rm -f .complete "$SITE/.complete"
        cd "$SITE"
        # ktes uses the synchronous Kubernetes client; its asyncio twin is 70 MB
        rm -rf bin kubernetes/aio kubernetes/test kubernetes/e2e_test ./*/tests
        find . -name '__pycache__' -prune -exec rm -rf {} +
    )
    "$PYTHON" -m compileall -q -j 0 "$work/base/$SITE" >/dev/null
    tar --numeric-owner -C "$work/base" -c . | "${PODMAN[@]}" import \
        --change 'ENV PYTHONUNBUFFERED=1' --change 'ENV LANG=C.UTF-8' \
        --message "ktes base $base_key" - "$base_image" >/dev/null
    log "$base_image: $(du -sh "$work/base" | cut -f1) unpacked"
    rm -rf "$work/base"
fi

# --- 3. ktes on top: its package, the launcher, the helper ----------------------------------------
log "build $image"
layer="$work/layer"
mkdir -p "$layer/$SITE" "$layer/usr/local/bin"
# ktes is pure Python: its package tree (code, migrations, data) is copied as is, with a minimal dist-info.
tar -C "$REPO/src" -c --exclude=__pycache__ --exclude='*.pyc' ktes | tar -C "$layer/$SITE" -x
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/src/ktes/__init__.py")
dist_info="$layer/$SITE/ktes-$version.dist-info"
mkdir -p "$dist_info"
printf 'Metadata-Version: 2.1\nName: ktes\nVersion: %s\n' "$version" >"$dist_info/METADATA"
printf '[console_scripts]\nktes = ktes.cli.main:app\n' >"$dist_info/entry_points.txt"
"$PYTHON" -m compileall -q -j 0 "$layer/$SITE/ktes" >/dev/null
cat >"$layer/usr/local/bin/ktes" <<'EOF'
#!/usr/bin/python3
import sys

from ktes.cli.main import app

sys.exit(app())
EOF
chmod 755 "$layer/usr/local/bin/ktes"
find "$layer" -type d -exec chmod 755 {} +

cat >"$work/Containerfile" <<EOF
FROM $base_image
COPY layer/ /
ENV PYTHONUNBUFFERED=1 LANG=C.UTF-8 KTES_DATA_DIR=/var/lib/ktes
LABEL org.opencontainers.image.title=ktes org.opencontainers.image.version=$version org.opencontainers.image.revision=$source_key
ENTRYPOINT ["ktes"]
CMD ["serve"]
EOF
"${PODMAN[@]}" build --quiet --file "$work/Containerfile" --tag "$image" "$work" >/dev/null
log "done"
echo "$image"
