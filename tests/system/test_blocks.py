#!/usr/bin/env python3
"""Dynamic blocks ([[blocks.rule]], strata block): under the default rules, real chronyd
clients (iburst, then every 64 s or every 8 s), the NTP pool's monitoring pattern (3 requests
2 s apart, again and again) and ntpd's iburst (8 requests 2 s apart, then every 8 s) are never
blocked, while a client polling 6 times a second and a flood from one /24 are, within their
rule's window. Blocks by hand: drop, KoD RATE, leak; listed with hits, removed, expired, kept
across a restart; the API says the same as the CLI; a reload changes the rules; bad rules are
configuration errors naming file and line. Loopback is excluded by default ([blocks] exclude):
these tests clear that list, and every source is an address of 127.0.0.0/8 of its own."""
import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_chrony import Chronyd  # noqa: E402

CONFIG = '[time]\nsource = "local"\n[blocks]\nexclude = []\n'


def ask(source, server, timeout=1.0, poll=6):
    """One request from `source` (an address of 127/8); the parsed reply or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(h.request(poll=poll), server)
        try:
            return h.parse(s.recvfrom(1024)[0])
        except socket.timeout:
            return None


def blocks(d):
    return json.loads(h.run([h.STRATA, "block", "list", "--control", d.control, "--json"], check=True).stdout)


def block_on(d, prefix):
    return next((b for b in blocks(d)["blocks"] if b["prefix"] == prefix), None)


class Pattern(threading.Thread):
    """Requests from one source at the given offsets (seconds from start); the replies."""

    def __init__(self, source, server, offsets, start):
        super().__init__(daemon=True)
        self.source, self.server, self.offsets, self.start_at = source, server, offsets, start
        self.replies = []

    def run(self):
        for t in self.offsets:
            time.sleep(max(0.0, self.start_at + t - time.time()))
            self.replies.append(ask(self.source, self.server))


class DefaultRulesTest(unittest.TestCase):
    def setUp(self):
        h.require(os.access(h.CHRONYD, os.X_OK), f"{h.CHRONYD} missing (./setup unpacks chrony)")

    def test_good_clients_pass_a_fast_poller_and_a_network_flood_are_blocked(self):
        with h.Stratad(config=CONFIG, ratelimit=True, blocks=True) as d:
            self.assertTrue(any("blocks: 2 rules, 0 active; the sockets steer by IPv4 /24 and IPv6 /48" in l
                                for l in d.log), d.log)
            server = ("127.0.0.1", d.port)
            # chronyd: default polling with iburst, and every 8 s with iburst (its own sources).
            chronies = [Chronyd([f"server 127.0.0.1 port {d.port} iburst", "port 0", "bindacqaddress 127.0.0.2"]),
                        Chronyd([f"server 127.0.0.1 port {d.port} iburst minpoll 3 maxpoll 3", "port 0",
                                 "bindacqaddress 127.0.0.3"])]
            for c in chronies:
                self.addCleanup(c.stop)
            start = time.time()
            # The pool's monitor: 3 requests 2 s apart, repeated (here every 14 s, more often
            # than the real one's few minutes). ntpd's iburst: 8 requests 2 s apart, then 8 s.
            monitor = Pattern("127.0.0.4", server, [m + 2 * i for m in (0, 14, 28) for i in range(3)], start)
            ntpd = Pattern("127.0.0.5", server, [2 * i for i in range(8)] + [16 + 8 * i for i in range(3)], start)
            monitor.start()
            ntpd.start()
            # A client polling 6 times a second (60 requests in 30 s place a block: after 10 s).
            poller = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "1",
                            "--source-prefix", "127.0.0.6/32", "--rate", "6", "--duration", "14", "--json"],
                           timeout=60)
            self.assertEqual(poller.returncode, 0, poller.stderr)
            blocked = block_on(d, "127.0.0.6/32")
            self.assertIsNotNone(blocked, blocks(d))
            self.assertEqual((blocked["action"], blocked["by"], blocked["rule"]), ("kod", "rule", "fast poller"))
            self.assertLessEqual(blocked["since"] - int(start), 15)  # 10 s into its load, and the 0.25 s tick
            self.assertGreater(blocked["hits"], 0)
            self.assertGreater(json.loads(poller.stdout)["kod"], 0)
            self.assertTrue(any("blocks: placed 127.0.0.6/32 (kod, rule \"fast poller\") for 600 s" in l
                                for l in d.log), d.log)
            # A flood from one /24: 1,000 requests/s from 200 addresses (5/s each: none of
            # them alone reaches the poller rule in 6 s). 2,500 in 10 s place a block: 2.5 s in.
            flood_start = time.time()
            flood = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "200",
                           "--source-prefix", "127.77.0.0/24", "--rate", "1000", "--duration", "6", "--json"],
                          timeout=60)
            self.assertEqual(flood.returncode, 0, flood.stderr)
            network = block_on(d, "127.77.0.0/24")
            self.assertIsNotNone(network, blocks(d))
            self.assertEqual((network["action"], network["rule"]), ("drop", "network flood"))
            self.assertLessEqual(network["since"] - int(flood_start), 5)
            f = json.loads(flood.stdout)
            # Dropped from the 2,500th request on (placed within 0.25 s of it): most of the rest.
            self.assertGreater(f["sent"], 2500)
            self.assertGreater(network["hits"], (f["sent"] - 2500) / 2)
            self.assertLess(f["received"], f["sent"] - network["hits"] + 10)
            monitor.join(timeout=60)
            ntpd.join(timeout=60)
            time.sleep(max(0.0, start + 36 - time.time()))  # past a whole window of every rule
            # Never blocked: both chronyds, the monitor, the ntpd-like client.
            listed = {b["prefix"] for b in blocks(d)["blocks"]}
            self.assertEqual(listed, {"127.0.0.6/32", "127.77.0.0/24"})
            for who, replies in (("monitor", monitor.replies), ("ntpd iburst", ntpd.replies)):
                self.assertEqual(len(replies), len(monitor.offsets) if who == "monitor" else len(ntpd.offsets))
                self.assertTrue(all(r is not None and r["stratum"] != 0 for r in replies), (who, replies))
            clients = {c["address"]: c for c in json.loads(
                h.run([h.STRATA, "clients", "--control", d.control, "--json", "--limit", "500"], check=True).stdout)}
            for address in ("127.0.0.2", "127.0.0.3"):
                self.assertIn(address, clients, "chronyd did not poll")
                self.assertEqual(clients[address]["kods"], 0, clients[address])
                self.assertNotIn("B", clients[address]["flags"])
            self.assertGreaterEqual(clients["127.0.0.3"]["count"], 4)  # iburst then 8 s
            self.assertIn("B", clients["127.0.0.6"]["flags"])
            counters = d.counters()
            self.assertGreater(counters["drop_blocked"], 2000)
            # Every request a block met is counted once, as a hit of that block.
            self.assertEqual(counters["blocked"], sum(b["hits"] for b in blocks(d)["blocks"]))
            for c in chronies:
                self.assertFalse(any("KoD" in l for l in c.log), c.log)
            # The dashboard's API says what the CLI says.
            base = d.metrics_url.replace("/metrics", "")
            api = json.loads(urllib.request.urlopen(base + "/api/v1/blocks", timeout=10).read())
            self.assertEqual({b["prefix"] for b in api["blocks"]}, listed)
            self.assertEqual([r["name"] for r in api["rules"]], ["fast poller", "network flood"])


class HandBlocksTest(unittest.TestCase):
    def test_add_list_remove_expire_and_keep_across_a_restart(self):
        state = h.state_dir()
        config = CONFIG + f'[clients]\nstate_dir = "{state}"\n'
        with h.Stratad(config=config, ratelimit=True, blocks=True) as d:
            server = ("127.0.0.1", d.port)
            self.assertIsNotNone(ask("127.0.0.8", server))

            def block(*args):
                return h.run([h.STRATA, "block", *args, "--control", d.control])

            r = block("add", "127.0.0.8", "--for", "1h", "--reason", "spoofed flood from a carrier")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("blocked 127.0.0.8/32 (drop) for 1h 0m: spoofed flood from a carrier", r.stdout)
            self.assertIsNone(ask("127.0.0.8", server, timeout=0.5))  # in force when the command returned
            self.assertEqual(block("add", "127.0.9.0/24", "--for", "30m", "--action", "kod").returncode, 0)
            kod = ask("127.0.9.1", server)
            self.assertIsNotNone(kod)
            self.assertEqual((kod["stratum"], kod["refid"]), (0, b"RATE"))
            self.assertEqual(block("add", "127.0.10.0/24", "--for", "2s", "--action", "leak").returncode, 0)
            text = block("list").stdout
            self.assertIn("3 active blocks (at most 10000)", text)
            self.assertRegex(text, r"127\.0\.0\.8/32 +drop +hand +- +1 ")
            listed = {b["prefix"]: b for b in blocks(d)["blocks"]}
            self.assertEqual(listed["127.0.0.8/32"]["hits"], 1)
            self.assertEqual(listed["127.0.9.0/24"]["action"], "kod")
            # Mistakes are refused with a reason.
            bad = block("add", "127.0.0.300", "--for", "1h")
            self.assertEqual(bad.returncode, 1)
            self.assertIn("'127.0.0.300' is not an address or prefix", bad.stderr)
            self.assertEqual(block("add", "127.0.0.9", "--for", "soon").returncode, 2)
            missing = block("remove", "127.0.11.0/24")
            self.assertEqual(missing.returncode, 1)
            self.assertIn("no block on 127.0.11.0/24", missing.stderr)
            # Removed: answered again. Expired: gone, with its line in the log.
            self.assertEqual(block("remove", "127.0.9.0/24").returncode, 0)
            time.sleep(0.3)  # the limiter's min_spacing since this address's last request
            self.assertIsNotNone(ask("127.0.9.1", server))
            deadline = time.time() + 10
            while time.time() < deadline and block_on(d, "127.0.10.0/24") is not None:
                time.sleep(0.2)
            self.assertIsNone(block_on(d, "127.0.10.0/24"))
            self.assertTrue(any("blocks: expired 127.0.10.0/24 (leak, by hand) after 2 s" in l for l in d.log), d.log)
            self.assertTrue(any("blocks: removed 127.0.9.0/24 (kod, by hand)" in l for l in d.log), d.log)
        # A restart keeps the block, its reason and its hits.
        with h.Stratad(config=config, ratelimit=True, blocks=True) as d:
            self.assertTrue(any("restored 1 active blocks from " in l for l in d.log), d.log)
            b = block_on(d, "127.0.0.8/32")
            self.assertIsNotNone(b)
            self.assertEqual((b["reason"], b["hits"]), ("spoofed flood from a carrier", 1))
            self.assertIsNone(ask("127.0.0.8", ("127.0.0.1", d.port), timeout=0.5))
            self.assertEqual(block_on(d, "127.0.0.8/32")["hits"], 2)
            # A reload changes the rules; one that would need a shorter steering prefix waits
            # for a restart.
            with open(d.config_path, "a") as f:
                f.write('[[blocks.rule]]\nname = "slow"\nrate = 0.5\nwindow = 20\naction = "leak"\n')
            r = h.run([h.STRATA, "reload", "--control", d.control], check=True)
            self.assertIn("[blocks]: 1 rules", r.stdout + "\n".join(d.log))
            self.assertEqual([r["name"] for r in blocks(d)["rules"]], ["slow"])
            with open(d.config_path, "a") as f:
                f.write('[[blocks.rule]]\nname = "wide"\nv4_prefix = 16\nrate = 1000\nwindow = 10\n')
            h.run([h.STRATA, "reload", "--control", d.control], check=True)
            self.assertTrue(any("IPv4 prefix shorter than the /24 the sockets steer by" in l for l in d.log), d.log)
            self.assertEqual([r["name"] for r in blocks(d)["rules"]], ["slow"])
        # A damaged state file is refused with its reason and kept aside.
        with open(os.path.join(state, "blocks"), "w") as f:
            f.write('{"format": "strata-blocks 1", "blocks": [{"prefix": "nonsense"}], "offenders": []}')
        with h.Stratad(config=config, blocks=True) as d:
            self.assertTrue(any("ignoring " + os.path.join(state, "blocks") + ": block 1: " in l and
                                "kept as " + os.path.join(state, "blocks.damaged") in l for l in d.log), d.log)
            self.assertEqual(blocks(d)["blocks"], [])

    def test_bad_rules_name_file_and_line(self):
        cases = [
            ('[[blocks.rule]]\nv4_prefix = 7\nrate = 1\n', "v4_prefix = 7 is out of range 8..32"),
            ('[[blocks.rule]]\nrate = 1\naction = "ban"\n', 'action = "ban": expected "drop", "kod" or "leak"'),
            ('[[blocks.rule]]\nrate = 5\nwarn = 6\n', "warn = 6 must be below rate = 5"),
            ('[[blocks.rule]]\nrate = 1\nwindow = 1\n', "a single request would block"),
            ('[[blocks.rule]]\nrate = 1\nspeed = 2\n', "unknown key 'speed' in [[blocks.rule]]"),
            ('[blocks]\nexclude = ["10.0.0.0/33"]\n', "exclude entry '10.0.0.0/33' is not an address or prefix"),
            ('[[blocks.rule]]\nname = "a"\nrate = 1\n[[blocks.rule]]\nname = "a"\nrate = 2\n', 'name "a" used twice'),
        ]
        directory = h.state_dir("blocks-config-")
        for text, reason in cases:
            path = os.path.join(directory, "stratad.toml")
            with open(path, "w") as f:
                f.write('[time]\nsource = "local"\n' + text)
            r = h.run([h.STRATAD, "--config", path, "--check-config"])
            self.assertEqual(r.returncode, 1, (text, r.stdout, r.stderr))
            self.assertIn(path + ":", r.stderr + r.stdout)
            self.assertIn(reason, r.stderr + r.stdout, text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
