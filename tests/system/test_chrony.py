#!/usr/bin/env python3
"""Interop with chronyd 4.3 (unpacked by ./setup, always run with -x so it never touches the
clock): as a client it selects stratad as its source; as a server it is what stratad's
mirror source follows."""
import json
import os
import socket
import struct
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

    def test_mirror_faults_chronyd_killed_and_back(self):
        # Issue 12, 3.3: kill the mirrored chronyd. Until mirror_timeout the last state is
        # served with its root dispersion growing; then LI 3 and stratum 16 with one log line;
        # chronyd's return restores synchronised replies with one more line.
        port = h.free_port()
        lines = ["local stratum 4", "allow 127.0.0.1", f"port {port}", "bindaddress 127.0.0.1"]
        server = Chronyd(lines)
        config = (f'[time]\nsource = "mirror"\nmirror = "127.0.0.1:{port}"\n'
                  'mirror_interval = 0.2\nmirror_timeout = 4\n')
        who = f"mirror 127.0.0.1:{port}"
        with h.Stratad(config=config) as d:
            try:
                wait_synchronised(self, d, True)
                self.assertEqual(h.parse(h.exchange(d.v4, h.request()))["stratum"], 4)
                server.proc.kill()
                server.stop()
                time.sleep(0.5)
                first = h.parse(h.exchange(d.v4, h.request()))
                time.sleep(2.5)
                later = h.parse(h.exchange(d.v4, h.request()))
                state = d.stats()["time"]
                # Still within mirror_timeout: chronyd's last state, dispersion growing at
                # 15 ppm from when it was taken (3 s: 45 us, three units of the field).
                self.assertEqual((first["leap"], first["stratum"]), (0, 4))
                self.assertEqual((later["leap"], later["stratum"]), (0, 4))
                self.assertGreater(later["root_dispersion"], first["root_dispersion"])
                self.assertGreater(state["age"], 2.5, state)
                self.assertTrue(state["synchronised"], state)
                self.assertIn("source_error", state)
                lost = expect_lost_once(self, d, who)
                self.assertIn("no usable reply for", lost)
                self.assertIn("replies are unsynchronised (LI 3, stratum 16)", lost)
                time.sleep(1)  # more failed polls: no more lines
                self.assertEqual(len([l for l in d.log if who in l]), 2, "\n".join(d.log))
                server = Chronyd(lines)
                wait_synchronised(self, d, True)
                rep = h.parse(h.exchange(d.v4, h.request()))
                self.assertEqual((rep["leap"], rep["stratum"]), (0, 4))
                self.assertNotIn("source_error", d.stats()["time"])
                back = [l for l in d.log if who + " answers again after" in l]
                self.assertEqual(len(back), 1, "\n".join(d.log))
                self.assertEqual(len([l for l in d.log if who in l]), 3, "\n".join(d.log))
                print("\n".join(l for l in d.log if who in l))
            finally:
                server.stop()

    def test_mirror_timeout_drops_when_configured(self):
        port = h.free_port()
        server = Chronyd(["local stratum 4", "allow 127.0.0.1", f"port {port}",
                          "bindaddress 127.0.0.1"])
        config = (f'[time]\nsource = "mirror"\nmirror = "127.0.0.1:{port}"\n'
                  'mirror_interval = 0.2\nmirror_timeout = 1\nunsynchronised = "drop"\n')
        with h.Stratad(config=config) as d:
            wait_synchronised(self, d, True)
            self.assertIsNotNone(h.exchange(d.v4, h.request()))
            server.stop()
            wait_synchronised(self, d, False, timeout=5)
            self.assertIsNone(h.exchange(d.v4, h.request(), timeout=0.5))
            self.assertTrue(any("requests are dropped until it answers" in l for l in d.log), d.log)


