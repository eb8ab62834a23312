#!/usr/bin/env python3
"""Traffic by network: with MaxMind's own test databases (tests/data/mmdb, MIT licence) in
[networks], clients from Google's 1.0.0.0/24, Bredband2's 89.160.20.112/28 (Sweden) and
67.43.156.0/24 (Bhutan, AS35908) are attributed to their AS and country in `strata top --by network|country`, `strata clients`
and the dashboard's API; a reload reads the databases again; a bad file is a configuration
error naming the file and line. The source addresses are made local in a network namespace
of the test's own (harness.main_in_netns)."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "mmdb")
ASN = os.path.join(DATA, "GeoLite2-ASN-Test.mmdb")
COUNTRY = os.path.join(DATA, "GeoLite2-Country-Test.mmdb")
SOURCES = {"1.0.0.0/24": 20, "89.160.20.112/28": 8, "67.43.156.0/24": 4}  # prefix: clients


def config(asn=ASN, country=COUNTRY):
    text = '[time]\nsource = "local"\n[networks]\n'
    if asn:
        text += f'asn = "{asn}"\n'
    if country:
        text += f'country = "{country}"\n'
    return text


class NetworksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require(h.NETNS == "1", "needs a network namespace of its own (unshare -rn) to make the sources local")
        if h.NETNS == "1":
            for prefix in SOURCES:
                subprocess.run(["ip", "route", "add", "local", prefix, "dev", "lo"], check=True)

    def load(self, d, prefix, clients, rate):
        r = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", str(clients),
                   "--source-prefix", prefix, "--rate", str(rate), "--duration", "1", "--json"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["received"]

    def test_top_clients_and_api_by_network(self):
        user = "root" if h.NETNS == "1" else None  # in the namespace there is no other user
        with h.Stratad(config=config(), user=user) as d:
            self.assertTrue(any("networks: ASN " + ASN in l for l in d.log), d.log)
            h.within_one_window(25)  # the loads and the reads below in one minute (and hour)
            google = self.load(d, "1.0.0.0/24", 20, 2000)
            sweden = self.load(d, "89.160.20.112/28", 8, 800)
            bhutan = self.load(d, "67.43.156.0/24", 4, 400)
            time.sleep(0.7)  # idle workers publish their top-talker counts
            top = json.loads(h.run([h.STRATA, "top", "--control", d.control, "--by", "network", "--json"],
                                   check=True).stdout)
            self.assertEqual(top["group"], "network")
            rows = {r["key"]: r for r in top["rows"]}
            self.assertIn("AS15169 Google Inc.", rows, (top, google, sweden, bhutan))
            self.assertEqual(rows["AS15169 Google Inc."]["count"], google)
            self.assertEqual(rows["AS15169 Google Inc."]["asn"], 15169)
            self.assertEqual(rows["AS29518 Bredband2 AB"]["count"], sweden)
            self.assertEqual(rows["AS35908"]["count"], bhutan)  # no organisation in the database
            self.assertAlmostEqual(rows["AS15169 Google Inc."]["share"], google / (google + sweden + bhutan), places=6)
            self.assertEqual(top["rows"][0]["key"], "AS15169 Google Inc.")
            countries = json.loads(h.run([h.STRATA, "top", "--control", d.control, "--by", "country", "--json"],
                                         check=True).stdout)
            by_country = {r["key"]: r["count"] for r in countries["rows"]}
            self.assertEqual(by_country["BT"], bhutan)
            # A prefix is attributed by its first address: 89.160.20.0 is in no network of
            # the country database (its Swedish /28 is narrower than the /24), 1.0.0.0 neither.
            self.assertEqual(by_country["unknown country"], google + sweden)
            text = h.run([h.STRATA, "top", "--control", d.control, "--by", "network"], check=True).stdout
            self.assertIn("top networks by requests", text)
            self.assertIn("AS15169 Google Inc.", text)
            # strata clients: ASN, organisation and country columns.
            clients = json.loads(h.run([h.STRATA, "clients", "--control", d.control, "--json"], check=True).stdout)
            self.assertEqual(len(clients), 32)
            for c in clients:
                if c["address"].startswith("1.0.0."):
                    self.assertEqual((c["asn"], c["org"], c["country"]), (15169, "Google Inc.", ""), c)
                elif c["address"].startswith("67.43.156."):
                    self.assertEqual((c["asn"], c["org"], c["country"]), (35908, "", "BT"), c)
                else:  # each address looked up itself: the Swedish /28
                    self.assertEqual((c["asn"], c["org"], c["country"]), (29518, "Bredband2 AB", "SE"), c)
            table = h.run([h.STRATA, "clients", "--control", d.control, "--limit", "40"], check=True).stdout
            self.assertIn("SE      AS29518 Bredband2 AB", table)
            self.assertIn("AS29518 Bredband2 AB", table)
            self.assertIn(" country network", table.splitlines()[1])
            csv = h.run([h.STRATA, "clients", "--control", d.control, "--csv"], check=True).stdout
            self.assertTrue(csv.splitlines()[0].endswith(",asn,org,country"), csv.splitlines()[0])
            # The dashboard's API: the same.
            base = d.metrics_url.replace("/metrics", "")
            api = json.loads(urllib.request.urlopen(base + "/api/v1/top?group=network", timeout=10).read())
            self.assertEqual(api["rows"], top["rows"])
            hour = json.loads(urllib.request.urlopen(base + "/api/v1/networks?group=country", timeout=10).read())
            self.assertEqual((hour["window"], hour["group"]), ("1h", "country"))
            self.assertEqual({r["key"]: r["count"] for r in hour["rows"]}["BT"], bhutan)
            page = json.loads(urllib.request.urlopen(base + "/api/v1/clients?sort=addr&limit=1", timeout=10).read())
            self.assertEqual(page["columns"][-3:], ["asn", "org", "country"])
            self.assertEqual(page["rows"][0][-3:], [15169, "Google Inc.", ""])
            # /metrics: the hour's top networks, ten at most, by rank (bounded labels).
            metrics = urllib.request.urlopen(d.metrics_url, timeout=10).read().decode()
            lines = [l for l in metrics.splitlines() if l.startswith("strata_top_network_share{")]
            self.assertTrue(lines[0].startswith('strata_top_network_share{rank="1",asn="15169",org="Google Inc."} '),
                            lines)
            self.assertLessEqual(len(lines), 10)
            stats = json.loads(urllib.request.urlopen(base + "/api/v1/stats", timeout=10).read())
            self.assertTrue(stats["networks"])  # the page shows its top-network tables then
            # A reload reads them again (here: only the country database is left).
            with open(d.config_path, "w") as f:
                f.write(config(asn="") + "\n[ratelimit]\nenabled = false\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while time.time() < deadline and not any("[networks] read again" in l for l in d.log):
                time.sleep(0.1)
            self.assertTrue(any("[networks] read again: country " + COUNTRY in l for l in d.log), d.log)
            clients = json.loads(h.run([h.STRATA, "clients", "--control", d.control, "--json"], check=True).stdout)
            self.assertTrue(all(c["asn"] == 0 for c in clients))
            self.assertTrue(any(c["country"] == "SE" for c in clients))

    def test_without_databases_and_with_bad_ones(self):
        user = "root" if h.NETNS == "1" else None
        with h.Stratad(user=user) as d:
            r = h.run([h.STRATA, "top", "--control", d.control, "--by", "network"])
            self.assertEqual(r.returncode, 2)
            self.assertIn("no network databases ([networks] asn, country)", r.stderr)
            clients = h.run([h.STRATA, "clients", "--control", d.control, "--csv"], check=True).stdout
            self.assertNotIn("asn", clients.splitlines()[0])
            bad = os.path.join(d.dir, "bad.mmdb")
        with open(bad, "w") as f:
            f.write("not a database\n")
        path = os.path.join(os.path.dirname(bad), "bad.toml")
        for asn, reason in ((bad, "cannot open " + bad), ("/nonexistent.mmdb", "cannot open /nonexistent.mmdb")):
            with open(path, "w") as f:
                f.write(config(asn=asn, country=""))
            r = h.run([h.STRATAD, "--config", path, "--check-config"])
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(f"{path}:4", r.stderr)
            self.assertIn(reason, r.stderr)


if __name__ == "__main__":
    h.main_in_netns(__file__, [], ["127.0.0.1"])
