#!/usr/bin/env python3
"""The metrics endpoint against the real thing: promtool (Debian's prometheus package,
unpacked by ./setup) checks the exposition, and Prometheus itself scrapes stratad on loopback
and answers a PromQL query with stratad's request counter."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PEERS = os.path.join(h.PEERS, "prometheus", "usr", "bin")
PROMETHEUS = os.path.join(PEERS, "prometheus")
PROMTOOL = os.path.join(PEERS, "promtool")


def fetch(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, None, ""


def start_prometheus(metrics_url, prefix="prometheus-test-"):
    """A Prometheus scraping `metrics_url` every second: (process, its web address). A port
    free for UDP may be taken for TCP: Prometheus then exits at once, and is started again
    on another one."""
    target = urllib.parse.urlparse(metrics_url).netloc
    work = tempfile.mkdtemp(prefix=prefix)
    conf = os.path.join(work, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n"
                f"  - job_name: stratad\n    static_configs:\n      - targets: ['{target}']\n")
    for _ in range(3):
        web = f"127.0.0.1:{h.free_port()}"
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={work}/data",
                                 f"--web.listen-address={web}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        if prom.poll() is None:
            break
    return prom, web


class PrometheusTest(unittest.TestCase):
    def setUp(self):
        h.require(os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK),
                  f"{PROMETHEUS} missing (./setup unpacks prometheus)")

    def test_endpoint_and_promtool(self):
        with h.Stratad() as d:
            for _ in range(5):
                h.exchange(d.v4, h.request())
            url = d.metrics_url
            self.assertIsNotNone(url, d.log)
            status, ctype, text = fetch(url)
            self.assertEqual(status, 200)
            self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
            self.assertIn("strata_received_total 5\n", text)
            self.assertIn('strata_processing_time_seconds_bucket{le="+Inf"} 5\n', text)
            self.assertIn('strata_unique_clients{window="1m",kind="v4"} 1\n', text)
            check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, text=True,
                                   capture_output=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            self.assertEqual(fetch(url.replace("/metrics", "/other"))[0], 404)
            self.assertEqual(fetch(url, method="POST")[0], 405)

    def test_prometheus_scrapes_and_answers_promql(self):
        with h.Stratad() as d:
            prom, web = start_prometheus(d.metrics_url)
            try:
                for _ in range(40):
                    h.exchange(d.v4, h.request())
                query = urllib.parse.quote('strata_received_total{job="stratad"}')
                value, deadline = None, time.time() + 60  # a busy machine starts Prometheus slowly
                while time.time() < deadline:
                    try:
                        status, _, body = fetch(f"http://{web}/api/v1/query?query={query}")
                        result = json.loads(body)["data"]["result"] if status == 200 else []
                        if result and float(result[0]["value"][1]) >= 40:
                            value = float(result[0]["value"][1])
                            break
                    except (OSError, ValueError, KeyError):
                        pass
                    time.sleep(0.5)
                self.assertEqual(value, 40.0)
            finally:
                prom.terminate()
                prom.wait(timeout=20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
