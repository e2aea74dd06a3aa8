"""report.html in a real browser: headless Chromium (the Debian package) opens a real
run's report from a file:// URL with the network off, driven over the DevTools protocol
on a pipe (``--remote-debugging-pipe``: NUL-terminated JSON on file descriptors 3 and 4,
the standard library only). The page must load, log no console error and make no
request, show every image (``naturalWidth > 0``) and the test metrics table.

Skipped when /usr/bin/chromium is absent (``apt-get install chromium``)."""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = os.environ.get("KERAPIPE_REPORT_SCREENSHOT")  # where to keep a screenshot

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent: the browser test needs "
    "Debian's chromium package (apt-get install -y chromium)")]


class DevTools:
    """One headless Chromium, driven over ``--remote-debugging-pipe``."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def pipes_at_3_and_4() -> None:  # the browser reads commands on 3, answers on 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=pipes_at_3_and_4)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, (method, reply["error"])
                return reply.get("result", {})

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._receive(timeout)
            if event.get("method") == method:
                return event

    def _receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer over the DevTools pipe")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(message)
        if "method" in message:
            self.events.append(message)
        return message

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (OSError, TimeoutError, EOFError, AssertionError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def iris_report(tmp_path_factory, kerapipe_main) -> Path:
    out = tmp_path_factory.mktemp("runs")
    code = kerapipe_main("run", ROOT / "pipelines" / "iris.yaml", "--set", "train.epochs=2",
                         "--output", out)
    assert code == 0
    return next(out.iterdir()) / "report.html"


_CHECKS = """JSON.stringify({
  images: Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth,
                                                   i.naturalHeight]),
  metrics: Array.from(document.querySelectorAll('#test-metrics tbody tr'))
                 .map(r => r.innerText),
  headings: Array.from(document.querySelectorAll('h2')).map(h => h.innerText),
  height: document.documentElement.scrollHeight
})"""


def test_report_loads_offline_without_errors_and_shows_its_plots_and_metrics(
        iris_report, tmp_path):
    browser = DevTools(tmp_path / "profile")
    try:
        target = next(t for t in browser.send("Target.getTargets")["targetInfos"]
                      if t["type"] == "page")
        session = browser.send("Target.attachToTarget", {"targetId": target["targetId"],
                                                         "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1,
            "uploadThroughput": -1}, session=session)
        browser.send("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            session=session)
        browser.send("Page.navigate", {"url": iris_report.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        checks = json.loads(browser.send("Runtime.evaluate", {
            "expression": _CHECKS, "returnByValue": True}, session=session)["result"]["value"])
        shot = browser.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": min(checks["height"], 4000),
                     "scale": 1}}, session=session)
        browser.send("Runtime.evaluate", {"expression": "1"}, session=session)  # events in
    finally:
        browser.close()
    if SCREENSHOT:
        Path(SCREENSHOT).write_bytes(base64.b64decode(shot["data"]))
    errors = [e for e in browser.events
              if (e["method"] == "Runtime.consoleAPICalled"
                  and e["params"]["type"] in ("error", "assert"))
              or e["method"] == "Runtime.exceptionThrown"
              or (e["method"] == "Log.entryAdded"
                  and e["params"]["entry"]["level"] == "error")]
    assert errors == []
    requests = [e["params"]["request"]["url"] for e in browser.events
                if e["method"] == "Network.requestWillBeSent"]
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    assert [alt for alt, *_ in checks["images"]] == ["learning curves", "confusion matrix"]
    assert all(complete and width > 0 and height > 0
               for _, complete, width, height in checks["images"]), checks["images"]
    assert [row.split("\t")[0] for row in checks["metrics"]] == ["accuracy", "loss"]
    assert "Most confused" in checks["headings"] and "History" in checks["headings"]
