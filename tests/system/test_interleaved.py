#!/usr/bin/env python3
"""Interleaved mode (RFC 9769) with the real client that uses it: chronyd 4.3 with `xleave`
(unpacked by ./setup, run with -x) gets interleaved replies from stratad with one worker and
with several, over IPv4 and IPv6, with NTS, and with a new random source port for every
request; `chronyc ntpdata` says "Interleaved: Yes" and stratad's counters agree. A client
written here checks every field of the exchanges (origin = our receive timestamp's echo,
transmit = the kernel's time of the previous reply) across 4 workers. Basic clients cost
nothing: no marks looked up, no transmit timestamps asked for."""
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_chrony import Chronyd  # noqa: E402

CHRONYC = os.path.join(h.PEERS, "chrony", "usr", "bin", "chronyc")
NTP_EPOCH = 2208988800


def ntp64(seconds):
    whole = int(seconds)
    return ((whole + NTP_EPOCH) << 32) | int((seconds - whole) * 2**32)


def seconds(ntp):
    return (ntp >> 32) - NTP_EPOCH + (ntp & 0xffffffff) / 2**32


class XleaveClient:
    """An interleaved client as chrony's: origin = the server's last receive timestamp,
    receive = when we got that reply, transmit = now; a new socket (random port) each time."""

    def __init__(self, address, family=socket.AF_INET):
        self.address = address
        self.family = family
        self.server_rx = 0   # the last reply's receive field
        self.local_rx = 0    # when we received it
        self.local_tx = 0    # our transmit of that request

    def exchange(self):
        with socket.socket(self.family, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            tx = ntp64(time.time())
            if tx == self.local_rx:
                tx += 2
            req = bytes([0x23, 0, 3, 0]) + bytes(20) + struct.pack("!QQQ", self.server_rx, self.local_rx, tx)
            s.sendto(req, self.address)
            data, _ = s.recvfrom(1024)
            rx = ntp64(time.time())
            port = s.getsockname()[1]
        origin, receive, transmit = struct.unpack("!QQQ", data[24:48])
        reply = {"origin": origin, "receive": receive, "transmit": transmit, "port": port,
                 "interleaved": self.server_rx != 0 and origin == self.local_rx and origin != tx,
                 "basic": origin == tx, "prev_server_rx": self.server_rx, "prev_local_rx": self.local_rx}
        self.server_rx, self.local_rx, self.local_tx = receive, rx, tx
        return reply


def ntpdata(cmd_socket):
    """chronyc ntpdata's fields (name -> value) for 127.0.0.1 or ::1."""
    out = h.run([CHRONYC, "-h", cmd_socket, "-n", "ntpdata"], timeout=10)
    fields = {}
    for line in out.stdout.splitlines():
        if ":" in line:
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    return fields


class InterleavedTest(unittest.TestCase):
    def setUp(self):
        h.require(os.access(h.CHRONYD, os.X_OK), f"{h.CHRONYD} missing (./setup unpacks chrony)")

    def chronyd(self, server_line, extra=()):
        sockdir = tempfile.mkdtemp(prefix="chronyd-cmd-")
        os.chmod(sockdir, 0o700)  # chronyd refuses a command socket others could reach
        sock = os.path.join(sockdir, "chronyd.sock")
        c = Chronyd([server_line, "port 0", f"bindcmdaddress {sock}", *extra])
        self.addCleanup(c.stop)
        return c, sock

    def wait_interleaved(self, d, at_least, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if d.counters()["interleaved_replies"] >= at_least:
                return True
            time.sleep(0.2)
        return False

    def check_chronyd_interleaved(self, threads, address, exchanges=40):
        with h.Stratad(threads=threads) as d:
            c, sock = self.chronyd(f"server {address} port {d.port} minpoll -4 maxpoll -4 xleave")
            self.assertTrue(self.wait_interleaved(d, exchanges), "\n".join(c.log + d.log))
            data = ntpdata(sock)
            c.stop()
            time.sleep(0.2)
            counters = d.counters()
            stats = d.stats()
        self.assertEqual(data.get("Interleaved"), "Yes", data)
        self.assertEqual(data.get("Mode"), "Server", data)
        # chronyc's tests of the last sample: RFC 5905's 1-3 (duplicate, bogus, invalid) and
        # 5-7 must pass, and of the last four maximum delay (A), delay ratio (B) and
        # synchronisation loop (D). Test C (maxdelaydevratio) is chronyd's statistical filter
        # against a delay far above its recent minimum: one sample delayed by a busy machine
        # fails it (CI saw "111 111 1101" once with everything else right), so it is not a
        # property of the server and is not asserted.
        tests = data.get("NTP tests", "").split()
        self.assertEqual(len(tests), 3, data)
        self.assertEqual(tests[0], "111", data)
        self.assertEqual(tests[1], "111", data)
        self.assertEqual((tests[2][0], tests[2][1], tests[2][3]), ("1", "1", "1"), data)
        # chronyd's own TX: kernel; every exchange answered and valid.
        self.assertEqual(data.get("Total TX"), data.get("Total valid RX"), data)
        sent = counters["responses_sent"]
        # The first two replies are basic (a zero origin, then an origin not held yet); all the
        # others interleaved, each with the kernel's transmit time of the reply before it.
        self.assertGreaterEqual(counters["interleaved_replies"], 0.99 * (sent - 2), counters)
        self.assertLessEqual(counters["interleaved_basic"], 1 + 0.01 * sent, counters)
        self.assertEqual(counters["tx_timestamps_missing"], 0, counters)
        self.assertGreaterEqual(counters["tx_timestamps_kernel"], counters["interleaved_replies"])
        self.assertEqual(counters["interleave_evicted"], 0)
        self.assertTrue(stats["interleave"]["enabled"])
        self.assertLessEqual(stats["interleave"]["held"], 2)  # one client: its next reply's
        return data

    def test_chronyd_xleave_one_worker(self):
        self.check_chronyd_interleaved(1, "127.0.0.1")

    def test_chronyd_xleave_four_workers_random_ports(self):
        # chronyd opens a new socket, so a new source port, for every request: the reuseport
        # hash would send them to any worker; steering by source prefix sends them to one.
        h.require(shutil.which("tshark") is not None and h.is_root(), "tshark capture needs root")
        pcap = os.path.join(tempfile.mkdtemp(prefix="xleave-cap-"), "x.pcap")
        with h.Stratad(threads=4) as d:
            cap = h.start_capture(f"udp dst port {d.port}", pcap, seconds=25)
            try:
                c, sock = self.chronyd(f"server 127.0.0.1 port {d.port} minpoll -4 maxpoll -4 xleave")
                self.assertTrue(self.wait_interleaved(d, 40), "\n".join(c.log + d.log))
                data = ntpdata(sock)
                c.stop()
            finally:
                cap.terminate()
                cap.wait(timeout=10)
                cap.stderr.close()
            counters = d.counters()
        ports = h.run(["tshark", "-r", pcap, "-T", "fields", "-e", "udp.srcport"], check=True).stdout.split()
        self.assertGreaterEqual(len(ports), 40)
        self.assertGreater(len(set(ports)), len(ports) // 2, "chronyd reused its source port")
        self.assertEqual(data.get("Interleaved"), "Yes", data)
        self.assertGreaterEqual(counters["interleaved_replies"], 0.99 * (counters["responses_sent"] - 2), counters)

    def test_chronyd_xleave_over_ipv6(self):
        self.check_chronyd_interleaved(2, "::1", exchanges=20)

    def test_chronyd_xleave_with_nts(self):
        # NTS and interleaved mode together: the sealed reply carries the earlier transmit time.
        h.require(shutil.which("openssl") is not None, "openssl missing (./setup installs it)")
        from test_nts import Pki, nts_config, tcp_port
        pki = Pki()
        self.addCleanup(pki.cleanup)
        pki.leaf("server")
        ke_port = tcp_port()
        config = nts_config(pki.dir, ke_port, os.path.join(h.state_dir(), "nts-secret"))
        with h.Stratad(config=config, threads=2) as d:
            c, sock = self.chronyd(f"server 127.0.0.1 port {d.port} nts ntsport {ke_port} iburst "
                                   "minpoll -4 maxpoll -4 xleave", [f"ntstrustedcerts {pki.ca}"])
            self.assertTrue(self.wait_interleaved(d, 20), "\n".join(c.log + d.log))
            data = ntpdata(sock)
            c.stop()
            counters = d.counters()
        self.assertEqual(data.get("Interleaved"), "Yes", data)
        self.assertEqual(data.get("Authenticated"), "Yes", data)
        self.assertEqual(counters["nts_nak_sent"], 0)
        self.assertGreaterEqual(counters["interleaved_replies"], 0.99 * (counters["nts_authenticated"] - 2), counters)

    def test_every_field_across_four_workers(self):
        with h.Stratad(threads=4) as d:
            client = XleaveClient(d.v4)
            replies = [client.exchange() for _ in range(200)]
            counters = d.counters()
        self.assertGreater(len({r["port"] for r in replies}), 150)  # new ports, any worker
        self.assertTrue(replies[0]["basic"] and replies[1]["basic"])
        for i, r in enumerate(replies[2:], start=2):
            self.assertTrue(r["interleaved"], (i, r))
            # The previous reply's transmit time: after that reply's receive field, before we
            # got it back; and marked as chrony marks (receive ends in 1, transmit in 0).
            self.assertGreaterEqual(r["transmit"], r["prev_server_rx"])
            self.assertLessEqual(seconds(r["transmit"]), seconds(r["prev_local_rx"]) + 0.001)
            self.assertEqual(r["receive"] & 1, 1)
            self.assertEqual(r["transmit"] & 1, 0)
            self.assertLess(seconds(r["transmit"]) - seconds(r["prev_server_rx"]), 0.1)
        self.assertEqual(counters["interleaved_replies"], 198)
        self.assertEqual(counters["interleaved_basic"], 1)
        # Each of the 199 replies after the first asked for its timestamp; the last one's is
        # read when the next batch comes (none did).
        self.assertIn(counters["tx_timestamps_kernel"], (198, 199))
        self.assertEqual(counters["tx_timestamps_missing"], 0)

    def test_strata_load_interleaved(self):
        # 50 addresses, 20 requests each, one at a time per address: from each one's third
        # reply on, interleaved; every reply checked by the generator, counted the same by both.
        import json
        with h.Stratad(threads=2) as d:
            r = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "50",
                       "--source-prefix", "127.31.0.0/24", "--rate", "200", "--duration", "5",
                       "--interleaved", "--json"], timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            out = json.loads(r.stdout)
            counters = d.counters()
        self.assertEqual(out["valid"], 1000, out)
        self.assertEqual(out["invalid"], 0, out)
        self.assertEqual(out["interleaved"], counters["interleaved_replies"])
        self.assertGreaterEqual(out["interleaved"], 0.99 * (1000 - 2 * 50), out)

    def test_basic_clients_cost_nothing(self):
        with h.Stratad(threads=2) as d:
            c, sock = self.chronyd(f"server 127.0.0.1 port {d.port} minpoll -4 maxpoll -4")
            end = time.time() + 20
            while d.counters()["responses_sent"] < 20 and time.time() < end:
                time.sleep(0.2)
            data = ntpdata(sock)
            c.stop()
            for _ in range(20):  # ntpdig-like requests too
                h.exchange(d.v4, h.request())
            counters = d.counters()
        self.assertEqual(data.get("Interleaved"), "No", data)
        self.assertGreaterEqual(counters["responses_sent"], 40)
        for name in ("interleaved_replies", "interleaved_basic", "tx_timestamps_kernel",
                     "tx_timestamps_unmatched", "tx_timestamps_missing"):
            self.assertEqual(counters[name], 0, name)

    def test_interleaved_off(self):
        config = '[time]\nsource = "local"\n[server]\ninterleaved = false\n'
        with h.Stratad(config=config, threads=2) as d:
            c, sock = self.chronyd(f"server 127.0.0.1 port {d.port} minpoll -4 maxpoll -4 xleave")
            end = time.time() + 20
            while d.counters()["responses_sent"] < 15 and time.time() < end:
                time.sleep(0.2)
            data = ntpdata(sock)
            c.stop()
            counters = d.counters()
            stats = d.stats()
        self.assertEqual(data.get("Interleaved"), "No", data)
        self.assertGreaterEqual(counters["responses_sent"], 15)
        self.assertEqual(counters["interleaved_replies"], 0)
        self.assertFalse(stats["interleave"]["enabled"])
        self.assertEqual(stats["interleave"]["capacity"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
