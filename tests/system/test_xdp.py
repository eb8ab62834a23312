#!/usr/bin/env python3
"""The AF_XDP backend ([server] backend = "xdp") over a veth pair between two network
namespaces the test makes and removes: a server namespace where stratad attaches its XDP
program to one end, and a client namespace where the real clients run on the other.

ntpdig and chronyd (-x) get valid time over IPv4 and IPv6 (their kernels check every reply's
checksums, also with transmit checksum offload off); ping, ping6, ARP, neighbour discovery, TCP
and UDP to other ports still reach the kernel; fragments and mode 6 are answered by the sockets
beside the AF_XDP ones; NTS works; hostile datagrams are counted and never amplified. A trace of
10,000 requests from 200 prefixes (raw frames from many source addresses) gets the same replies
and the same rate-limit and KoD decisions on both backends, and each prefix meets one worker.
Fallbacks: a peer MTU too large for native XDP (generic serves), generic forced, an interface
MTU too large for the frames and a missing interface (sockets serve), a socket missing from the
program's map (sockets serve those requests); the program is gone after a stop and after a crash.

Needs root (namespaces, XDP, AF_XDP): skipped without, and CI (root) runs it."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SERVER_V4, CLIENT_V4 = "10.77.0.1", "10.77.0.2"
SERVER_V6, CLIENT_V6 = "fd77::1", "fd77::2"
# Where the trace's spoofed sources live (the server routes them back through the client).
TRACE_NET = "10.78.0.0/16"


def ip(*args, check=True):
    out = h.run(["ip", *args])
    if check and out.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {out.stderr}")
    return out


class Pair:
    """Two namespaces joined by a veth pair with one queue each (as small VMs have)."""

    def __init__(self):
        tag = str(os.getpid())
        self.sv, self.cl = "strata-xs" + tag, "strata-xc" + tag
        self.vs, self.vc = "xs" + tag[-8:], "xc" + tag[-8:]
        ip("netns", "add", self.sv)
        ip("netns", "add", self.cl)
        ip("link", "add", self.vs, "numrxqueues", "1", "numtxqueues", "1", "type", "veth",
           "peer", "name", self.vc, "numrxqueues", "1", "numtxqueues", "1")
        ip("link", "set", self.vs, "netns", self.sv)
        ip("link", "set", self.vc, "netns", self.cl)
        ip("-n", self.sv, "addr", "add", SERVER_V4 + "/24", "dev", self.vs)
        ip("-n", self.sv, "addr", "add", SERVER_V6 + "/64", "dev", self.vs, "nodad")
        ip("-n", self.cl, "addr", "add", CLIENT_V4 + "/24", "dev", self.vc)
        ip("-n", self.cl, "addr", "add", CLIENT_V6 + "/64", "dev", self.vc, "nodad")
        for ns, dev in ((self.sv, self.vs), (self.cl, self.vc)):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", dev, "up")
        ip("-n", self.sv, "route", "add", TRACE_NET, "via", CLIENT_V4)

    def in_server(self, *cmd):
        return ["ip", "netns", "exec", self.sv, *cmd]

    def in_client(self, *cmd):
        return ["ip", "netns", "exec", self.cl, *cmd]

    def client(self, *cmd, timeout=60):
        return h.run(self.in_client(*cmd), timeout=timeout)

    def server_link(self):
        return ip("-n", self.sv, "link", "show", self.vs).stdout

    def set_mtu(self, ns, dev, mtu):
        ip("-n", ns, "link", "set", dev, "mtu", str(mtu))

    def mac(self, ns, dev):
        return json.loads(ip("-n", ns, "-j", "link", "show", dev).stdout)[0]["address"]

    def close(self):
        ip("netns", "del", self.sv, check=False)
        ip("netns", "del", self.cl, check=False)


def config(pair, backend="xdp", xdp="", extra=""):
    text = (f'[server]\nbackend = "{backend}"\n[time]\nsource = "local"\n'
            f'[metrics]\nlisten = "127.0.0.1:0"\n{extra}')
    if backend == "xdp":
        text += f'\n[xdp]\ninterfaces = ["{pair.vs}"]\n{xdp}'
    return text


def start(pair, text, threads=2, env=None, wait=True):
    return h.Stratad(text, listen=["0.0.0.0:123", "[::]:123"], threads=threads,
                     wrapper=pair.in_server(), env=env, wait=wait)


def ntpdig_ok(pair, server, tries=3):
    """ntpdig from the client namespace gets a valid reply (it rejects bad ones itself)."""
    last = None
    for _ in range(tries):
        last = pair.client("ntpdig", "-t", "2", "-j", server, timeout=20)
        if last.returncode == 0:
            return json.loads(last.stdout)
        time.sleep(0.5)
    raise AssertionError(f"ntpdig {server}: {last.stdout} {last.stderr}")


def wait_for(predicate, timeout=10, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


# The trace generator, run in the client namespace: raw Ethernet frames (so the sources can be
# any address of TRACE_NET) through an AF_PACKET socket, replies caught by a second one.
GENERATOR = r'''
import json, random, socket, struct, sys, threading, time
cfg = json.load(open(sys.argv[1]))
dev, src_mac, dst_mac = cfg["dev"], bytes.fromhex(cfg["src_mac"].replace(":", "")), bytes.fromhex(cfg["dst_mac"].replace(":", ""))
server = socket.inet_aton(cfg["server"])

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def frame(src, sport, xmt, payload=None):
    ntp = payload if payload is not None else bytes([0x23, 0, 6, 0xec]) + bytes(36) + xmt
    udp = struct.pack("!HHHH", sport, 123, 8 + len(ntp), 0) + ntp
    pseudo = src + server + struct.pack("!BBH", 0, 17, len(udp))
    c = csum(pseudo + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, server)
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    return dst_mac + src_mac + b"\x08\x00" + iph + udp

replies = {}
done = threading.Event()
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
rx.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: no reply lost here
rx.bind((dev, 0))
rx.settimeout(0.2)
def receive():
    while not done.is_set():
        try:
            f = rx.recv(4096)
        except socket.timeout:
            continue
        if len(f) < 14 + 28 + 48 or f[6:12] == src_mac or f[23] != 17 or f[26:30] != server:
            continue
        ihl = (f[14] & 15) * 4
        udp = 14 + ihl
        dport = struct.unpack("!H", f[udp + 2:udp + 4])[0]
        key = socket.inet_ntoa(f[30:34]) + ":" + str(dport)
        replies[key] = f[udp + 8:].hex()
t = threading.Thread(target=receive)
t.start()
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind((dev, 0))
sent = 0
for i, (src, sport) in enumerate(cfg["trace"]):
    tx.send(frame(socket.inet_aton(src), sport, struct.pack("!Q", i + 1)))
    sent += 1
    if sent % cfg.get("pace", 100) == 0:
        time.sleep(0.005)
time.sleep(1.0)
done.set()
t.join()
json.dump({"replies": replies}, open(sys.argv[2], "w"))
'''


def make_trace(seed=14, group_b=True):
    """10,000 requests: 100 prefixes of 60 hosts (one request each, interleaved), then 100
    prefixes where 6 hosts ask once and one of them 34 times more at once. Source ports are
    random, as chronyd's are."""
    rng = h.seeded_rng(seed)
    used = set()

    def port():
        while True:
            p = rng.randrange(1024, 65536)
            if p not in used:
                used.add(p)
                return p

    a = [[(f"10.78.{p}.{host}", port()) for host in range(1, 61)] for p in range(100)]
    trace = [a[p][i] for i in range(60) for p in range(100)]
    if group_b:
        for p in range(100, 200):
            trace += [(f"10.78.{p}.{host}", port()) for host in range(1, 7)]
            trace += [(f"10.78.{p}.1", port()) for _ in range(34)]
    return trace


