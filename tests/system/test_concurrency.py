#!/usr/bin/env python3
"""Everything stratad does at once, for ThreadSanitizer (./test runs this in build/tsan too):
two workers under load, the control thread (stats, clients, top, reloads), the mode-6 thread
(READVAR, READSTAT, an mrulist walk) fed by the workers' rings, SIGHUP reloads alternating two
rule files, /metrics scrapes and sketch saves every second, all for several seconds. In the
plain tree it checks that nothing is lost or refused while all of that happens."""
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SECONDS = int(os.environ.get("STRATA_SOAK_SECONDS", "8"))  # bench/soak: 60


class ConcurrencyTest(unittest.TestCase):
    def test_everything_at_once(self):
        state = h.state_dir(prefix="concurrency-")
        work = os.path.dirname(state)
        rules = os.path.join(work, "rules")
        rule_sets = ["10.0.0.0/8 deny\n127.0.0.0/8 allow query\n",
                     "192.0.2.0/24 deny\n127.0.0.0/8 allow query\n"]
        with open(rules, "w") as f:
            f.write(rule_sets[0])
        os.chmod(rules, 0o644)
        config = (f'[time]\nsource = "local"\n'
                  f'[clients]\nstate_dir = "{state}"\nsave_interval = 1\n'
                  f'[access]\nfile = "{rules}"\n'
                  f'[mode6]\nmrulist = "query"\n'
                  # The limiter on (its prefix table in use), wide enough for all of the load.
                  f'[ratelimit]\nenabled = true\ninterval = 0.00005\nburst = 100000\n'
                  f'min_spacing = 0\n')
        d = h.Stratad(config=config, threads=2, ratelimit=True)
        stop = threading.Event()
        failures = []
        done = {"scrapes": 0, "control": 0, "control2": 0, "mode6": 0, "mrulist": 0,
                "reloads": 0}

        def loop(name, body):
            def run():
                try:
                    while not stop.is_set():
                        body()
                        done[name] += 1
                except Exception as e:  # noqa: BLE001 (reported by the test below)
                    failures.append(f"{name}: {e!r}")
            t = threading.Thread(target=run, daemon=True)
            t.start()
            return t

        def scrape():
            with urllib.request.urlopen(d.metrics_url, timeout=5) as r:
                body = r.read()
            if b"\nstrata_received_total " not in body:
                raise AssertionError("no counters at /metrics")

        def control():
            for args in (["stats", "--json"], ["clients", "--count"], ["top"], ["clients"]):
                r = h.run([h.STRATA] + args + ["--control", d.control], timeout=30)
                if r.returncode != 0:
                    raise AssertionError(f"strata {' '.join(args)}: {r.stdout}{r.stderr}")

        def answered(what, attempt):
            # UDP on a loaded machine (and the sanitizer trees are slower): a few tries.
            for _ in range(3):
                result = attempt()
                if result:
                    return result
            raise AssertionError(f"{what}: no answer in 3 tries; counters {d.counters()}")

        def mode6_reads():
            answered("READVAR", lambda: any("version=" in t for t in h.mode6(d.v4, 2, timeout=2)))
            answered("READSTAT", lambda: h.mode6(d.v4, 1, timeout=2))
            time.sleep(0.05)

        def walk():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                nonce = h.mode6(d.v4, 12, timeout=2, sock=s)  # REQ_NONCE
                if not nonce or "nonce=" not in nonce[0]:
                    return None
                request = (nonce[0].strip().rstrip(",") + ", frags=8").encode()
                frags = h.mode6(d.v4, 10, request, sequence=2, timeout=2, collect=0.5, sock=s)
                return any("addr." in f for f in frags)  # READ_MRU's first answer

        def mrulist():
            answered("mrulist", walk)
            time.sleep(0.2)

        def reload():
            i = done["reloads"] + 1
            with open(rules + ".new", "w") as f:
                f.write(rule_sets[i % 2])
            os.chmod(rules + ".new", 0o644)
            os.rename(rules + ".new", rules)
            if i % 2:
                r = h.run([h.STRATA, "reload", "--control", d.control], timeout=30)
                if r.returncode != 0:
                    raise AssertionError(f"reload: {r.stdout}{r.stderr}")
            else:
                d.proc.send_signal(signal.SIGHUP)
            # Past the 1 s a rules file must stay unchanged before a reload reads it.
            time.sleep(1.2)

        try:
            load = h.subprocess.Popen(
                [h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "3000",
                 "--rate", "3000", "--duration", str(SECONDS), "--json"],
                stdout=h.subprocess.PIPE, stderr=h.subprocess.PIPE, text=True)
            time.sleep(0.5)  # the first clients are in the tables before the first walk
            threads = [loop("scrapes", scrape), loop("control", control), loop("control2", control),
                       loop("mode6", mode6_reads), loop("mrulist", mrulist),
                       loop("reloads", reload)]
            out, err = load.communicate(timeout=SECONDS + 120)
            stop.set()
            for t in threads:
                t.join(timeout=60)
            print(f"completed at once: {done}", file=sys.stderr)
            self.assertEqual(failures, [], "\n".join(d.log))
            self.assertEqual(load.returncode, 0, out + err)
            for name, count in done.items():
                self.assertGreater(count, 0, f"{name} never completed: {done}")
            result = json.loads(out)
            # Nothing is over the limit and nothing is denied to loopback: every request answered
            # except what the kernel queues drop on a loaded 2-core machine (counted, not lost).
            counters = d.counters()
            self.assertGreater(result["received"], 0, out)
            self.assertEqual(counters["restricted"], 0, counters)
            self.assertEqual(counters["rate_limited"], 0, counters)
            self.assertGreaterEqual(counters["responses_sent"], result["received"], (counters, out))
        finally:
            stop.set()
            code = d.stop()
        self.assertEqual(code, 0, "\n".join(d.log))
        self.assertFalse([l for l in d.log if "reload refused" in l or "ERROR" in l], d.log)
        applied = [l for l in d.log if "reloaded" in l]
        self.assertGreaterEqual(len(applied), done["reloads"], d.log)
        with open(os.path.join(state, "unique-sketches.json")) as f:
            self.assertIn("sketches", json.load(f))


if __name__ == "__main__":
    unittest.main(verbosity=2)
