"""The ELIXIR TES web component (npm ``@elixir-cloud/tes``) bundled into one ES module for a test page.

The package is ES modules with bare imports (lit, @elixir-cloud/design, shoelace), so it is installed with
npm and bundled with esbuild (also from npm) once per machine into a cache directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

PACKAGE = "@elixir-cloud/tes@1.0.1"
BUNDLER = "esbuild@0.24.2"
#: The runs list, the details view it shows when a run is expanded, and the create-run form (the package's
#: index.js defines no element; each component's index.js defines its own, and the runs list does not import
#: the details view).
ENTRY = (
    "import '@elixir-cloud/tes/dist/components/runs/index.js';\n"
    "import '@elixir-cloud/design/dist/components/details/index.js';\n"
    "import '@elixir-cloud/tes/dist/components/create-run/index.js';\n"
)
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
CACHE = CACHE_ROOT / "ktes-tests" / "elixir-tes-1.0.1-runs-details"


def elixir_tes_bundle() -> Path:
    """The bundle's path (built on first use)."""
    bundle = CACHE / f"bundle-{hashlib.sha256(ENTRY.encode()).hexdigest()[:12]}.js"
    if bundle.exists():
        return bundle
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (CACHE / "node_modules" / ".bin" / "esbuild").exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is missing: install Debian's npm (scripts/test does)")
        (CACHE / "package.json").write_text('{"name": "ktes-elixir-probe", "private": true}\n')
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", PACKAGE, BUNDLER],
            cwd=CACHE,
            check=True,
            capture_output=True,
            timeout=600,
        )
    (CACHE / "entry.js").write_text(ENTRY)
    partial = CACHE / "bundle.partial.js"
    subprocess.run(
        [
            str(CACHE / "node_modules" / ".bin" / "esbuild"),
            "entry.js",
            "--bundle",
            "--format=esm",
            f"--outfile={partial.name}",
        ],
        cwd=CACHE,
        check=True,
        capture_output=True,
        timeout=300,
    )
    partial.rename(bundle)
    return bundle
