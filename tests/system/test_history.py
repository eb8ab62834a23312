#!/usr/bin/env python3
"""stratad's own history: a load shows up in `strata history` second by second and minute by
minute, matching the counters; the cost series follows [cost]; the history survives a restart
through the state directory; a damaged file is refused with a reason and kept aside."""
import csv
import io
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MONTH = 30.436875 * 86400
GIB = 2 ** 30


def history(d, *args):
    r = h.run([h.STRATA, "history", "--control", d.control] + list(args), timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"strata history {' '.join(args)}: {r.returncode}\n{r.stderr}")
    return r.stdout


def series(doc, name):
    for s in doc["series"]:
        if s["name"] == name:
            return s
    raise AssertionError(f"no series {name} in {[s['name'] for s in doc['series']]}")


def wait_for_second(d, after):
    """Waits until the history has a sample of a second after `after` (the sampler runs just
    after each second begins)."""
    deadline = time.time() + 10
    while time.time() < deadline:
        doc = json.loads(history(d, "--series", "requests", "--since", "20s", "--json"))
        values = series(doc, "requests")["mean"]
        last = doc["start"] + max((i for i, v in enumerate(values) if v is not None), default=-1)
        if last > after:
            return
        time.sleep(0.2)
    raise AssertionError("the history recorded no second after the load")


