#!/usr/bin/env python3
"""Control-plane abuse (issue 12, section 3.4), while well-behaved clients poll: a thousand
control connections that send nothing, a 100 MB request line, readers that stop reading
their reply, thousands of HTTP connections and byte-a-second requests on the metrics port,
and a mode-6 flood from many source addresses. Threads and memory stay bounded, every abuser
gets an error line or is closed, the operator's own `strata stats` and scrapes are answered,
and the good clients get >= 99% of their replies. bench/soak abuse runs the long version."""
import json
import os
import random
import resource
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CONTROL_CONNECTIONS = int(os.environ.get("STRATA_SOAK_CONTROL_CONNECTIONS", "1000"))
LINE_MB = int(os.environ.get("STRATA_SOAK_LINE_MB", "100"))
HTTP_CONNECTIONS = int(os.environ.get("STRATA_SOAK_HTTP_CONNECTIONS", "2000"))  # soak: 10,000
MODE6_SOURCES = int(os.environ.get("STRATA_SOAK_MODE6_SOURCES", "20000"))  # soak: 100,000
# Byte-a-second requests are cut at the 10 s request deadline from when libmicrohttpd accepted
# them; one still in the kernel's backlog (slots taken) is accepted, and timed, later.
SLOW_SECONDS = 25
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # linux/in.h; Python 3.11 lacks the name


