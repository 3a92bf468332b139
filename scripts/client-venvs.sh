#!/usr/bin/env bash
# Create the isolated virtualenvs of the TES workflow clients the client tests drive (tests/integration/clients),
# each with the versions that are known to work, and print one `name=path` line per venv.
#
#   cwltes     cwl-tes 0.3.0 (2019): pins cwltool 1.0.20191022103248, whose schema-salad 4 needs
#              rdflib-jsonld 0.4.0, an sdist that only builds with setuptools < 58 (it uses 2to3); so the venv
#              gets setuptools 57 first and installs without build isolation.
#   snakemake  snakemake 9 + snakemake-executor-plugin-tes 0.1.3 (which pins py-tes < 0.5, older than the
#              py-tes of the main environment) + snakemake-storage-plugin-s3.
#   snakemake-wheelhouse  the wheels of snakemake-storage-plugin-s3 and its dependencies: every Snakemake job
#              on TES starts with `pip install --target .snakemake/pip-deployments snakemake-storage-plugin-s3`,
#              which the test image answers from this directory (no index) instead of the internet.
#
# pydantic-tes needs no venv: it installs into the main environment without changing anything there (dev extra).
#
# Idempotent and cached: a venv is rebuilt only when its requirement line changes (a stamp file holds it).
# KTES_CLIENTS_DIR chooses where the venvs live (default /var/cache/ktes-clients, or ~/.cache/ktes-clients when
# that is not writable). `--quiet` prints only the paths.
set -euo pipefail

default_dir=/var/cache/ktes-clients
if ! { mkdir -p "$default_dir" && [ -w "$default_dir" ]; } 2>/dev/null; then
  default_dir="${XDG_CACHE_HOME:-$HOME/.cache}/ktes-clients"
fi
dir="${KTES_CLIENTS_DIR:-$default_dir}"
python="${KTES_CLIENTS_PYTHON:-python3}"
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" -eq 1 ] || echo "$@" >&2; }

mkdir -p "$dir"

# make_venv NAME "PRE-INSTALL REQS" "PIP FLAGS" "REQS"
make_venv() {
  local name=$1 pre=$2 flags=$3 reqs=$4
  local venv="$dir/$name" stamp="$dir/$name.stamp" want
  want="$($python -c 'import sys; print(sys.version.split()[0])') | $pre | $flags | $reqs"
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "== $name: cached ($venv)"
  else
    say "== $name: creating $venv"
    rm -rf "$venv" "$stamp"
    "$python" -m venv "$venv"
    local log="$dir/$name.install.log"
    # shellcheck disable=SC2086
    if ! { [ -z "$pre" ] || "$venv/bin/pip" install --disable-pip-version-check $pre; } >"$log" 2>&1 ||
       ! "$venv/bin/pip" install --disable-pip-version-check $flags $reqs >>"$log" 2>&1; then
      echo "client-venvs: installing $name failed; see $log" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    echo "$want" >"$stamp"
  fi
  echo "$name=$venv"
}

# make_wheelhouse NAME VENV "REQS": the wheels of REQS and their dependencies, at the versions VENV has.
make_wheelhouse() {
  local name=$1 venv=$2 reqs=$3
  local wheels="$dir/$name" stamp="$dir/$name.stamp" want
  want="$(cat "$venv.stamp") | $reqs"
  if [ -d "$wheels" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "== $name: cached ($wheels)"
  else
    say "== $name: downloading into $wheels"
    rm -rf "$wheels" "$stamp"
    local log="$dir/$name.install.log" pins="$dir/$name.constraints.txt"
    # The same versions as the venv has, so a job's pip-deployments directory agrees with the venv.
    "$venv/bin/pip" freeze --disable-pip-version-check >"$pins"
    # shellcheck disable=SC2086
    if ! "$venv/bin/pip" download --disable-pip-version-check --only-binary=:all: -c "$pins" --dest "$wheels" $reqs \
      >"$log" 2>&1; then
      echo "client-venvs: downloading $name failed; see $log" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    echo "$want" >"$stamp"
  fi
  echo "$name=$wheels"
}

make_venv cwltes "setuptools<58 wheel" "--no-build-isolation" "cwl-tes==0.3.0 py-tes==1.1.4"
make_venv snakemake "" "" \
  "snakemake==9.27.1 snakemake-executor-plugin-tes==0.1.3 snakemake-storage-plugin-s3==0.3.6 py-tes==0.4.2"
make_wheelhouse snakemake-wheelhouse "$dir/snakemake" "snakemake-storage-plugin-s3==0.3.6"
