#!/usr/bin/env python3
"""strata cost against a live stratad (measured packets and bytes), against `strata stats`
text pasted as sysstats, and by hand; the arithmetic is checked from the inputs it shows.
(NTPsec ntpq's own sysstats output is fed to it in test_ntpq.py.)"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MONTH = 30.436875 * 86400
GIB = 2 ** 30


def aws(gib):
    billed = max(0.0, gib - 100)
    usd, start = 0.0, 0.0
    for up_to, price in ((10240, 0.09), (51200, 0.085), (153600, 0.07), (float("inf"), 0.05)):
        usd += max(0.0, min(billed, up_to) - start) * price
        start = up_to
    return usd


class CostTest(unittest.TestCase):
    def test_live_server_measured_bytes(self):
        with h.Stratad() as d:
            h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "50",
                   "--rate", "2000", "--duration", "1"], check=True)
            r = h.run([h.STRATA, "cost", "--control", d.control, "--provider", "aws", "--json"], check=True)
            out = json.loads(r.stdout)
            counters = d.counters()
        inputs = out["inputs"]
        self.assertEqual(inputs["received"], counters["received"])
        self.assertEqual(inputs["sent"], counters["responses_sent"])
        # 76 IP-level octets per request and per reply (48 NTP + 8 UDP + 20 IPv4).
        self.assertAlmostEqual(inputs["in_bytes_per_s"] / inputs["in_pps"], 76, places=6)
        gib = inputs["out_bytes_per_s"] * MONTH / GIB
        self.assertAlmostEqual(out["gib_per_month_out"], gib, places=6)
        row = out["providers"][0]
        self.assertEqual(row["provider"], "aws")
        self.assertAlmostEqual(row["usd_per_month"], aws(gib), places=6)
        self.assertAlmostEqual(row["usd_per_year"], 12 * aws(gib), places=6)

    def test_strata_stats_text_as_sysstats(self):
        # A rate-limited server: many of its replies are KoDs, which are sent and billed.
        with h.Stratad(ratelimit=True) as d:
            h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "10",
                   "--rate", "1000", "--duration", "1"], check=True)
            time.sleep(1.1)  # a whole second since start at least
            text = h.run([h.STRATA, "stats", "--control", d.control], check=True).stdout
            counters = d.counters()
        self.assertGreaterEqual(counters["kod_sent"], 10)  # one per client: paced to one per 8 s
        # strata stats text: the replies and bytes stratad counted, nothing inferred.
        r = h.run([h.STRATA, "cost", "--sysstats", "-", "--price", "0.05", "--json"], input=text, check=True)
        out = json.loads(r.stdout)
        self.assertEqual(out["inputs"]["source"], "strata-stats")
        self.assertEqual(out["inputs"]["received"], counters["received"])
        self.assertEqual(out["inputs"]["sent"], counters["responses_sent"] + counters["control_responses"])
        secs = out["inputs"]["seconds"]
        self.assertAlmostEqual(out["inputs"]["out_bytes_per_s"],
                               (counters["bytes_out_v4"] + counters["bytes_out_v6"]) / secs, places=6)
        gib = out["inputs"]["out_bytes_per_s"] * MONTH / GIB
        self.assertAlmostEqual(out["gib_per_month_out"], gib, places=6)
        self.assertAlmostEqual(out["providers"][0]["usd_per_month"], 0.05 * gib, places=6)
        # Only the ntpq labels (what ntpq -c sysstats shows): the replies inferred from the
        # buckets, KoDs counted, agree with what stratad sent; the KoD-less figure is shown.
        ntpq_part = text.split("\n\n")[0] + "\n"
        self.assertNotIn("responses sent", ntpq_part)
        r = h.run([h.STRATA, "cost", "--sysstats", "-", "--price", "0.05", "--json"], input=ntpq_part, check=True)
        out = json.loads(r.stdout)
        self.assertEqual(out["inputs"]["source"], "sysstats")
        self.assertEqual(out["inputs"]["sent"], counters["responses_sent"])
        self.assertEqual(out["inputs"]["sent_without_kod"], counters["responses_sent"] - counters["kod_sent"])
        text_out = h.run([h.STRATA, "cost", "--sysstats", "-", "--price", "0.05"], input=ntpq_part, check=True).stdout
        self.assertIn("+ KoD responses", text_out)
        self.assertIn("without the KoDs (as often published)", text_out)

    def test_by_hand_and_errors(self):
        r = h.run([h.STRATA, "cost", "--rate", "1000"], check=True)
        self.assertIn("186.1 GiB/month", r.stdout)  # 1000/s x 76 octets x 30.436875 days
        # The free allowance: the part used, of all of it.
        self.assertRegex(r.stdout, r"\n  aws +186\.1 +100\.0 of 100 ")
        self.assertRegex(r.stdout, r"\n  digitalocean +186\.1 +186\.1 of 1000 ")
        for name in ("aws", "gcp", "azure", "digitalocean", "hetzner", "unmetered"):
            self.assertRegex(r.stdout, rf"\n  {name} ")
        r = h.run([h.STRATA, "cost", "--rate", "1000", "--provider", "nope"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("no provider 'nope'", r.stderr)
        with h.Stratad() as d0:
            bad = os.path.join(d0.dir, "prices.toml")
        with open(bad, "w") as f:
            f.write("[providers.x]\nbilled = \"sideways\"\ntiers = [[inf, 0.1]]\n")
        r = h.run([h.STRATA, "cost", "--rate", "1", "--prices", bad])
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{bad}:1: providers.x: billed must be out, in or both", r.stderr)
        r = h.run([h.STRATA, "cost", "--rate", "1", "--v6-share", "1", "--l2", "--price", "1", "--json"], check=True)
        self.assertAlmostEqual(json.loads(r.stdout)["gib_per_month_out"], 110 * MONTH / GIB, places=9)


if __name__ == "__main__":
    unittest.main(verbosity=2)
