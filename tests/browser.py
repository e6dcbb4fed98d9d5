"""Headless Chromium for the report test: open an HTML file with a script of ours run after
it loads, and read back the page (its DOM) with every page error it raised.

Chromium runs as root here, offline: hence no sandbox, and none of its background network
traffic (refused by the closed network, it would show up as errors), in a new empty profile.
Installed, where missing, by `make test` (target report-setup: tests/report/setup.sh)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP_STATUS = ROOT / "build" / "report-setup.txt"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Installed before the page's own scripts run: collects uncaught errors and rejected promises.
CATCH = """<script>window.pageErrors = [];
window.addEventListener("error", e => pageErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", e => pageErrors.push(String(e.reason)));
</script>"""
# Our script's result, written into the DOM that --dump-dom prints.
RESULT = re.compile(r'<pre id="browser-result">(.*?)</pre>', re.S)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def why_missing() -> str:
    status = SETUP_STATUS.read_text().strip() if SETUP_STATUS.exists() else \
        "tests/report/setup.sh (run by `make test`) has not run"
    return f"no chromium on PATH; report-setup: {status}"


def run_in_page(html_file: Path, script: str, budget_ms: int = 20000) -> dict:
    """Open `html_file` in headless Chromium, run `script` once it has loaded: an async
    function body whose return value (JSON) comes back, with 'pageErrors' added."""
    text = html_file.read_text(encoding="utf-8")
    text = text.replace("<head>", "<head>" + CATCH, 1)
    end = text.rindex("</body>")  # the last: the page embeds HTML of its own
    text = text[:end] + f"""<script>
window.addEventListener("load", async () => {{
  let result;
  try {{ result = await (async () => {{ {script} }})(); }}
  catch (e) {{ pageErrors.push("our script: " + e); }}
  const out = document.createElement("pre");
  out.id = "browser-result";
  out.textContent = JSON.stringify({{result, pageErrors}});
  document.body.appendChild(out);
}});
</script>""" + text[end:]
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(text, encoding="utf-8")
        proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp}/profile",
                               f"--virtual-time-budget={budget_ms}", "--dump-dom",
                               page.as_uri()], capture_output=True, text=True, timeout=180)
    found = RESULT.search(proc.stdout)
    if not found:
        raise AssertionError(f"chromium printed no result (exit {proc.returncode}):\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(html.unescape(found.group(1)))