class HistoryTest(unittest.TestCase):
    def test_load_shows_in_the_history_and_survives_a_restart(self):
        state = h.state_dir(prefix="strata-history-")
        config = (f'[time]\nsource = "local"\n[clients]\nstate_dir = "{state}"\nsave_interval = 1\n'
                  '[cost]\nprice = 0.10\n')
        with h.Stratad(config=config, threads=2) as d:
            # The first sample covers start-up to the next second: a rate over less than a
            # second. From the next one on, each covers a second, and the rates add up.
            wait_for_second(d, int(time.time()))
            before = d.counters()
            r = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "40",
                       "--source-prefix", "127.7.0.0/24", "--rate", "2000", "--duration", "3",
                       "--json"], timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            end = int(time.time())
            wait_for_second(d, end)
            after = d.counters()
            doc = json.loads(history(d, "--since", "40s", "--json"))
            self.assertEqual(doc["step"], 1)
            self.assertEqual(len(doc["series"]), 20)  # every series when none is named
            requests = [v for v in series(doc, "requests")["mean"] if v is not None]
            replies = [v for v in series(doc, "replies")["mean"] if v is not None]
            # Rates over the time between readings (about a second each): their sum is the
            # count, to within the readings' timing.
            received = after["received"] - before["received"]
            sent = after["responses_sent"] - before["responses_sent"]
            self.assertGreater(received, 4000)
            self.assertLess(abs(sum(requests) - received) / received, 0.1, (sum(requests), received))
            self.assertLess(abs(sum(replies) - sent) / sent, 0.1, (sum(replies), sent))
            self.assertGreater(max(requests), 1000)
            # The second's cost at a flat $0.10 per GiB sent, a month of it.
            out = series(doc, "bytes_out_v4")["mean"]
            cost = series(doc, "cost_month")["mean"]
            busy = max(range(len(out)), key=lambda i: out[i] or 0)
            self.assertAlmostEqual(cost[busy], out[busy] * MONTH / GIB * 0.10, delta=1e-3 * cost[busy])
            self.assertEqual(series(doc, "bytes_in_v6")["mean"][busy], 0)  # all of it IPv4
            # 40 clients in the current minute (HyperLogLog: within a few percent).
            unique = [v for v in series(doc, "unique_1m")["mean"] if v is not None]
            self.assertTrue(any(38 <= v <= 42 for v in unique), unique)
            p99 = [v for v in series(doc, "processing_p99")["mean"] if v is not None]
            self.assertTrue(p99 and all(v > 0 for v in p99), p99)
            top = [v for v in series(doc, "top_share")["mean"] if v is not None]
            self.assertTrue(any(0.2 <= v <= 0.3 for v in top), top)  # 10 of 40 equal talkers

            # Minutes: a mean and a max per point, the max the busiest second.
            doc_m = json.loads(history(d, "--series", "requests", "--since", "3m", "--step", "1m", "--json"))
            self.assertEqual(doc_m["step"], 60)
            s = series(doc_m, "requests")
            maxima = [v for v in s["max"] if v is not None]
            means = [v for v in s["mean"] if v is not None]
            self.assertAlmostEqual(max(maxima), max(requests), delta=1)
            self.assertTrue(all(m <= x + 1e-6 for m, x in zip(means, maxima)))

            # Text and CSV.
            text = history(d, "--since", "30s")
            self.assertIn("history, 1 s per row", text)
            head = text.splitlines()[1].split()
            self.assertEqual(head, ["time", "(UTC)", "requests", "replies", "rate_limited",
                                                   "kod", "kernel_drops", "unique_1m"])
            rows = list(csv.reader(io.StringIO(history(d, "--since", "30s", "--csv", "--series", "requests,kod"))))
            self.assertEqual(rows[0], ["time", "unix", "requests", "kod"])
            self.assertEqual(len(rows), 1 + 31)
            self.assertTrue(any(r[2] and float(r[2]) > 1000 for r in rows[1:]))

            # Bad requests: a clear message, exit 2.
            bad = h.run([h.STRATA, "history", "--control", d.control, "--series", "requests,nope"])
            self.assertEqual(bad.returncode, 2)
            self.assertIn("no series 'nope'", bad.stderr)
            bad = h.run([h.STRATA, "history", "--control", d.control, "--since", "yesterday"])
            self.assertEqual(bad.returncode, 2)
            self.assertIn("--since 'yesterday'", bad.stderr)
            loaded_second = doc["start"] + max(i for i, v in enumerate(series(doc, "requests")["mean"])
                                               if v is not None and v > 1000)
        path = os.path.join(state, "history")
        self.assertTrue(os.path.exists(path))
        size = os.path.getsize(path)
        self.assertGreater(size, 3_000_000)
        self.assertLess(size, 6_000_000)

        # A restart keeps it: the loaded seconds are still there.
        with h.Stratad(config=config, threads=1) as d:
            self.assertTrue(any("restored the history from" in l for l in d.log), d.log)
            doc = json.loads(history(d, "--series", "requests", "--since", str(loaded_second),
                                     "--until", str(loaded_second), "--json"))
            self.assertGreater(series(doc, "requests")["mean"][0], 1000)
            doc = json.loads(history(d, "--series", "requests", "--since", str(loaded_second),
                                     "--until", str(loaded_second), "--step", "1m", "--json"))
            self.assertGreater(series(doc, "requests")["max"][0], 1000)

        # Damaged: refused with the reason, kept aside, and stratad serves with an empty history.
        with open(path, "r+b") as f:
            f.seek(size // 2)
            octet = f.read(1)
            f.seek(size // 2)
            f.write(bytes([octet[0] ^ 0x10]))
        with h.Stratad(config=config, threads=1) as d:
            self.assertTrue(any(f"ignoring {path}: damaged (checksum mismatch" in l and "kept as" in l
                                for l in d.log), d.log)
            self.assertTrue(os.path.exists(path + ".damaged"))
            self.assertIsNotNone(h.exchange(d.v4, h.request()))
            doc = json.loads(history(d, "--series", "requests", "--since", str(loaded_second),
                                     "--until", str(loaded_second), "--json"))
            self.assertIsNone(series(doc, "requests")["mean"][0])

    def test_cost_configuration(self):
        with h.Stratad() as d0:
            path = os.path.join(d0.dir, "bad.toml")
        for text, reason in (('[cost]\nprovider = "nope"\n', "has no provider 'nope'"),
                             ('[cost]\nprovider = "aws"\nprice = 0.1\n', "provider or price"),
                             ('[cost]\nprices = "/nonexistent.toml"\n', "needs provider")):
            with open(path, "w") as f:
                f.write(text)
            r = h.run([h.STRATAD, "--config", path, "--check-config"])
            self.assertNotEqual(r.returncode, 0, text)
            self.assertIn(path, r.stderr)
            self.assertIn(reason, r.stderr)
        with open(path, "w") as f:
            f.write('[cost]\nprovider = "aws"\n')
        r = h.run([h.STRATAD, "--config", path, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
