#!/usr/bin/env python3
"""strata analyze on captures with known content: every supported link type (Ethernet, VLAN
and QinQ tags, Linux SLL and SLL2, raw IP, DLT_IPV4/IPV6, BSD loopback), both families,
pcap and pcapng, fragments, non-NTP traffic and a damaged tail; then a real capture of
stratad serving strata load on loopback taken with tcpdump, whose counts must match what was
sent and answered exactly."""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SERVER4 = "192.0.2.1"
SERVER6 = "2001:db8::1"


def ntp(mode, stratum=2):
    return bytes([(4 << 3) | mode, stratum]) + bytes(46)


def ipv4(src, dst, payload, proto=17, frag=0):
    total = 20 + len(payload)
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, frag, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))
    return head + payload


def ipv6(src, dst, payload, next_header=17):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ip_packet(src, dst, sport, dport, payload):
    if ":" in src:
        return ipv6(src, dst, udp(sport, dport, payload))
    return ipv4(src, dst, udp(sport, dport, payload))


def ethertype(packet):
    return 0x86DD if packet[0] >> 4 == 6 else 0x0800


def frame(link, packet):
    """Wraps an IP packet for a link type."""
    if link == 1:
        return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype(packet)) + packet
    if link == "vlan":
        return (b"\x02" * 6 + b"\x04" * 6 + struct.pack("!HH", 0x8100, 7) + struct.pack("!H", ethertype(packet))
                + packet)
    if link == "qinq":
        return (b"\x02" * 6 + b"\x04" * 6 + struct.pack("!HHHH", 0x88A8, 100, 0x8100, 7) +
                struct.pack("!H", ethertype(packet)) + packet)
    if link == 113:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", ethertype(packet)) + packet
    if link == 276:
        return struct.pack("!HHIHBB8s", ethertype(packet), 0, 1, 1, 0, 6, b"\x02" * 8) + packet
    if link == 0:
        return struct.pack("=I", 30 if packet[0] >> 4 == 6 else 2) + packet
    return packet  # 12 (raw), 228, 229


LINK_OF = {"vlan": 1, "qinq": 1}