class FakeMirror:
    """A scripted NTP server for stratad's mirror source: answers as a synchronised stratum-2
    server with a given leap, or with KoD RATE, an unsynchronised state, datagrams that do
    not answer the request, or matched replies whose other fields are random."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.mode = "good"
        self.leap = 0
        self.rng = h.seeded_rng()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(1024)
            except socket.timeout:
                continue
            if len(data) < 48:
                continue
            origin = data[40:48]
            now = h.ntp_now()
            leap, stratum, refid = self.leap, 2, b"\xc0\x00\x02\x01"
            if self.mode == "kod":
                leap, stratum, refid = 3, 0, b"RATE"
            elif self.mode == "unsync":
                leap, stratum, refid = 3, 16, b"INIT"
            reply = struct.pack("!BBbbII4sQ8sQQ", (leap << 6) | (4 << 3) | 4, stratum, 6, -20,
                                0x100, 0x100, refid, now - (1 << 32), origin, now, now)
            if self.mode == "unmatched":
                reply = h.random_bytes(self.rng, self.rng.randrange(1, 200))
            elif self.mode == "random":
                reply = bytes([(self.rng.randrange(4) << 6) | (4 << 3) | 4]) + \
                    h.random_bytes(self.rng, 23) + origin + h.random_bytes(self.rng, 16)
            elif self.mode == "silent":
                continue
            self.sock.sendto(reply, peer)

    def stop(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


class ScriptedMirrorTest(unittest.TestCase):
    def config(self, mirror, timeout=1):
        return (f'[time]\nsource = "mirror"\nmirror = "127.0.0.1:{mirror.port}"\n'
                f'mirror_interval = 0.1\nmirror_timeout = {timeout}\n')

    def query(self, d):
        out = h.run([h.STRATA, "query", f"127.0.0.1:{d.port}", "--json"], check=True)
        return json.loads(out.stdout)

    def test_leap_indicator_is_passed_on(self):
        # A mirrored server announcing a leap second: stratad's replies carry the same
        # indicator, and strata query (and stats) show it. chronyd 4.3 itself announces a leap
        # only on 30 June and 31 December (reference.c, is_leap_second_day) and reads no
        # leap-seconds.list (leapseclist is chrony 4.6), so the server here is scripted.
        mirror = FakeMirror()
        try:
            with h.Stratad(config=self.config(mirror)) as d:
                wait_synchronised(self, d, True)
                for leap, word in ((1, "insert"), (2, "delete"), (0, "none")):
                    mirror.leap = leap
                    end = time.time() + 5
                    while time.time() < end and d.stats()["time"]["leap"] != leap:
                        time.sleep(0.05)
                    self.assertEqual(h.parse(h.exchange(d.v4, h.request()))["leap"], leap)
                    self.assertEqual(self.query(d)[0]["leap"], leap)
                    text = h.run([h.STRATA, "query", f"127.0.0.1:{d.port}"], check=True).stdout
                    self.assertIn(f"leap {word}", text)
                    self.assertEqual(d.stats()["time"]["stratum"], 2)
        finally:
            mirror.stop()

    def test_kiss_of_death_and_garbage_are_not_time(self):
        mirror = FakeMirror()
        who = f"mirror 127.0.0.1:{mirror.port}"
        try:
            with h.Stratad(config=self.config(mirror, timeout=2)) as d:
                wait_synchronised(self, d, True)
                mirror.mode = "kod"
                time.sleep(0.5)
                # A KoD is no time: the last good state (stratum 2) until mirror_timeout.
                state = d.stats()["time"]
                self.assertEqual((state["synchronised"], state["stratum"]), (True, 2), state)
                self.assertEqual(state.get("source_error"), "kiss-o'-death RATE")
                self.assertIn("(last: kiss-o'-death RATE)", expect_lost_once(self, d, who))
                mirror.mode = "unmatched"
                time.sleep(0.5)
                self.assertIn("datagram", d.stats()["time"]["source_error"])
                # Replies with our origin and every other field random: never time.
                mirror.mode = "random"
                for _ in range(20):
                    time.sleep(0.1)
                    rep = h.parse(h.exchange(d.v4, h.request()))
                    self.assertEqual((rep["leap"], rep["stratum"]), (3, 16))
                mirror.mode = "good"
                wait_synchronised(self, d, True)
                self.assertEqual(h.parse(h.exchange(d.v4, h.request()))["stratum"], 2)
                # The server's own unsynchronised state is served at once, not after the timeout.
                mirror.mode = "unsync"
                wait_synchronised(self, d, False, timeout=1)
                self.assertIn("the server is unsynchronised (LI 3, stratum 16)",
                              d.stats()["time"]["source_error"])
                self.assertTrue(any("the server is unsynchronised" in l for l in d.log), d.log)
                self.assertEqual(d.stop(), 0)
        finally:
            mirror.stop()


def expect_lost_once(test, d, who):
    """Waits for stratad to go unsynchronised, checks its replies say so, and returns the one
    log line that says why."""
    wait_synchronised(test, d, False, timeout=5)
    rep = h.parse(h.exchange(d.v4, h.request()))
    test.assertEqual((rep["leap"], rep["stratum"]), (3, 16))
    lost = [l for l in d.log if who + ": " in l]
    test.assertEqual(len(lost), 1, "\n".join(d.log))
    return lost[0]


def wait_synchronised(test, d, want, timeout=10):
    end = time.time() + timeout
    state = None
    while time.time() < end:
        state = d.stats()["time"]
        if state["synchronised"] == want:
            return state
        time.sleep(0.05)
    test.fail(f"synchronised never became {want}: {state}\n" + "\n".join(d.log))


if __name__ == "__main__":
    unittest.main(verbosity=2)