def run_trace(pair, trace, pace=100):
    # The sockets' replies need the client's MAC: resolved first, or the kernel would queue
    # only a few replies per address while ARP runs (and drop the rest).
    h.run(pair.in_server("ping", "-c", "1", "-W", "2", CLIENT_V4))
    work = tempfile.mkdtemp(prefix="strata-xdp-trace-")
    try:
        script, cfg_path, out_path = (os.path.join(work, n) for n in ("gen.py", "cfg.json", "out.json"))
        with open(script, "w") as f:
            f.write(GENERATOR)
        with open(cfg_path, "w") as f:
            json.dump({"dev": pair.vc, "src_mac": pair.mac(pair.cl, pair.vc),
                       "dst_mac": pair.mac(pair.sv, pair.vs), "server": SERVER_V4,
                       "trace": trace, "pace": pace}, f)
        out = h.run(pair.in_client(h.SYSTEM_PYTHON, script, cfg_path, out_path), timeout=120)
        if out.returncode != 0:
            raise AssertionError("generator: " + out.stderr)
        with open(out_path) as f:
            return json.load(f)["replies"]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def outcome(payload_hex):
    """What a reply says, past its timestamps: the header octets 0-2 (leap, version, mode,
    stratum, poll; not the precision, which each stratad measures at its start), the reference
    id and the origin timestamp (the request's transmit time echoed)."""
    b = bytes.fromhex(payload_hex)
    return (b[0:3].hex(), b[12:16].hex(), b[24:32].hex(), len(b))


class XdpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require(h.is_root(), "AF_XDP needs root (network namespaces, XDP, AF_XDP sockets)")
        h.require(shutil.which("ip") is not None, "iproute2 missing (./setup installs it)")
        h.require(shutil.which("ntpdig") is not None, "ntpdig missing (./setup installs it)")
        cls.pair = Pair()

    @classmethod
    def tearDownClass(cls):
        cls.pair.close()

    def setUp(self):
        # Every test starts from the same link settings.
        p = self.pair
        p.set_mtu(p.sv, p.vs, 1500)
        p.set_mtu(p.cl, p.vc, 1500)
        h.run(p.in_client("ethtool", "-K", p.vc, "tx", "on"))
        # An MTU under 1280 (the fragment test) took the IPv6 addresses away.
        ip("-n", p.sv, "addr", "replace", SERVER_V6 + "/64", "dev", p.vs, "nodad")
        ip("-n", p.cl, "addr", "replace", CLIENT_V6 + "/64", "dev", p.vc, "nodad")

    def counters(self, d):
        return d.counters()

    def assert_detached(self):
        wait_for(lambda: "prog/xdp" not in self.pair.server_link(), 5, "the XDP program to go")

    def test_real_clients_get_time_over_af_xdp(self):
        p = self.pair
        with start(p, config(p)) as d:
            self.assertIn("prog/xdp", p.server_link())
            self.assertTrue(any("copy mode" in l and "native XDP" in l for l in d.log), d.log)
            # veth cannot do zero-copy: said once, then copy mode.
            self.assertEqual(sum("zero-copy unavailable" in l for l in d.log), 1, d.log)
            for offload in ("on", "off"):
                h.run(p.in_client("ethtool", "-K", p.vc, "tx", offload))
                for server in (SERVER_V4, SERVER_V6):
                    reply = ntpdig_ok(p, server)
                    self.assertEqual(reply["stratum"], 10, reply)
                    self.assertLess(abs(reply["offset"]), 0.1, reply)
            c = self.counters(d)
            self.assertGreaterEqual(c["xdp_sent"], 4, c)
            self.assertEqual(c["xdp_sent"], c["responses_sent"], c)
            self.assertGreaterEqual(c["received_v6"], 2, c)
            self.assertEqual(c["xdp_no_timestamp"], 0, c)
            self.assertEqual(c["send_errors"], 0, c)
        self.assert_detached()

    def test_vlan_tagged_requests_and_reload(self):
        p = self.pair
        # A VLAN on the veth: tagged frames reach the program on the parent, are answered
        # over AF_XDP with the tag kept, and the client's VLAN interface takes the reply.
        # (A kernel without 802.1Q, like this VM's, cannot make the VLAN: then only the reload
        # part runs; the program's and the parser's VLAN handling have unit and fuzz tests.)
        vlan = ip("-n", p.sv, "link", "add", "link", p.vs, "name", "vs.100", "type", "vlan", "id", "100",
                  check=False).returncode == 0
        if vlan:
            self.addCleanup(ip, "-n", p.sv, "link", "del", "vs.100", check=False)
            ip("-n", p.cl, "link", "add", "link", p.vc, "name", "vc.100", "type", "vlan", "id", "100")
            self.addCleanup(ip, "-n", p.cl, "link", "del", "vc.100", check=False)
            ip("-n", p.sv, "addr", "add", "10.79.0.1/24", "dev", "vs.100")
            ip("-n", p.cl, "addr", "add", "10.79.0.2/24", "dev", "vc.100")
            ip("-n", p.sv, "link", "set", "vs.100", "up")
            ip("-n", p.cl, "link", "set", "vc.100", "up")
        else:
            print("no 802.1Q in this kernel: VLAN part skipped", file=sys.stderr)
        with start(p, config(p)) as d:
            if vlan:
                ntpdig_ok(p, "10.79.0.1")
            else:
                ntpdig_ok(p, SERVER_V4)
            c = self.counters(d)
            self.assertEqual(c["xdp_sent"], 1, c)
            self.assertEqual(c["responses_sent"], 1, c)
            # A reload keeps serving over AF_XDP (the rules are the workers'); a changed [xdp]
            # table is reported as waiting for a restart.
            with open(d.config_path) as f:
                text = f.read()
            with open(d.config_path, "w") as f:
                f.write(text.replace("[xdp]\n", '[xdp]\nmode = "generic"\n'))
            out = h.run([h.STRATA, "reload", "--control", d.control])
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            wait_for(lambda: any("reload: [xdp] changed; it takes effect at the next restart" in l for l in d.log),
                     5, "the reload's restart notice")
            ntpdig_ok(p, SERVER_V4)
            self.assertEqual(self.counters(d)["xdp_sent"], 2)

    def test_chronyd_synchronises_over_af_xdp(self):
        h.require(os.access(h.CHRONYD, os.X_OK), "chronyd not unpacked (./setup does it)")
        p = self.pair
        work = tempfile.mkdtemp(prefix="strata-xdp-chrony-")
        self.addCleanup(shutil.rmtree, work, True)
        conf = os.path.join(work, "chrony.conf")
        with open(conf, "w") as f:
            f.write(f"server {SERVER_V4} iburst minpoll -2 maxpoll -2\nserver {SERVER_V6} iburst minpoll -2 maxpoll -2\n"
                    f"pidfile {work}/chronyd.pid\ncmdport 0\nport 0\n")
        with start(p, config(p, extra='[ratelimit]\nenabled = false\n')) as d:
            # -x: never touches the clock; -u root: the unpacked chrony has no _chrony user.
            chrony = subprocess.Popen(p.in_client(h.CHRONYD, "-x", "-d", "-f", conf, "-u", "root"),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            log = []
            reader = threading.Thread(target=lambda: [log.append(l) for l in chrony.stdout], daemon=True)
            reader.start()
            try:
                wait_for(lambda: any("Selected source" in l for l in log), 30, "chronyd to select stratad")
                self.assertFalse(any("Can't synchronise" in l for l in log), log)
            finally:
                chrony.terminate()
                chrony.wait(timeout=10)
                reader.join(timeout=5)
                chrony.stdout.close()
            # Read once chronyd (polling every 0.25 s) is gone: a reply in flight is counted in
            # xdp_sent by the backend a moment before the worker counts it in responses_sent.
            time.sleep(0.5)
            c = self.counters(d)
            self.assertGreaterEqual(c["xdp_sent"], 4, c)
            self.assertEqual(c["xdp_sent"], c["responses_sent"], c)
            self.assertGreaterEqual(c["received_v6"], 1, c)

    def test_everything_else_still_reaches_the_kernel(self):
        p = self.pair
        listener = subprocess.Popen(p.in_server(h.SYSTEM_PYTHON, "-c", r'''
import socket, threading
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("0.0.0.0", 8123)); t.listen()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::", 9999))
print("ready", flush=True)
def udp():
    while True:
        data, peer = u.recvfrom(100); u.sendto(b"udp:" + data, peer)
threading.Thread(target=udp, daemon=True).start()
c, _ = t.accept(); c.sendall(b"tcp:" + c.recv(100)); c.close()
import time; time.sleep(5)
'''), stdout=subprocess.PIPE, text=True)
        self.addCleanup(listener.stdout.close)
        self.addCleanup(listener.wait)
        self.addCleanup(listener.kill)
        self.assertEqual(listener.stdout.readline().strip(), "ready")
        with start(p, config(p)) as d:
            ip("-n", p.cl, "neigh", "flush", "dev", p.vc)
            for target in (SERVER_V4, SERVER_V6):
                out = p.client("ping", "-c", "2", "-i", "0.2", "-W", "2", target)
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            neigh = ip("-n", p.cl, "neigh", "show", "dev", p.vc).stdout
            self.assertIn(SERVER_V4, neigh)  # ARP answered
            self.assertIn(SERVER_V6, neigh)  # neighbour discovery answered
            out = p.client(h.SYSTEM_PYTHON, "-c", f'''
import socket
c = socket.create_connection(("{SERVER_V4}", 8123), timeout=3); c.sendall(b"hello"); print(c.recv(100).decode())
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.settimeout(3); u.sendto(b"ping", ("{SERVER_V6}", 9999))
print(u.recvfrom(100)[0].decode())
''')
            self.assertEqual(out.stdout.split(), ["tcp:hello", "udp:ping"], out.stderr)
            c = self.counters(d)
            self.assertGreater(c["xdp_prog_pass_other"], 0, c)
            self.assertEqual(c["xdp_prog_redirected"], 0, c)  # none of it was NTP

    def test_fragments_mode6_and_hostile_datagrams(self):
        p = self.pair
        text = config(p, extra=f'[access]\nrules = ["{CLIENT_V4} query"]\n[ratelimit]\nenabled = false\n')
        with start(p, text) as d:
            # An MTU of 72 on the client's side splits its 76-octet datagrams: the program
            # passes the fragments, the kernel reassembles, a socket worker answers.
            p.set_mtu(p.cl, p.vc, 72)
            ntpdig_ok(p, SERVER_V4)
            p.set_mtu(p.cl, p.vc, 1500)
            c = self.counters(d)
            self.assertGreaterEqual(c["xdp_prog_pass_fragment"], 2, c)
            self.assertGreaterEqual(c["responses_sent"] - c["xdp_sent"], 1, c)
            # Mode 6 goes to the sockets too, and the control service answers from there: off
            # loopback and unauthenticated, a query rule earns an error reply (test_ntpq).
            out = p.client(h.NTPQ, "-c", "rv 0 version", SERVER_V4, timeout=30)
            self.assertIn("PERMISSION", out.stdout + out.stderr)
            c = self.counters(d)
            self.assertGreaterEqual(c["xdp_prog_pass_control"], 1, c)
            self.assertGreaterEqual(c["control_responses"], 1, c)
            # Hostile datagrams over AF_XDP: counted, never answered with more than they sent.
            out = p.client(h.SYSTEM_PYTHON, "-c", f'''
import socket, struct
s = socket.socket(); s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
bad = [b"\\x23" + bytes(9), bytes([0x20]) + bytes(47), bytes([0x23]) + bytes(47) + b"\\x01" * 13,
       bytes([0x1b]) + bytes(47) + bytes(200), bytes([0x23, 0, 6, 0]) + bytes(36) + b"abcdefgh" + bytes(4)]
worst = 0
for data in bad:
    for _ in range(3):
        s.sendto(data, ("{SERVER_V4}", 123))
        try:
            reply = s.recv(4096)
            worst = max(worst, len(reply) - len(data))
        except socket.timeout:
            pass
print(worst)
''')
            self.assertLessEqual(int(out.stdout.strip()), 0, out.stderr)
            c = self.counters(d)
            self.assertGreaterEqual(c["bad_format"], 9, c)
            self.assertGreaterEqual(c["xdp_received"], 15, c)

    def test_nts_over_af_xdp(self):
        h.require(shutil.which("openssl") is not None, "openssl missing (./setup installs it)")
        p = self.pair
        work = tempfile.mkdtemp(prefix="strata-xdp-pki-")
        self.addCleanup(shutil.rmtree, work, True)
        os.chmod(work, 0o755)

        def openssl(*args):
            h.run(["openssl", *args], check=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=strata test CA", "-keyout", f"{work}/ca.key", "-out", f"{work}/ca.crt")
        with open(f"{work}/ext", "w") as f:
            f.write(f"subjectAltName=IP:{SERVER_V4}\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=server",
                "-keyout", f"{work}/server.key", "-out", f"{work}/server.csr")
        openssl("x509", "-req", "-in", f"{work}/server.csr", "-CA", f"{work}/ca.crt", "-CAkey", f"{work}/ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{work}/ext", "-out", f"{work}/server.crt")
        for name in ("server.key", "server.crt"):
            os.chmod(f"{work}/{name}", 0o644)
        text = config(p, extra=f'[nts]\ncertificate = "{work}/server.crt"\nkey = "{work}/server.key"\n'
                               f'listen = ["{SERVER_V4}:4460"]\nsecret = "{work}/nts-secret"\n'
                               '[ratelimit]\nenabled = false\n')
        with start(p, text) as d:
            out = p.client(h.STRATA, "query", "--nts", f"{SERVER_V4}:4460", "--ca", f"{work}/ca.crt",
                           "-c", "3", "-i", "0.05", "-4", timeout=30)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertEqual(out.stdout.count("nts ok"), 3, out.stdout)
            c = self.counters(d)
            self.assertEqual(c["nts_authenticated"], 3, c)
            self.assertGreaterEqual(c["xdp_sent"], 3, c)

    def test_same_trace_same_decisions_on_both_backends(self):
        p = self.pair
        trace = make_trace()
        self.assertEqual(len(trace), 10000)
        # No minimum spacing: with it, whether a burst's later requests come 0.25 s after its
        # first depends on how fast each stratad drains them (ASan: slower), not on the trace.
        limits = ('[ratelimit]\nv4_prefix = 24\nburst = 8\ninterval = 64\nmin_spacing = 0\nleak = 0\n'
                  'kod_interval = 64\nflood_rate = 100000\n')
        results = {}
        for backend in ("sockets", "xdp"):
            with start(p, config(p, backend=backend, extra=limits)) as d:
                replies = run_trace(p, trace)
                c = self.counters(d)
                self.assertEqual(c["received"], 10000, c)  # nothing lost on either path
                if backend == "xdp":
                    self.assertEqual(c["xdp_received"], 10000, c)
                results[backend] = {k: outcome(v) for k, v in replies.items()}
        sockets, xdp = results["sockets"], results["xdp"]
        self.assertEqual(set(sockets), set(xdp), "the same requests answered")
        differ = [k for k in sockets if sockets[k] != xdp[k]]
        self.assertEqual(differ, [], f"{len(differ)} replies differ, e.g. {differ[:3]}")
        # Each heavy prefix: exactly its burst answered with the time and one KoD RATE. Had
        # one prefix met two workers, each would have granted its own burst.
        for prefix in range(100):
            mine = [v for k, v in xdp.items() if k.startswith(f"10.78.{prefix}.")]
            kods = [v for v in mine if v[1] == b"RATE".hex()]
            self.assertEqual((len(mine) - len(kods), len(kods)), (8, 1), f"prefix 10.78.{prefix}.0/24: {mine}")

    def test_fallbacks_say_what_serves(self):
        p = self.pair
        # Peer MTU too large for native XDP on veth: generic XDP serves.
        p.set_mtu(p.cl, p.vc, 4000)
        with start(p, config(p)) as d:
            self.assertTrue(any("native XDP" in l and "trying generic XDP" in l for l in d.log), d.log)
            self.assertTrue(any("generic XDP, copy mode" in l for l in d.log), d.log)
            ntpdig_ok(p, SERVER_V4)
            self.assertGreaterEqual(self.counters(d)["xdp_sent"], 1)
        p.set_mtu(p.cl, p.vc, 1500)
        # Generic forced.
        with start(p, config(p, xdp='mode = "generic"\nzerocopy = "off"\n')) as d:
            self.assertTrue(any("generic XDP, copy mode" in l for l in d.log), d.log)
            self.assertFalse(any("zero-copy" in l for l in d.log), d.log)
            ntpdig_ok(p, SERVER_V6)
            self.assertGreaterEqual(self.counters(d)["xdp_sent"], 1)
        # Zero-copy demanded where there is none: that interface falls to the sockets.
        with start(p, config(p, xdp='zerocopy = "on"\n')) as d:
            self.assertTrue(any("served through sockets only" in l for l in d.log), d.log)
            self.assertTrue(any("sockets only: AF_XDP unavailable" in l for l in d.log), d.log)
            ntpdig_ok(p, SERVER_V4)
            self.assertEqual(self.counters(d)["xdp_sent"], 0)
            self.assertNotIn("prog/xdp", p.server_link())
        # The interface's MTU too large for the frames: sockets.
        p.set_mtu(p.sv, p.vs, 9000)
        with start(p, config(p)) as d:
            self.assertTrue(any("MTU 9000 is too large for XDP frames" in l for l in d.log), d.log)
            ntpdig_ok(p, SERVER_V4)
        p.set_mtu(p.sv, p.vs, 1500)
        # No such interface.
        with start(p, config(p).replace(f'["{p.vs}"]', '["nosuchif0"]')) as d:
            self.assertTrue(any("nosuchif0: no such interface" in l for l in d.log), d.log)
            ntpdig_ok(p, SERVER_V4)
        # A socket missing from the program's map: those requests pass to the sockets (the
        # same worker, by the same hash), all are answered, and stratad says so.
        env = dict(os.environ, STRATA_TEST_XDP_OMIT_WORKER="1")
        with start(p, config(p, extra='[ratelimit]\nenabled = false\n'), env=env) as d:
            replies = run_trace(p, make_trace(group_b=False)[:2000])
            self.assertEqual(len(replies), 2000)
            c = self.counters(d)
            self.assertGreater(c["xdp_prog_pass_no_socket"], 0, c)
            self.assertGreater(c["xdp_sent"], 0, c)
            self.assertEqual(c["responses_sent"], 2000, c)
            wait_for(lambda: any("found no AF_XDP socket" in l for l in d.log), 5, "the log line")

    def test_program_detached_after_a_crash(self):
        p = self.pair
        d = start(p, config(p))
        self.assertIn("prog/xdp", p.server_link())
        d.stop(sig=signal.SIGKILL)
        self.assert_detached()
        # And the next start attaches again.
        with start(p, config(p)):
            self.assertIn("prog/xdp", p.server_link())
            ntpdig_ok(p, SERVER_V4)
        self.assert_detached()


if __name__ == "__main__":
    unittest.main(verbosity=2)
