#!/usr/bin/env python3
"""The console on the metrics listener: its JSON endpoints agree with `strata stats`, `strata
top` and `strata clients`; the page, in a real headless Chromium driven over the DevTools
protocol (Debian's python3-websocket), shows a load within seconds in its numbers and charts,
logs no console error (a CSP violation is one), and a screenshot's chart areas are not blank.
Runs under Debian's /usr/bin/python3 (python3-websocket, python3-pil)."""
import os
import sys

try:
    import websocket  # noqa: F401
    from PIL import Image  # noqa: F401
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    websocket = None

import base64
import io
import json
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Browser:
    """Headless Chromium with a DevTools websocket to its one page."""

    def __init__(self, chromium, width=1400, height=2000):
        self.dir = tempfile.mkdtemp(prefix="strata-chromium-")
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--no-sandbox", "--remote-debugging-port=0", f"--user-data-dir={self.dir}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        deadline = time.time() + 30
        def port_text():
            if not os.path.exists(port_file):
                return ""
            with open(port_file) as f:
                return f.read().strip()
        while not port_text():
            if time.time() > deadline or self.proc.poll() is not None:
                raise AssertionError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_text().split()[0])
        pages = json.loads(get(f"http://127.0.0.1:{port}/json/list")[2])
        page = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0
        self.events = []
        for method in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(method)

    def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def errors(self):
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"].get("text", "") + " " +
                           str(p["exceptionDetails"].get("exception", {}).get("description", "")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append("log: " + p["entry"].get("text", "") + " " + p["entry"].get("url", "") +
                           ":" + str(p["entry"].get("lineNumber", "")) + " " +
                           str([f.get("functionName") for f in p["entry"].get("stackTrace", {}).get("callFrames", [])][:4]))
        return out

    def screenshot(self):
        return Image.open(io.BytesIO(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])))

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(what, condition, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class DashboardTest(unittest.TestCase):
    def test_json_endpoints_agree_with_the_cli(self):
        with h.Stratad(config='[time]\nsource = "local"\n[cost]\nprice = 0.09\n') as d:
            base = d.metrics_url.replace("/metrics", "")
            h.within_one_window(20)  # the two reads of the 1m top talkers below in one minute
            r = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "30",
                       "--source-prefix", "127.9.0.0/24", "--rate", "3000", "--duration", "1", "--json"], timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            status, headers, body = get(base + "/api/v1/stats")
            self.assertEqual(status, 200)
            self.assertEqual(headers["Cache-Control"], "no-store")
            self.assertIn("default-src 'self'", headers["Content-Security-Policy"])
            api = json.loads(body)
            cli = d.stats()
            for name in ("received", "responses_sent", "processed", "bytes_out_v4", "kod_sent"):
                self.assertEqual(api["counters"][name], cli["counters"][name], name)
            self.assertEqual(api["time"]["stratum"], cli["time"]["stratum"])
            # Top talkers: the same rows as strata top.
            top_api = json.loads(get(base + "/api/v1/top?window=1m&limit=5")[2])
            top_cli = json.loads(h.run([h.STRATA, "top", "--control", d.control, "--limit", "5", "--json"],
                                       check=True).stdout)
            self.assertEqual([(x["key"], x["count"]) for x in top_api["rows"]],
                             [(x["key"], x["count"]) for x in top_cli["rows"]])
            self.assertEqual(top_api["total"], top_cli["total"])
            # Clients, paged: two pages of 10 are the first 20 of strata clients --sort addr.
            cli_rows = json.loads(h.run([h.STRATA, "clients", "--control", d.control, "--sort", "addr", "--json"],
                                        check=True).stdout)
            page1 = json.loads(get(base + "/api/v1/clients?sort=addr&limit=10")[2])
            page2 = json.loads(get(base + "/api/v1/clients?sort=addr&limit=10&offset=10")[2])
            self.assertEqual(page1["matched"], 30)
            address = page1["columns"].index("address")
            count = page1["columns"].index("count")
            got = [(r[address], r[count]) for r in page1["rows"] + page2["rows"]]
            self.assertEqual(got, [(r["address"], r["count"]) for r in cli_rows[:20]])
            # The history endpoint is the control API's.
            hist = json.loads(get(base + "/api/v1/history?series=requests&since=-30&step=1")[2])
            self.assertEqual(hist["step"], 1)
            self.assertGreater(max(v or 0 for v in hist["series"][0]["mean"]), 1000)
            # Refusals: a clear 400 or 404, and the server keeps serving.
            for path, code, text in (("/api/v1/history?series=nope", 400, "no series 'nope'"),
                                     ("/api/v1/clients?limit=5000", 400, "limit must be 1..1000"),
                                     ("/api/v1/clients?limit=-1", 400, "limit"),
                                     ("/api/v1/top?window=2m", 400, "window must be"),
                                     ("/api/v1/top?bogus=1", 400, "unknown parameter 'bogus'"),
                                     ("/api/v1/nothing", 404, "no such endpoint"),
                                     ("/nothing.html", 404, "no such page")):
                status, _, body = get(base + path)
                self.assertEqual(status, code, path)
                self.assertIn(text, body.decode(), path)
            # The page and its files: embedded, with the security headers.
            for path, kind in (("/", "text/html"), ("/app.js", "text/javascript"),
                               ("/dygraph.min.js", "text/javascript"), ("/style.css", "text/css")):
                status, headers, body = get(base + path)
                self.assertEqual(status, 200, path)
                self.assertTrue(headers["Content-Type"].startswith(kind), headers)
                self.assertEqual(headers["X-Frame-Options"], "DENY")
            self.assertIsNotNone(h.exchange(d.v4, h.request()))

    def test_page_in_headless_chromium(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        h.require(chromium is not None, "chromium not installed (./setup installs it)")
        h.require(websocket is not None, "python3-websocket and python3-pil not installed (./setup installs them)")
        with h.Stratad(config='[time]\nsource = "local"\n[cost]\nprovider = "aws"\n') as d:
            base = d.metrics_url.replace("/metrics", "")
            browser = Browser(chromium)
            try:
                browser.call("Page.navigate", url=base + "/")
                wait_until("two updates of the page",
                           lambda: int(browser.evaluate("document.body ? document.body.dataset.updates || 0 : 0")) >= 2, 30)
                before = browser.evaluate("document.getElementById('t-requests').textContent")
                self.assertIn(before, ("0", "-"))
                self.assertEqual(browser.evaluate("document.getElementById('time-source').textContent"), "local")
                # A load: the numbers and the chart follow within seconds.
                load = threading.Thread(target=lambda: h.run(
                    [h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "50",
                     "--source-prefix", "127.8.0.0/24", "--rate", "2000", "--duration", "4"], timeout=60))
                started = time.time()
                load.start()

                def busy():
                    text = browser.evaluate("document.getElementById('t-requests').textContent")
                    try:
                        # 2,000/s offered; well above idle even when a TSan-built strata load
                        # and Chromium share the two cores with other tests.
                        return float(text.replace(" k", "e3")) > 100
                    except ValueError:
                        return False
                wait_until("the requests tile to show the load", busy, 15)
                seen_after = time.time() - started
                peak = browser.evaluate("Math.max(...rows['c-traffic'].map(r => r[1] || 0))")
                self.assertGreater(peak, 100)
                load.join()
                wait_until("the top-talker table", lambda: browser.evaluate(
                    "document.querySelectorAll('#top tbody tr').length") >= 10, 10)
                self.assertTrue(browser.evaluate(
                    "document.querySelector('#top tbody tr td:nth-child(2)').textContent.startsWith('127.8.0.')"))
                self.assertNotEqual(browser.evaluate("document.getElementById('t-cost_month').textContent"), "-")
                self.assertGreater(browser.evaluate("document.querySelectorAll('#polls tbody tr').length"), 0)
                # Active blocks: one placed by hand shows within the next refresh.
                h.run([h.STRATA, "block", "add", "192.0.2.0/24", "--for", "1h", "--action", "kod",
                       "--reason", "dashboard test", "--control", d.control], check=True)
                cells = wait_until("the blocks table", lambda: (lambda c: c if c[:4] == ["192.0.2.0/24", "kod", "hand", "0"]
                                                                 else None)(browser.evaluate(
                    "Array.from(document.querySelectorAll('#blocks tbody td')).map(t => t.textContent)")), 10)
                self.assertIn(cells[4], ("1h 0m", "59m 59s", "59m 58s"))
                self.assertIn("(1 of at most 10000;", browser.evaluate(
                    "document.getElementById('blocks-summary').textContent"))
                self.assertTrue(browser.evaluate(
                    "document.querySelector('#blocks tbody tr td:last-child').textContent === 'dashboard test'"))
                # A reload of the page loses nothing: the history comes from the server.
                browser.call("Page.reload")
                wait_until("the reloaded page's first update",
                           lambda: int(browser.evaluate("document.body ? document.body.dataset.updates || 0 : 0")) >= 1, 30)
                peak = browser.evaluate("Math.max(...rows['c-traffic'].map(r => r[1] || 0))")
                self.assertGreater(peak, 100)
                # The charts are drawn: each chart area of the screenshot has many colours
                # (lines, labels, grid), not one blank fill.
                rects = browser.evaluate(
                    "Array.from(document.querySelectorAll('.chart')).map(e => { const r = e.getBoundingClientRect();"
                    " return [e.id, r.left, r.top, r.right, r.bottom]; })")
                shot = browser.screenshot()
                if os.environ.get("STRATA_SCREENSHOT"):
                    shot.save(os.environ["STRATA_SCREENSHOT"])
                ratio = shot.width / browser.evaluate("window.innerWidth")
                for id_, left, top, right, bottom in rects:
                    area = shot.crop(tuple(int(v * ratio) for v in (left, top, right, bottom))).convert("RGB")
                    colours = len(set(area.getdata()))
                    self.assertGreater(colours, 20, f"{id_} looks blank ({colours} colours)")
                traffic = next(r for r in rects if r[0] == "c-traffic")
                area = shot.crop(tuple(int(v * ratio) for v in traffic[1:])).convert("RGB")
                self.assertGreater(sum(1 for p in area.getdata() if p[2] > p[0] + 60), 100,
                                   "no line drawn in the traffic chart")
                self.assertEqual(browser.errors(), [])
                self.assertEqual(browser.evaluate("document.getElementById('errors').textContent"), "")
                sys.stderr.write(f"\nthe requests tile showed the load {seen_after:.1f} s after it began\n")
            finally:
                browser.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
