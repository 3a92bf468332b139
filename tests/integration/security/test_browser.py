"""A real browser (Debian's chromium, headless) opens an attacker's page that goes after a local ktes.

The page is served from another origin (another port on 127.0.0.1) and tries what any web page can: a
``text/plain`` POST carrying a task (no preflight needed), a JSON POST (needs a preflight), a form post,
a bodiless cancel, and a read. ktes must create and cancel nothing; reads stay open to any page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, start_server

PAGE = """<!doctype html><html><body><iframe name="sink"></iframe><div id="out">pending</div><script>
const tes = "TES_URL";
const body = JSON.stringify({name: "from-a-web-page", executors: [{image: "x", command: ["true"]}]});
const out = [];
async function attempt(name, send) {
  try { const r = await send(); out.push(name + ":" + (r.type === "opaque" ? "opaque" : r.status)); }
  catch (e) { out.push(name + ":blocked"); }
}
(async () => {
  await attempt("textplain", () => fetch(tes + "/tasks",
    {method: "POST", mode: "no-cors", headers: {"content-type": "text/plain"}, body}));
  await attempt("json", () => fetch(tes + "/tasks",
    {method: "POST", headers: {"content-type": "application/json"}, body}));
  await attempt("cancel", () => fetch(tes + "/tasks/TASK_ID:cancel", {method: "POST", mode: "no-cors"}));
  await attempt("read", () => fetch(tes + "/service-info"));
  const form = document.createElement("form");
  form.method = "POST"; form.action = tes + "/tasks"; form.enctype = "text/plain"; form.target = "sink";
  const field = document.createElement("input");
  field.name = body.slice(0, -1) + ', "x": "'; field.value = '"}';
  form.appendChild(field); document.body.appendChild(form); form.submit();
  await new Promise(done => setTimeout(done, 2000));
  document.getElementById("out").textContent = out.join(" ");
})();
</script></body></html>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KtesServer]:
    running = start_server(tmp_path_factory.mktemp("ktes-browser"), env={"KTES_ENGINE_ENABLED": "false"})
    try:
        yield running
    finally:
        running.stop()


def serve_page(html: str) -> tuple[ThreadingHTTPServer, str]:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/evil.html"


def open_in_browser(url: str, tmp: str) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is needed (scripts/test installs Debian's package)"
    done = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp}",
            "--virtual-time-budget=15000", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<div id="out">(.*?)</div>', done.stdout)
    assert found, f"no result from the page:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return found.group(1)


def test_an_attackers_page_creates_and_cancels_nothing(
    server: KtesServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    queued = httpx.post(f"{server.tes_url}/tasks", json={"executors": [{"image": "x", "command": ["true"]}]})
    task_id = queued.json()["id"]
    httpd, url = serve_page(PAGE.replace("TES_URL", server.tes_url).replace("TASK_ID", task_id))
    try:
        result = open_in_browser(url, str(tmp_path_factory.mktemp("chromium")))
    finally:
        httpd.shutdown()
    attempts = dict(item.split(":", 1) for item in result.split())
    assert attempts["read"] == "200"  # any page may read
    assert attempts["json"] == "blocked"  # the preflight was refused
    tasks = httpx.get(f"{server.tes_url}/tasks", params={"view": "BASIC"}).json()["tasks"]
    assert [t["id"] for t in tasks] == [task_id]  # nothing created by the page, by fetch or by form
    assert tasks[0]["state"] == "QUEUED"  # and not canceled