def write_pcap(path, link, frames, t0=1_800_000_000.0, step=0.5, corrupt_tail=False):
    with open(path, "wb") as f:
        f.write(struct.pack("=IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, LINK_OF.get(link, link)))
        for i, fr in enumerate(frames):
            ts = t0 + i * step
            f.write(struct.pack("=IIII", int(ts), int(round((ts % 1) * 1e6)), len(fr), len(fr)) + fr)
        if corrupt_tail:
            f.write(struct.pack("=IIII", int(t0), 0, 200, 200) + b"\x00" * 30)  # cut short


def write_pcapng(path, link, frames, t0=1_800_000_000.0, step=0.5):
    def block(kind, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("=II", kind, len(body) + 12) + body + struct.pack("=I", len(body) + 12)
    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("=IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("=HHI", link, 0, 65535)))
        for i, fr in enumerate(frames):
            us = int(round((t0 + i * step) * 1e6))
            f.write(block(6, struct.pack("=IIIII", 0, us >> 32, us & 0xffffffff, len(fr), len(fr)) + fr))


def traffic():
    """IP packets with known content: 3 IPv4 clients (1, 2 and 6 requests) and 1 IPv6 client
    (3 requests), each request answered except the busiest's last (a KoD instead of the time
    counts as a reply too), plus one of each kind of noise."""
    packets = []
    clients = [("198.51.100.1", 1), ("198.51.100.2", 2), ("198.51.100.3", 6), ("2001:db8::7", 3)]
    for addr, n in clients:
        server = SERVER6 if ":" in addr else SERVER4
        for i in range(n):
            packets.append(ip_packet(addr, server, 40000 + i, 123, ntp(3)))
            if addr == "198.51.100.3" and i == n - 1:
                packets.append(ip_packet(server, addr, 123, 40000 + i, ntp(4, stratum=0)))  # KoD
            else:
                packets.append(ip_packet(server, addr, 123, 40000 + i, ntp(4)))
    packets.append(ip_packet("198.51.100.9", SERVER4, 5353, 53, b"dns?"))            # other UDP
    packets.append(ipv4("198.51.100.9", SERVER4, b"\0" * 20, proto=6))               # TCP
    packets.append(ipv4("198.51.100.9", SERVER4, udp(1, 123, ntp(3))[:20], frag=0x2000))  # fragment
    packets.append(ipv6("2001:db8::9", SERVER6, b"\x11\0\0\x01\0\0\0\0" + b"\0" * 16, next_header=44))
    return packets


EXPECTED = {"requests": 12, "replies": 12, "v4": 9, "v6": 3, "clients": 4, "kod": 1,
            "other_udp": 1, "other_ip": 1, "fragments": 2}


def analyze(*args):
    r = h.run([h.STRATA, "analyze", "--json", *args], timeout=120)
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


class AnalyzeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="analyze-test-")

    def check_known(self, out, frames_extra=0):
        self.assertEqual(out["requests"]["total"], EXPECTED["requests"])
        self.assertEqual(out["replies"]["total"], EXPECTED["replies"])
        self.assertEqual(out["requests"]["v4"], EXPECTED["v4"])
        self.assertEqual(out["requests"]["v6"], EXPECTED["v6"])
        self.assertEqual(out["replies"]["kod"], EXPECTED["kod"])
        self.assertEqual(out["clients"]["unique"], EXPECTED["clients"])
        self.assertEqual(out["clients"]["v6"], 1)
        self.assertEqual(out["frames"]["other_udp"], EXPECTED["other_udp"])
        self.assertEqual(out["frames"]["other_ip"], EXPECTED["other_ip"])
        self.assertEqual(out["frames"]["fragments"], EXPECTED["fragments"])
        # 76 octets per IPv4 NTP packet, 96 per IPv6, at the IP level.
        self.assertEqual(out["requests"]["bytes"], 9 * 76 + 3 * 96)
        self.assertEqual(out["top"][0]["address"], "198.51.100.3")
        self.assertEqual(out["top"][0]["requests"], 6)
        self.assertAlmostEqual(out["top"][0]["share"], 0.5)
        dist = {(b["min"], b["max"]): (b["clients"], b["requests"]) for b in out["requests_per_client"]}
        self.assertEqual(dist[(1, 1)], (1, 1))
        self.assertEqual(dist[(2, 2)], (1, 2))
        self.assertEqual(dist[(3, 4)], (1, 3))
        self.assertEqual(dist[(5, 8)], (1, 6))
        rows = {r["n"]: r for r in out["thresholds"]}
        self.assertEqual(rows[2]["clients_at_most"], 2)
        self.assertAlmostEqual(rows[2]["request_share_at_most"], 3 / 12)
        self.assertEqual(rows[2]["clients_blocked"], 2)
        self.assertEqual(rows[2]["requests_cut"], 9)
        self.assertEqual(rows[5]["requests_cut"], 6)

    def test_every_link_type_in_pcap_and_pcapng(self):
        packets = traffic()
        noise = {1: [b"\xff" * 12 + b"\x08\x06" + b"\0" * 28]}  # ARP on Ethernet
        for link in (1, "vlan", "qinq", 113, 276, 12, 228, 0):
            with self.subTest(link=link):
                path = os.path.join(self.dir, f"link-{link}.pcap")
                if link == 228:  # DLT_IPV4 carries only IPv4: the IPv6 ones go in a DLT_IPV6 file
                    v4 = [p for p in packets if p[0] >> 4 == 4]
                    v6 = [p for p in packets if p[0] >> 4 == 6]
                    write_pcap(path, 228, v4)
                    path6 = os.path.join(self.dir, "link-229.pcap")
                    write_pcap(path6, 229, v6, t0=1_800_000_100.0)
                    r, out = analyze(path, path6)
                else:
                    write_pcap(path, link, [frame(link, p) for p in packets] + noise.get(link, []))
                    r, out = analyze(path)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.check_known(out)
                if link == 1:
                    self.assertEqual(out["frames"]["not_ip"], 1)
        path = os.path.join(self.dir, "eth.pcapng")
        write_pcapng(path, 1, [frame(1, p) for p in packets])
        r, out = analyze(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_known(out)
        self.assertAlmostEqual(out["duration_s"], 0.5 * (len(packets) - 1), places=3)

    def test_server_address_tells_requests_from_replies(self):
        # Mode 0 garbage both ways: only --server can tell them apart.
        packets = [ip_packet("198.51.100.1", SERVER4, 40000, 123, bytes(48)),
                   ip_packet(SERVER4, "198.51.100.1", 123, 40000, bytes(48))]
        path = os.path.join(self.dir, "server.pcap")
        write_pcap(path, 12, packets)
        _, out = analyze(path, "--server", SERVER4)
        self.assertEqual((out["requests"]["total"], out["replies"]["total"]), (1, 1))

    def test_poll_intervals(self):
        # 64 s, 1024 s and 4 s pollers, and a one-off; timestamps carry a little jitter.
        t = []
        # Two pollers faster than a second (one bin: their intervals in seconds still differ).
        for addr, step, n in (("198.51.100.1", 64, 6), ("198.51.100.2", 1024, 4), ("198.51.100.3", 4, 30),
                              ("198.51.100.4", 0, 1), ("198.51.100.5", 0.167, 20), ("198.51.100.6", 0.4, 20)):
            for i in range(n):
                jitter = (0.3 if i % 2 else -0.2) if step >= 1 else 0
                t.append((1_800_000_000 + step * i + jitter, ip_packet(addr, SERVER4, 40000, 123, ntp(3))))
        t.sort()
        path = os.path.join(self.dir, "polls.pcap")
        with open(path, "wb") as f:
            f.write(struct.pack("=IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 12))
            for ts, p in t:
                f.write(struct.pack("=IIII", int(ts), int(round((ts % 1) * 1e6)), len(p), len(p)) + p)
        _, out = analyze(path)
        got = {row["seconds"]: (row["clients"], row["requests"]) for row in out["poll_intervals"]}
        self.assertEqual(got, {64: (1, 6), 1024: (1, 4), 4: (1, 30), 1: (2, 40)})
        self.assertEqual(out["fast_pollers"]["clients"], 3)
        busiest = {f["address"]: f for f in out["fast_pollers"]["busiest"]}
        self.assertEqual(busiest["198.51.100.3"], {"address": "198.51.100.3", "requests": 30, "median_interval_s": 4})
        self.assertAlmostEqual(busiest["198.51.100.5"]["median_interval_s"], 0.167, delta=0.002)
        self.assertAlmostEqual(busiest["198.51.100.6"]["median_interval_s"], 0.4, delta=0.002)
        csv = os.path.join(self.dir, "polls-csv")
        h.run([h.STRATA, "analyze", "--csv", csv, path], check=True)
        with open(os.path.join(csv, "clients.csv")) as f:
            seconds = {l.split(",")[0]: l.strip().split(",")[-1] for l in f}
        self.assertEqual((seconds["198.51.100.1"], seconds["198.51.100.5"], seconds["198.51.100.6"],
                          seconds["198.51.100.4"]), ("64", "0.167", "0.4", ""))

    def test_what_if_policy_replays_through_stratads_limiter(self):
        # A well-behaved client every 64 s, and a broken one 10 times a second for a minute.
        t = []
        for i in range(20):
            t.append((1_800_000_000 + 64.0 * i, ip_packet("198.51.100.1", SERVER4, 40000 + i, 123, ntp(3))))
        for i in range(600):
            t.append((1_800_000_000 + 0.1 * i, ip_packet("203.0.113.9", SERVER4, 50000, 123, ntp(3))))
        t.sort(key=lambda x: x[0])
        path = os.path.join(self.dir, "whatif.pcap")
        with open(path, "wb") as f:
            f.write(struct.pack("=IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 12))
            for ts, p in t:
                f.write(struct.pack("=IIII", int(ts), int(round((ts % 1) * 1e6)), len(p), len(p)) + p)
        policy = os.path.join(self.dir, "policy.toml")
        with open(policy, "w") as f:
            f.write("[ratelimit]\nleak = 0\n[blocks]\nenabled = false\n")  # the limiter alone
        _, out = analyze(path, "--policy", policy)
        w = out["what_if"]
        self.assertEqual(w["requests"], 620)
        self.assertEqual(w["answered"] + w["kod"] + w["dropped"], 620)
        self.assertEqual(w["dropped"], w["dropped_limited"])
        self.assertGreater(w["dropped"], 500)
        self.assertGreaterEqual(w["kod"], 1)
        self.assertEqual(w["clients_touched"], 1)  # only the flood
        self.assertEqual(w["clients_touched_polling_64s_or_slower"], 0)
        self.assertEqual(w["reply_bytes_saved"], 76 * w["dropped"])
        self.assertEqual((w["blocked"], w["blocks"]), (0, []))
        # stratad's default block rules: the 10/s client is blocked (KoD) once 60 of its
        # requests fall in 30 s, 5.9 s in; the 64 s client never.
        with open(policy, "w") as f:
            f.write("[ratelimit]\nleak = 0\n")
        _, out = analyze(path, "--policy", policy)
        w = out["what_if"]
        self.assertEqual(len(w["blocks"]), 1, w["blocks"])
        b = w["blocks"][0]
        self.assertEqual((b["prefix"], b["rule"], b["action"], b["since"]), ("203.0.113.9/32", "fast poller", "kod", 1_800_000_005))
        self.assertEqual(b["expires"] - b["since"], 600)
        self.assertEqual(w["blocked"], 600 - 60)  # every request after the 60th met the block
        self.assertEqual(b["hits"], w["blocked"])
        self.assertGreater(w["dropped_blocked"], 500)
        self.assertEqual(w["clients_touched_polling_64s_or_slower"], 0)
        text = h.run([h.STRATA, "analyze", path, "--policy", policy], check=True).stdout
        self.assertIn("dynamic blocks placed by the rules: 1; requests that met one: 540", text)
        self.assertIn('203.0.113.9/32           kod   rule "fast poller" at', text)
        # A rule too harsh, tried on the capture before it goes live: it would block the
        # 64 s client too (18 requests in an hour), and the report says so.
        with open(policy, "w") as f:
            f.write('[[blocks.rule]]\nname = "harsh"\nrate = 0.005\nwindow = 3600\naction = "drop"\n')
        _, out = analyze(path, "--policy", policy)
        w = out["what_if"]
        self.assertEqual({b["prefix"] for b in w["blocks"]}, {"203.0.113.9/32", "198.51.100.1/32"})
        self.assertEqual(w["clients_touched_polling_64s_or_slower"], 1)
        # A policy that denies the good client's prefix is flagged.
        with open(policy, "w") as f:
            f.write('[access]\nrules = ["198.51.100.0/24 ignore"]\n')
        _, out = analyze(path, "--policy", policy)
        self.assertEqual(out["what_if"]["clients_touched_polling_64s_or_slower"], 1)
        self.assertEqual(out["what_if"]["examples_polling_64s_or_slower"][0]["address"], "198.51.100.1")
        # A broken policy file: file:line: reason, nothing analysed.
        with open(policy, "w") as f:
            f.write("[ratelimit]\nburst = -3\n")
        r, _ = analyze(path, "--policy", policy)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{policy}:2:", r.stderr)

    def test_html_report_renders_in_headless_chromium(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        h.require(chromium is not None, "chromium not installed (./setup installs it)")
        path = os.path.join(self.dir, "html.pcap")
        write_pcap(path, 12, traffic(), step=30.0)
        page = os.path.join(self.dir, "report.html")
        policy = os.path.join(self.dir, "p.toml")
        with open(policy, "w") as f:
            f.write("[ratelimit]\nleak = 0\n")
        r, out = analyze(path, "--html", page, "--policy", policy)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(page) as f:
            text = f.read()
        self.assertNotIn("<script", text)  # self-contained and inert
        # Axis labels an operator reads: no exponent forms ("1e+02") anywhere in the page.
        self.assertNotRegex(text, r">[0-9.]+e[+-][0-9]+<")
        self.assertNotIn("http://", text.replace('xmlns="http://www.w3.org/2000/svg"', ""))
        args = [chromium, "--headless", "--disable-gpu", "--no-first-run", "--dump-dom",
                "--user-data-dir=" + os.path.join(self.dir, "chromium"), "file://" + page]
        if h.is_root():
            args.insert(1, "--no-sandbox")
        dom = subprocess.run(args, capture_output=True, text=True, timeout=120)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        # Parsed and laid out by a browser: the charts and tables are in its DOM.
        self.assertEqual(dom.stdout.count("<svg"), 4, dom.stdout[:500])
        for table in ("summary", "thresholds", "top", "software", "whatif"):
            self.assertIn(f'id="{table}"', dom.stdout)
        self.assertIn("198.51.100.3", dom.stdout)  # the top talker
        self.assertIn("log scale", dom.stdout)
        shot = os.path.join(self.dir, "report.png")
        args = [a for a in args if a != "--dump-dom"]
        args.insert(-1, "--screenshot=" + shot)
        args.insert(-1, "--window-size=1000,2400")
        subprocess.run(args, capture_output=True, timeout=120)
        self.assertGreater(os.path.getsize(shot), 20000)  # a real picture, not a blank page

    def test_cost_from_a_capture(self):
        path = os.path.join(self.dir, "cost.pcap")
        packets = traffic()
        write_pcap(path, 1, [frame(1, p) for p in packets], step=2.0)
        r = h.run([h.STRATA, "cost", "--capture", path, "--price", "0.1", "--json"], check=True)
        out = json.loads(r.stdout)
        duration = 2.0 * (len(packets) - 1)
        self.assertEqual(out["inputs"]["received"], 12)
        self.assertEqual(out["inputs"]["sent"], 12)
        self.assertAlmostEqual(out["inputs"]["seconds"], duration, places=6)
        gib = (9 * 76 + 3 * 96) / duration * 30.436875 * 86400 / 2 ** 30
        self.assertAlmostEqual(out["gib_per_month_out"], gib, places=9)
        self.assertAlmostEqual(out["providers"][0]["usd_per_month"], 0.1 * gib, places=9)

    def test_csv_files(self):
        path = os.path.join(self.dir, "csv.pcap")
        write_pcap(path, 12, traffic())
        csv = os.path.join(self.dir, "csv")
        r = h.run([h.STRATA, "analyze", "--csv", csv, path], check=True)
        self.assertIn("Top talkers", r.stdout)
        with open(os.path.join(csv, "clients.csv")) as f:
            rows = [line.strip().split(",") for line in f]
        self.assertEqual(rows[0], ["address", "requests", "replies", "request_bytes", "reply_bytes", "software",
                                   "median_interval_s"])
        got = {row[0]: (int(row[1]), int(row[2])) for row in rows[1:]}
        self.assertEqual(got, {"198.51.100.1": (1, 1), "198.51.100.2": (2, 2), "198.51.100.3": (6, 6),
                               "2001:db8::7": (3, 3)})
        for name in ("distribution.csv", "thresholds.csv", "intervals.csv"):
            self.assertTrue(os.path.getsize(os.path.join(csv, name)) > 0)
            self.assertIn(name, h.run([h.STRATA, "analyze", "--help"]).stdout)

    def test_damaged_tail_is_read_up_to_the_damage(self):
        packets = traffic()
        path = os.path.join(self.dir, "cut.pcap")
        write_pcap(path, 1, [frame(1, p) for p in packets], corrupt_tail=True)
        r, out = analyze(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning", r.stderr)
        self.assertIn(f"read up to frame {len(packets)}", r.stderr)
        self.check_known(out)
        # Not a capture at all: a clear error, status 1.
        bogus = os.path.join(self.dir, "bogus.pcap")
        with open(bogus, "wb") as f:
            f.write(b"this is not a capture\n")
        r, _ = analyze(bogus)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bogus.pcap", r.stderr)

    def test_money_scales_replies_to_a_month(self):
        packets = traffic()
        path = os.path.join(self.dir, "money.pcap")
        write_pcap(path, 12, packets, step=1.0)
        _, out = analyze(path, "--price", "0.1")
        duration = len(packets) - 1
        gib = (9 * 76 + 3 * 96) * 30.436875 * 86400 / duration / 2 ** 30
        self.assertAlmostEqual(out["reply_gib_per_month"], gib, places=9)
        self.assertAlmostEqual(out["usd_per_year"], 12 * 0.1 * gib, places=9)
        rows = {r["n"]: r for r in out["thresholds"]}
        # Blocking clients with more than 2 requests cuts the replies of the 6- and 3-request ones.
        cut = (6 * 76 + 3 * 96) * 30.436875 * 86400 / duration / 2 ** 30
        self.assertAlmostEqual(rows[2]["usd_per_year_saved"], 12 * 0.1 * cut, places=9)

    def test_top_networks_and_countries(self):
        data = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "mmdb")
        asn, country = os.path.join(data, "GeoLite2-ASN-Test.mmdb"), os.path.join(data, "GeoLite2-Country-Test.mmdb")
        # Google's 1.0.0.0/24 (no country in the test database), Bredband2 in Sweden, and
        # 67.43.156.0/24 (Bhutan, AS35908 with no organisation): 6, 3 and 1 requests, all answered.
        packets = []
        for addr, n in (("1.0.0.1", 4), ("1.0.0.2", 2), ("89.160.20.115", 3), ("67.43.156.9", 1)):
            for i in range(n):
                packets.append(ip_packet(addr, SERVER4, 40000 + i, 123, ntp(3)))
                packets.append(ip_packet(SERVER4, addr, 123, 40000 + i, ntp(4)))
        path = os.path.join(self.dir, "networks.pcap")
        write_pcap(path, 12, packets, step=1.0)
        r, out = analyze(path, "--price", "0.1", "--networks", asn, "--networks", country)
        self.assertEqual(r.returncode, 0, r.stderr)
        nets = {x["name"]: x for x in out["networks"]["by_network"]}
        self.assertEqual(out["networks"]["by_network"][0]["name"], "AS15169 Google Inc.")
        self.assertEqual((nets["AS15169 Google Inc."]["clients"], nets["AS15169 Google Inc."]["requests"]), (2, 6))
        self.assertAlmostEqual(nets["AS15169 Google Inc."]["request_share"], 0.6)
        self.assertEqual(nets["AS29518 Bredband2 AB"]["replies"], 3)
        self.assertEqual(nets["AS35908"]["asn"], 35908)
        # Money: each network's share of the replies' bytes of the year's bill.
        self.assertAlmostEqual(nets["AS15169 Google Inc."]["usd_per_year"], 0.6 * out["usd_per_year"], places=9)
        countries = {x["name"]: x["requests"] for x in out["networks"]["by_country"]}
        self.assertEqual(countries, {"unknown country": 6, "SE": 3, "BT": 1})
        text = h.run([h.STRATA, "analyze", path, "--price", "0.1", "--networks", asn, "--networks", country],
                     check=True).stdout
        self.assertIn("Top networks", text)
        self.assertRegex(text, r"1 AS15169 Google Inc\. +2 +6 +60\.0")
        self.assertIn("Top countries", text)
        page = os.path.join(self.dir, "networks.html")
        h.run([h.STRATA, "analyze", path, "--networks", asn, "--html", page], check=True)
        with open(page) as f:
            html = f.read()
        self.assertIn('<table id="by_network">', html)
        self.assertIn("AS15169 Google Inc.", html)
        # One database alone, and a bad one.
        _, out = analyze(path, "--networks", country)
        self.assertEqual({x["name"] for x in out["networks"]["by_network"]}, {"unknown network"})
        bad = os.path.join(self.dir, "bad.mmdb")
        with open(bad, "w") as f:
            f.write("not a database\n")
        r, _ = analyze(path, "--networks", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot open " + bad, r.stderr)

    def test_real_capture_of_stratad_with_tcpdump(self):
        tcpdump = shutil.which("tcpdump")
        h.require(tcpdump is not None, "tcpdump not installed (./setup installs it)")
        h.require(h.is_root(), "capturing on loopback needs root")
        capdir = tempfile.mkdtemp(prefix="analyze-cap-")
        os.chmod(capdir, 0o777)  # tcpdump writes as its own user
        path = os.path.join(capdir, "stratad.pcap")
        with h.Stratad(ratelimit=True) as d:
            dump = subprocess.Popen([tcpdump, "-i", "lo", "-w", path, "-U", "-n",
                                     f"udp port {d.port} and host 127.0.0.1"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                # tcpdump says "listening on" once it captures.
                deadline = time.time() + 10
                line = ""
                while time.time() < deadline and "listening" not in line:
                    line = dump.stderr.readline()
                self.assertIn("listening", line)
                load = h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "200",
                              "--rate", "2000", "--duration", "1", "--json"], check=True)
                time.sleep(0.5)
            finally:
                dump.terminate()
                dump.wait(timeout=10)
                dump.stderr.close()
            sent = json.loads(load.stdout)["sent"]
            counters = d.counters()
        r, out = analyze(path, "--port", str(d.port), "--server", "127.0.0.1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(out["requests"]["total"], sent)
        self.assertEqual(out["requests"]["total"], counters["received"])
        self.assertEqual(out["replies"]["total"], counters["responses_sent"])
        self.assertEqual(out["replies"]["kod"], counters["kod_sent"])
        self.assertEqual(out["clients"]["unique"], 200)
        # One server: its replies, KoDs, and its own processing times (T3 - T2 in its replies).
        [server] = out["servers"]
        self.assertEqual(server["address"], "127.0.0.1")
        self.assertEqual(server["replies"], counters["responses_sent"])
        self.assertEqual(server["requests"], counters["received"])
        self.assertAlmostEqual(server["unanswered_share"],
                               1 - counters["responses_sent"] / counters["received"], places=9)
        self.assertEqual(server["kod"], counters["kod_sent"])
        self.assertEqual(server["processing_ns"]["count"], counters["responses_sent"] - counters["kod_sent"])
        self.assertGreater(server["processing_ns"]["p50"], 0)
        self.assertLess(server["processing_ns"]["p50"], 0.1e9)
        self.assertEqual(out["frames"]["truncated"], 0)
        # Without --port the capture holds no NTP on 123: not silent zeros but the port to try.
        hint = f"no NTP on UDP port 123; the busiest UDP port was {d.port}"
        r, out = analyze(path)
        self.assertEqual(out["requests"]["total"], 0)
        self.assertIn(hint, out["port_hint"])
        self.assertIn(f"try --port {d.port}", r.stderr)
        text = h.run([h.STRATA, "analyze", path]).stdout
        self.assertIn(f"NOTE         {hint}", text)
        r = h.run([h.STRATA, "cost", "--capture", path, "--price", "0.1"])
        self.assertIn(f"try --port {d.port}", r.stderr)
        self.assertIn(hint, r.stdout)

    def test_real_chronyd_is_fingerprinted(self):
        tcpdump = shutil.which("tcpdump")
        h.require(tcpdump is not None, "tcpdump not installed (./setup installs it)")
        h.require(h.is_root(), "capturing on loopback needs root")
        h.require(os.access(h.CHRONYD, os.X_OK), "chronyd missing (./setup unpacks chrony)")
        from test_chrony import Chronyd
        capdir = tempfile.mkdtemp(prefix="analyze-fp-")
        os.chmod(capdir, 0o777)
        path = os.path.join(capdir, "chronyd.pcap")
        with h.Stratad() as d:
            dump = subprocess.Popen([tcpdump, "-i", "lo", "-w", path, "-U", "-n", f"udp port {d.port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                line = ""
                deadline = time.time() + 10
                while time.time() < deadline and "listening" not in line:
                    line = dump.stderr.readline()
                c = Chronyd([f"server 127.0.0.1 port {d.port} iburst minpoll -2 maxpoll -2",
                             "bindacqaddress 127.0.0.99", "port 0"])
                try:
                    self.assertTrue(c.wait_for("Selected source", 20), "\n".join(c.log))
                finally:
                    c.stop()
                h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "20", "--rate", "200",
                       "--duration", "0.5"], check=True)
                time.sleep(0.3)
            finally:
                dump.terminate()
                dump.wait(timeout=10)
                dump.stderr.close()
        csv = os.path.join(capdir, "csv")
        h.run([h.STRATA, "analyze", "--port", str(d.port), "--csv", csv, path], check=True)
        with open(os.path.join(csv, "clients.csv")) as f:
            rows = {line.split(",")[0]: line.strip().split(",") for line in f}
        self.assertEqual(rows["127.0.0.99"][5], "chrony/NTPsec")  # chronyd 4.3's own requests


if __name__ == "__main__":
    unittest.main(verbosity=2)