class ControlTimeouts:
    SEND = 5  # ControlServer::kSendTimeoutS
    HEAVY_THREADS = 2  # ControlServer::kHeavyThreads


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()[0] if value.split() else ""
    return {"threads": int(out["Threads"]), "rss_kib": int(out["VmRSS"])}


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_reply(sock, timeout):
    """What the server wrote before closing (or within timeout), as text."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data.decode(errors="replace")


class AbuseTest(unittest.TestCase):
    def setUp(self):
        raise_fd_limit(HTTP_CONNECTIONS + CONTROL_CONNECTIONS + 512)
        self.d = h.Stratad(config='[time]\nsource = "local"\n[mode6]\nmrulist = "query"\n')
        self.addCleanup(self.d.stop)
        # Good clients: 500 addresses, each one request every 2 s (ntpd-style), all along:
        # strata load in 4 s rounds until the test ends, the rounds summed.
        self.good = {"sent": 0, "received": 0, "rounds": 0}
        self.good_stop = threading.Event()
        self.good_thread = threading.Thread(target=self.good_clients, daemon=True)
        self.good_thread.start()
        self.addCleanup(self.good_stop.set)
        time.sleep(0.5)
        self.start = proc_status(self.d.proc.pid)

    def good_clients(self):
        while not self.good_stop.is_set():
            r = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{self.d.port}", "--clients",
                       "500", "--source-prefix", "127.200.0.0/16", "--rate", "250",
                       "--duration", "4", "--json"], timeout=60)
            if r.returncode != 0:
                self.good["error"] = r.stderr
                return
            result = json.loads(r.stdout)
            self.good["sent"] += result["sent"]
            self.good["received"] += result["received"]
            self.good["rounds"] += 1

    def stats_answered(self, within):
        t = time.monotonic()
        r = h.run([h.STRATA, "stats", "--control", self.d.control, "--json"], timeout=60)
        took = time.monotonic() - t
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertLess(took, within, f"strata stats took {took:.1f} s")
        return took

    def bounded(self, what):
        now = proc_status(self.d.proc.pid)
        self.assertEqual(now["threads"], self.start["threads"], what)
        if not h.SANITIZED:
            self.assertLess(now["rss_kib"] - self.start["rss_kib"], 64 * 1024, (what, self.start, now))
        self.assertIsNone(self.d.proc.poll(), what)
        return now

    def test_abuse(self):
        figures = {}
        figures["control"] = self.control_connections()
        self.bounded("control connections")
        figures["long line"] = self.long_line()
        self.bounded("long line")
        figures["stalled readers"] = self.stalled_readers()
        self.bounded("stalled readers")
        figures["http"] = self.http_connections()
        self.bounded("http connections")
        figures["slow http"] = self.slow_http()
        self.bounded("slow http")
        figures["mode6 flood"] = self.mode6_flood()
        figures["memory"] = self.bounded("mode-6 flood")
        figures["memory"]["start_rss_kib"] = self.start["rss_kib"]
        self.good_stop.set()
        self.good_thread.join(timeout=60)
        good = self.good
        self.assertNotIn("error", good)
        good["ratio"] = round(good["received"] / max(1, good["sent"]), 4)
        figures["good clients"] = good
        print(f"abuse figures: {json.dumps(figures)}", file=sys.stderr)
        self.assertGreaterEqual(good["ratio"], 0.99, good)
        self.assertEqual(self.d.stop(), 0, "\n".join(self.d.log))

    def control_connections(self):
        # Connections that never send a line: each is closed with an error line (to make
        # room, or at its 2 s deadline), and the operator's strata stats gets in meanwhile.
        held = []
        for _ in range(CONTROL_CONNECTIONS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.d.control)  # blocking: waits in the backlog until accepted
            held.append(s)
        worst = max(self.stats_answered(within=2) for _ in range(3))
        replies = [read_reply(s, 5) for s in held]
        for s in held:
            s.close()
        errors = [r for r in replies if '"ok":false' in r.replace(" ", "")]
        made_room = sum("to make room" in r for r in replies)
        timed_out = sum("no request line within" in r for r in replies)
        self.assertEqual(len(errors), len(held), [r for r in replies if r not in errors][:5])
        self.assertEqual(made_room + timed_out, len(held))
        return {"connected": len(held), "closed to make room": made_room,
                "timed out": timed_out, "stats worst s": round(worst, 2)}

    def long_line(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.d.control)
        chunk = memoryview(b"x" * (1 << 20))
        sent = 0
        try:
            while sent < LINE_MB << 20:
                sent += s.send(chunk[:min(len(chunk), (LINE_MB << 20) - sent)])
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_reply(s, 5)
        s.close()
        self.assertIn("request line longer than 65536 octets", reply)
        self.stats_answered(within=2)
        return {"sent before refused KiB": sent >> 10}

    def stalled_readers(self):
        # A large reply (the clients list) to clients that never read it: each holds one of
        # the two threads for long replies until it has taken nothing for 5 s, then is
        # closed; stats, served by the other threads, is answered at once meanwhile.
        load = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{self.d.port}", "--clients",
                      "20000", "--source-prefix", "127.100.0.0/16", "--rate", "20000",
                      "--duration", "1.5", "--json"], timeout=60)
        self.assertEqual(load.returncode, 0, load.stderr)
        stalled = []
        for _ in range(2 * ControlTimeouts.HEAVY_THREADS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(self.d.control)
            s.sendall(b'{"version":1,"command":"clients","sort":"count"}\n')
            stalled.append(s)
        time.sleep(0.5)
        took = self.stats_answered(within=20)
        # Every stalled connection was given up on: reading now ends (the server closed it)
        # before the trailer line that ends a whole list. Two rounds of the heavy threads.
        time.sleep(2 * ControlTimeouts.SEND + 1)
        cut = 0
        for s in stalled:
            s.settimeout(10)
            data = b""
            try:
                while True:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    data += chunk
            except (socket.timeout, ConnectionResetError):
                pass
            s.close()
            last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            cut += not last.startswith(b"{")
        self.assertEqual(cut, len(stalled))
        return {"stalled": len(stalled), "stats during s": round(took, 2), "cut off": cut}

    def http_connections(self):
        # Many connections at once from one address: libmicrohttpd keeps 4 (the per-address
        # cap) and closes the rest at once; the kernel's backlog holds a few more.
        url = self.d.metrics_url
        port = int(url.split(":")[2].split("/")[0])
        socks = []
        for _ in range(HTTP_CONNECTIONS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                continue
            socks.append(s)
        time.sleep(2)
        # A scrape from another address is answered meanwhile.
        self.scrape(url, source="127.0.9.1")
        closed = 0
        for s in socks:
            try:
                closed += s.recv(1) == b""
            except (BlockingIOError, OSError):
                pass
            s.close()
        return {"opened": len(socks), "closed by server": closed}

    def slow_http(self):
        # Byte-a-second requests from 16 addresses, 4 each: all 64 slots. Each is cut at
        # its 10 s request deadline, or earlier to make room; scrapes still get in.
        url = self.d.metrics_url
        port = int(url.split(":")[2].split("/")[0])
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64
        slow = []
        for a in range(16):
            for _ in range(4):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((f"127.0.8.{a + 1}", 0))
                s.connect(("127.0.0.1", port))
                s.setblocking(False)
                slow.append([s, 0, None])
        started = time.monotonic()
        scrapes = []
        while time.monotonic() - started < SLOW_SECONDS and any(e is None for _, _, e in slow):
            for entry in slow:
                s, i, ended = entry
                if ended is not None:
                    continue
                try:
                    if s.recv(1) == b"":
                        entry[2] = time.monotonic() - started
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    entry[2] = time.monotonic() - started
                    continue
                try:
                    s.send(request[i % len(request):i % len(request) + 1])
                    entry[1] = i + 1
                except OSError:
                    entry[2] = time.monotonic() - started
            t = time.monotonic()
            self.scrape(url, source="127.0.9.2")
            scrapes.append(time.monotonic() - t)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
        for s, _, _ in slow:
            s.close()
        ended = [e for _, _, e in slow if e is not None]
        self.assertEqual(len(ended), len(slow), "a byte-a-second request outlived its deadline")
        return {"slow": len(slow), "closed by s": round(max(ended), 1),
                "scrape worst s": round(max(scrapes), 2)}

    def scrape(self, url, source):
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            body = b""
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                body += chunk
        self.assertIn(b"200 OK", body.split(b"\r\n", 1)[0])
        self.assertIn(b"strata_received_total", body)

    def mode6_flood(self):
        # READVAR from many source addresses in 127.50.0.0/16 (one socket, the source set per
        # datagram with IP_PKTINFO): the mode-6 thread answers what its rate allows, the
        # workers hand off and keep serving time.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        packet = struct.pack("!BBHHHHH", (2 << 3) | 6, 2, 1, 0, 0, 0, 0)
        rng = random.Random(12)
        started = time.monotonic()
        sent = 0
        for i in range(MODE6_SOURCES):
            src = socket.inet_aton(f"127.50.{(i >> 8) & 0xFF}.{i & 0xFF}") if i < 65536 else \
                socket.inet_aton(f"127.{51 + (i >> 16)}.{(i >> 8) & 0xFF}.{i & 0xFF}")
            pktinfo = struct.pack("I4s4s", 0, src, b"\0" * 4)
            try:
                s.sendmsg([packet], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0,
                          ("127.0.0.1", self.d.port))
                sent += 1
            except OSError:
                pass
            if rng.random() < 0.001:
                time.sleep(0.001)
        took = time.monotonic() - started
        s.close()
        # The operator's own ntpq-style read is answered after the flood.
        replies = []
        for _ in range(5):
            replies = h.mode6(self.d.v4, 2, timeout=2)
            if replies:
                break
        self.assertTrue(any("version=" in r for r in replies), replies)
        c = self.d.counters()
        return {"sent": sent, "seconds": round(took, 1),
                **{k: c[k] for k in ("control_requests", "control_responses", "drop_control_limited",
                                     "drop_control_queue")}}


if __name__ == "__main__":
    unittest.main(verbosity=2)
