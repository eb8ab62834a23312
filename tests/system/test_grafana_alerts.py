#!/usr/bin/env python3
"""The operator's dashboards and alerts against the real tools: examples/prometheus/
strata-alerts.yml passes `promtool check rules` and its unit tests (`promtool test rules`);
examples/grafana/strata.json is a well-formed Grafana dashboard whose every query names only
metrics of docs/metrics.md, and a real Prometheus scraping a real stratad answers every one
of those queries (with data) once Grafana's variables are filled in."""
import json
import os
import re
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_prometheus import PROMETHEUS, PROMTOOL, start_prometheus  # noqa: E402

EXAMPLES = os.path.join(h.SOURCE, "examples")
RULES = os.path.join(EXAMPLES, "prometheus", "strata-alerts.yml")
DASHBOARD = os.path.join(EXAMPLES, "grafana", "strata.json")
METRIC = re.compile(r"\b((?:strata|process)_[a-z0-9_]+)\b")


def documented():
    with open(os.path.join(h.SOURCE, "docs", "metrics.md")) as f:
        return set(re.findall(r"^\| `([a-z0-9_]+)`", f.read(), re.M))


def unknown_metrics(expr, names):
    out = []
    for m in METRIC.findall(expr):
        base = re.sub(r"_(bucket|sum|count)$", "", m)
        if m not in names and base not in names:
            out.append(m)
    return out


def exprs(dashboard):
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            yield p["title"], t["expr"]


class AlertsTest(unittest.TestCase):
    def setUp(self):
        h.require(os.access(PROMTOOL, os.X_OK), f"{PROMTOOL} missing (./setup unpacks prometheus)")

    def test_rules_check_and_unit_tests_pass(self):
        r = h.run([PROMTOOL, "check", "rules", RULES])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: 12 rules found", r.stdout)
        r = h.run([PROMTOOL, "test", "rules", "strata-alerts.test.yml"], cwd=os.path.dirname(RULES))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)
        with open(RULES) as f:
            text = f.read()
        names = documented()
        for expr in re.findall(r"expr: ?\|?\n?((?:.*\n)+?)\s+(?:for|labels):", text):
            self.assertEqual(unknown_metrics(expr, names), [], expr)
        for alert in ("StrataUnsynchronised", "StrataKernelDrops", "StrataKodShareJump", "StrataRateLimitedShareJump",
                      "StrataTrafficSurge", "StrataProcessingSlow", "StrataStateSaveFailing"):
            self.assertIn(f"alert: {alert}\n", text)

    def test_a_broken_rule_file_is_refused(self):
        # The check is real: promtool refuses a rule whose expression does not parse.
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(strata_received_total[5m] >\n")
        self.addCleanup(os.unlink, f.name)
        self.assertNotEqual(h.run([PROMTOOL, "check", "rules", f.name]).returncode, 0)


class GrafanaTest(unittest.TestCase):
    def test_dashboard_is_well_formed_and_names_documented_metrics(self):
        with open(DASHBOARD) as f:
            d = json.load(f)
        for key in ("title", "uid", "schemaVersion", "panels", "templating"):
            self.assertIn(key, d)
        self.assertEqual(d["__inputs"][0]["pluginId"], "prometheus")
        variables = {v["name"] for v in d["templating"]["list"]}
        self.assertEqual(variables, {"DS_PROMETHEUS", "instance"})
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        cells = set()
        for p in d["panels"]:
            self.assertIn(p["type"], ("timeseries", "stat"))
            self.assertEqual(p["datasource"]["uid"], "${DS_PROMETHEUS}")
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{p['title']} overlaps another panel")
                    cells.add((x, y))
            refs = [t["refId"] for t in p["targets"]]
            self.assertTrue(refs and len(refs) == len(set(refs)), p["title"])
        names = documented()
        for title, expr in exprs(d):
            self.assertEqual(unknown_metrics(expr, names), [], f"{title}: {expr}")
        # What the issue asks the dashboard to show.
        text = json.dumps(d)
        for metric in ("strata_received_total", "strata_kod_sent_total", "strata_rate_limited_total",
                       "strata_unique_clients", "strata_processing_time_seconds_bucket", "strata_bytes_out_v4_total",
                       "strata_cost_month_usd", "strata_top_talker_share", "strata_time_synchronised",
                       "strata_time_stratum", "strata_restricted_total"):
            self.assertIn(metric, text)

    def test_prometheus_answers_every_panel_query(self):
        h.require(os.access(PROMETHEUS, os.X_OK), f"{PROMETHEUS} missing (./setup unpacks prometheus)")
        with open(DASHBOARD) as f:
            d = json.load(f)
        state = h.state_dir()
        config = f'[time]\nsource = "local"\n[cost]\nprice = 0.09\n[clients]\nstate_dir = "{state}"\nsave_interval = 1\n'
        with h.Stratad(config=config) as s:
            h.run([h.STRATA, "block", "add", "192.0.2.0/24", "--for", "1h", "--control", s.control], check=True)
            prom, web = start_prometheus(s.metrics_url, "prometheus-grafana-")
            try:
                load = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{s.port}", "--clients", "20", "--rate", "500",
                              "--duration", "6", "--json"], timeout=60)
                self.assertEqual(load.returncode, 0, load.stderr)

                def query(expr):
                    q = urllib.parse.quote(expr)
                    with urllib.request.urlopen(f"http://{web}/api/v1/query?query={q}", timeout=10) as r:
                        return json.loads(r.read())

                deadline = time.time() + 60  # a busy machine starts Prometheus slowly
                while time.time() < deadline:
                    try:
                        if query('count(count_over_time(strata_received_total[30s]) >= 5)')["data"]["result"]:
                            break
                    except OSError:
                        pass
                    time.sleep(0.5)
                for title, expr in exprs(d):
                    filled = expr.replace("$__rate_interval", "10s").replace("$instance", ".*")
                    doc = query(filled)
                    self.assertEqual(doc["status"], "success", f"{title}: {filled}")
                    self.assertTrue(doc["data"]["result"], f"{title}: no data for {filled}")
            finally:
                prom.terminate()
                prom.wait(timeout=10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
