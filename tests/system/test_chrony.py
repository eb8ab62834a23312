#!/usr/bin/env python3
"""Interop with chronyd 4.3 (unpacked by ./setup, always run with -x so it never touches the
clock): as a client it selects stratad as its source; as a server it is what stratad's
mirror source follows."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class Chronyd:
    """chronyd -x -d with a given config; stderr collected."""

    def __init__(self, config_lines):
        self.dir = tempfile.mkdtemp(prefix="chronyd-test-")
        conf = os.path.join(self.dir, "chrony.conf")
        with open(conf, "w") as f:
            f.write("\n".join(config_lines + [f"pidfile {self.dir}/chronyd.pid", "cmdport 0"]) + "\n")
        args = [h.CHRONYD, "-x", "-d", "-f", conf]
        # As root it would switch to _chrony, which does not exist (chrony is unpacked, not
        # installed); otherwise it must be told not to insist on root.
        args += ["-u", "root"] if h.is_root() else ["-U"]
        self.log = []
        self.proc = subprocess.Popen(args, stderr=subprocess.STDOUT, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.append(line.rstrip("\n"))

    def wait_for(self, text, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if any(text in l for l in self.log):
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return False

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class ChronyTest(unittest.TestCase):
    def setUp(self):
        h.require(os.access(h.CHRONYD, os.X_OK), f"{h.CHRONYD} missing (./setup unpacks chrony)")

    def test_chronyd_client_selects_stratad(self):
        with h.Stratad() as d:
            # port 0: no server socket, so chronyd's loop test (testD) does not apply.
            c = Chronyd([f"server 127.0.0.1 port {d.port} iburst minpoll -2 maxpoll -2", "port 0"])
            try:
                selected = c.wait_for("Selected source 127.0.0.1", 20)
                self.assertTrue(selected, "\n".join(c.log))
                self.assertFalse(any("Can't synchronise" in l for l in c.log), c.log)
            finally:
                c.stop()
            counters = d.counters()
            self.assertGreaterEqual(counters["processed"], 1)
            self.assertEqual(counters["processed"], counters["received"])  # all answered
            self.assertEqual(counters["responses_sent"], counters["received"])

    def test_chronyd_iburst_is_not_limited_by_default(self):
        # The default limits must let a normal client through untouched: chronyd's iburst
        # (requests about 2 s apart until it has its samples), then its default polling.
        with h.Stratad(ratelimit=True) as d:
            c = Chronyd([f"server 127.0.0.1 port {d.port} iburst", "port 0"])
            try:
                self.assertTrue(c.wait_for("Selected source 127.0.0.1", 30), "\n".join(c.log))
            finally:
                c.stop()
            counters = d.counters()
            self.assertGreaterEqual(counters["received"], 3)
            self.assertEqual(counters["rate_limited"], 0)
            self.assertEqual(counters["processed"], counters["received"])

    def test_chronyd_polling_too_fast_gets_kod_rate(self):
        # chronyd polling 4 times a second against a bucket of 2: KoD RATE, which chronyd logs
        # and obeys (it adds 4 poll intervals to its next transmit).
        config = ('[time]\nsource = "local"\n[ratelimit]\nburst = 2\nmin_spacing = 0\nleak = 0\n'
                  'kod_interval = 1\n')
        with h.Stratad(config=config, ratelimit=True) as d:
            c = Chronyd([f"server 127.0.0.1 port {d.port} minpoll -2 maxpoll -2", "port 0"])
            try:
                self.assertTrue(c.wait_for("Received KoD RATE from 127.0.0.1", 20), "\n".join(c.log))
                # chronyd obeys: it adds four poll intervals to its next transmit, so its rate
                # after the first KoD is well below its 4 requests/s before.
                time.sleep(6)
                out = h.run([h.STRATA, "clients", "--control", d.control, "--kod-effect",
                             "--min-age", "3", "--json"], check=True)
                effect = json.loads(out.stdout)
            finally:
                c.stop()
            self.assertEqual(effect["judged"], 1, effect)
            self.assertEqual(effect["slowed"], 1, effect)
            row = effect["clients"][0]
            self.assertEqual(row["address"], "127.0.0.1")
            self.assertLess(row["rate_after"], row["rate_before"] / 2, row)
            counters = d.counters()
            self.assertGreaterEqual(counters["kod_sent"], 1)
            out = h.run([h.STRATA, "clients", "--control", d.control, "--kod", "--json"], check=True)
            rows = json.loads(out.stdout)
            self.assertEqual([r["address"] for r in rows], ["127.0.0.1"])
            self.assertGreaterEqual(rows[0]["kods"], 1)

    def test_chronyd_client_over_ipv6(self):
        with h.Stratad() as d:
            c = Chronyd([f"server ::1 port {d.port} iburst minpoll -2 maxpoll -2", "port 0"])
            try:
                self.assertTrue(c.wait_for("Selected source ::1", 20), "\n".join(c.log))
            finally:
                c.stop()

    def test_chronyd_refuses_unsynchronised_stratad(self):
        dead = h.free_port()
        with h.Stratad(config=f'[time]\nsource = "mirror"\nmirror = "127.0.0.1:{dead}"\n') as d:
            c = Chronyd([f"server 127.0.0.1 port {d.port} iburst minpoll -2 maxpoll -2", "port 0"])
            try:
                self.assertFalse(c.wait_for("Selected source", 5), "\n".join(c.log))
            finally:
                c.stop()

    def test_stratad_mirrors_chronyd(self):
        port = h.free_port()
        server = Chronyd(["local stratum 5", "allow 127.0.0.1", f"port {port}",
                          "bindaddress 127.0.0.1"])
        try:
            config = (f'[time]\nsource = "mirror"\nmirror = "127.0.0.1:{port}"\n'
                      'mirror_interval = 0.2\n')
            with h.Stratad(config=config) as d:
                state = None
                for _ in range(50):
                    state = d.stats()["time"]
                    if state["synchronised"]:
                        break
                    time.sleep(0.1)
                self.assertTrue(state["synchronised"], state)
                self.assertEqual(state["stratum"], 5)
                self.assertEqual(state["refid"], "127.127.1.1")  # chrony's local reference
                rep = h.parse(h.exchange(d.v4, h.request()))
                self.assertEqual(rep["stratum"], 5)
                self.assertEqual(rep["leap"], 0)
                # root dispersion = chronyd's + |offset| + delay/2: small on loopback
                self.assertLess(rep["root_dispersion"], 0.01)
        finally:
            server.stop()

    def test_mirror_timeout_unsynchronises(self):
        port = h.free_port()
        server = Chronyd(["local stratum 4", "allow 127.0.0.1", f"port {port}",
                          "bindaddress 127.0.0.1"])
        config = (f'[time]\nsource = "mirror"\nmirror = "127.0.0.1:{port}"\n'
                  'mirror_interval = 0.2\nmirror_timeout = 1\n')
        with h.Stratad(config=config) as d:
            for _ in range(50):
                if d.stats()["time"]["synchronised"]:
                    break
                time.sleep(0.1)
            self.assertEqual(h.parse(h.exchange(d.v4, h.request()))["stratum"], 4)
            server.stop()
            time.sleep(2)
            rep = h.parse(h.exchange(d.v4, h.request()))
            self.assertEqual(rep["leap"], 3)
            self.assertEqual(rep["stratum"], 16)
            self.assertIn("source_error", d.stats()["time"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
