"""Shared helpers for the system tests: paths to the binaries and peers, a stratad process
fixture, raw NTP packets built independently of the C++ codec, and the skip policy (in CI,
STRATA_REQUIRE_ALL=1 turns a missing peer or capability into a failure)."""
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SOURCE = os.environ.get("STRATA_SOURCE",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("STRATA_BUILD", os.path.join(SOURCE, "build"))
STRATAD = os.path.join(BUILD, "stratad")
STRATA = os.path.join(BUILD, "strata")
# The unpacked peers: the sanitizer trees (build/asan, build/tsan) use the main tree's.
PEERS = os.environ.get("STRATA_PEERS", os.path.join(BUILD, "peers"))
CHRONYD = os.path.join(PEERS, "chrony", "usr", "sbin", "chronyd")
# NTPsec's ntpq, unpacked by ./setup; a Python script that needs Debian's python3-ntp.
NTPQ = os.path.join(PEERS, "ntpsec", "usr", "bin", "ntpq")
# systemd-timesyncd, unpacked by ./setup (it runs with Debian's libsystemd-shared).
TIMESYNCD = os.path.join(PEERS, "timesyncd", "lib", "systemd", "systemd-timesyncd")
SYSTEM_PYTHON = "/usr/bin/python3"
NTP_UNIX_OFFSET = 2208988800


def _tree_option(name):
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return re.search(rf"^{name}:BOOL=ON$", f.read(), re.M) is not None
    except OSError:
        return False


# A sanitizer tree: its allocator keeps freed memory in quarantine and adds shadow memory,
# so resident-memory bounds hold for the release build only.
SANITIZED = _tree_option("STRATA_SANITIZE") or _tree_option("STRATA_TSAN")


def require(condition, why):
    """Skips the test when `condition` is false, unless CI demands every test run."""
    if condition:
        return
    if os.environ.get("STRATA_REQUIRE_ALL") == "1":
        raise AssertionError("required test cannot run: " + why)
    raise unittest.SkipTest(why)


def is_root():
    return os.geteuid() == 0


def free_port(family=socket.AF_INET):
    """A UDP port that is free on both loopback families right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s6:
                    s6.bind(("::1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


# --- raw NTP packets (struct-based, independent of the C++ codec) ---

def ntp_now():
    t = time.time() + NTP_UNIX_OFFSET
    return (int(t) << 32) | int((t % 1) * 2**32)


def request(version=4, mode=3, xmt=None, poll=6, trailer=b""):
    xmt = ntp_now() if xmt is None else xmt
    return struct.pack("!BBbbII4sQQQQ", (version << 3) | mode, 0, poll, -20, 0, 0, b"\0" * 4,
                       0, 0, 0, xmt) + trailer


def parse(data):
    """Decodes a 48-octet header into a dict."""
    (lvm, stratum, poll, precision, rdelay, rdisp, refid, ref, org, rec,
     xmt) = struct.unpack("!BBbbII4sQQQQ", data[:48])
    return {"leap": lvm >> 6, "version": (lvm >> 3) & 7, "mode": lvm & 7, "stratum": stratum,
            "poll": poll, "precision": precision, "root_delay": rdelay / 65536.0,
            "root_dispersion": rdisp / 65536.0, "refid": refid, "reference": ref, "origin": org,
            "receive": rec, "transmit": xmt, "length": len(data)}


def exchange(address, data, timeout=1.0, family=None):
    """Sends one datagram, returns (reply bytes or None, local socket address)."""
    family = family or (socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, address)
        try:
            reply, _ = s.recvfrom(65536)
            return reply
        except socket.timeout:
            return None


def run(args, timeout=60, check=False, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check, **kw)


class Stratad:
    """A stratad process on loopback with its own config file and control socket."""

    def __init__(self, config="", listen=None, threads=2, extra=(), user=None, wait=True,
                 ratelimit=False, wrapper=(), env=None, blocks=False):
        self.dir = tempfile.mkdtemp(prefix="stratad-test-")
        # stratad re-reads its config on reload after dropping root: let it.
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.listen = listen if listen is not None else [f"127.0.0.1:{self.port}",
                                                          f"[::1]:{self.port}"]
        self.control = os.path.join(self.dir, "control.sock")
        self.config_path = os.path.join(self.dir, "stratad.toml")
        with open(self.config_path, "w") as f:
            text = config if config else '[time]\nsource = "local"\n'
            # Tests of serving send many requests from 127.0.0.1 in quick succession: the
            # rate limiter (on by default in stratad) is off unless a test asks for it.
            if not ratelimit and "[ratelimit]" not in text:
                text += "\n[ratelimit]\nenabled = false\n"
            # The same for the dynamic-block rules (loopback is excluded from them by default,
            # but tests in network namespaces load from other addresses): test_blocks asks.
            if not blocks and "[blocks]" not in text and "[[blocks.rule]]" not in text:
                text += "\n[blocks]\nenabled = false\n"
            # Many stratads run at once in the tests: each metrics endpoint on a port of its own.
            if "[metrics]" not in text:
                text += '\n[metrics]\nlisten = "127.0.0.1:0"\n'

            f.write(text)
        args = [STRATAD, "--config", self.config_path, "--threads", str(threads),
                "--control", self.control]
        for l in self.listen:
            args += ["--listen", l]
        if user is None and is_root():
            user = "nobody"
        if user:
            args += ["--user", user]
        args += list(extra)
        self.log = []
        # `wrapper`: a command that execs stratad in place (the same pid), e.g. under seccomp.
        self.proc = subprocess.Popen(list(wrapper) + args, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            self.wait_serving()

    def _read(self):
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))

    def wait_serving(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if any("serving on" in l for l in self.log):
                return
            if self.proc.poll() is not None:
                raise AssertionError("stratad exited: " + "\n".join(self.log))
            time.sleep(0.02)
        raise AssertionError("stratad did not start: " + "\n".join(self.log))

    @property
    def v4(self):
        return ("127.0.0.1", self.port)

    @property
    def v6(self):
        return ("::1", self.port)

    @property
    def metrics_url(self):
        """The metrics endpoint from stratad's start-up line."""
        for line in self.log:
            m = re.search(r"metrics (http://\S+/metrics)", line)
            if m:
                return m.group(1)
        return None

    def stats(self):
        out = run([STRATA, "stats", "--control", self.control, "--json"], check=True)
        return json.loads(out.stdout)

    def counters(self):
        return self.stats()["counters"]

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("stratad did not stop on signal")
        self._reader.join(timeout=2)
        self.proc.stderr.close()
        if self.proc.returncode not in (0, -sig):
            # Died before it was stopped (a crash, SIGSYS from the filter): show why.
            sys.stderr.write(f"stratad exited with {self.proc.returncode}:\n" + "\n".join(self.log) + "\n")
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def expert_infos(field):
    """tshark's _ws.expert field as a list, without the IP layer's "possible traceroute", which
    it gives any UDP datagram with a port in 33434-33534 (an ephemeral port lands there now and
    then; it says nothing about the packet). The text holds a comma itself, so it goes first."""
    field = re.sub(r"Expert Info \([^)]*\): Possible traceroute: hop #\d+, attempt #\d+", "", field)
    return [e for e in field.split(",") if e.strip()]


def start_capture(capture_filter, pcap, seconds=20, count=None):
    """tshark capturing on lo into `pcap` (it stops after `seconds`, or `count` packets), once
    it says it is capturing. The caller waits for it (and closes its stderr)."""
    args = ["tshark", "-i", "lo", "-f", capture_filter, "-a", f"duration:{seconds}", "-w", pcap]
    if count is not None:
        args[5:5] = ["-c", str(count)]
    cap = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = ""
    end = time.time() + 15
    while "Capturing on" not in line and time.time() < end:
        line = cap.stderr.readline()
    if "Capturing on" not in line:
        cap.kill()
        cap.stderr.close()
        raise AssertionError("tshark did not start capturing: " + line)
    time.sleep(0.3)
    return cap


def within_one_window(seconds, window=60):
    """Waits, if need be, until `seconds` are left in the current UTC-aligned window (a minute
    by default), so that a load and the reads of the window it lands in (strata top's 1m) do not
    straddle a boundary: a test that loaded at :58 read half its requests in the next minute."""
    left = window - time.time() % window
    if left < seconds:
        time.sleep(left + 0.05)


def rss_kib(pid):
    """A process's resident memory (VmRSS), KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def state_dir(prefix="stratad-state-"):
    """A directory stratad may write in after dropping root (its `[clients] state_dir`, mode
    0777), named "state" inside a fresh directory (0755, readable by that user) where the test
    may keep other files: os.path.dirname() of the result."""
    top = tempfile.mkdtemp(prefix=prefix)
    os.chmod(top, 0o755)
    state = os.path.join(top, "state")
    os.mkdir(state)
    os.chmod(state, 0o777)
    return state


def mode6(address, opcode, data=b"", sequence=1, timeout=1.0, collect=0.0, sock=None):
    """One mode-6 request (raw, independent of the C++ codec); returns the replies' data as
    text, several for a fragmented answer, [] when none came. A nonce is bound to the address
    and port it was given to: pass the same `sock` for the request that uses it."""
    data += b"\0" * (-len(data) % 4)
    packet = struct.pack("!BBHHHHH", (2 << 3) | 6, opcode, sequence, 0, 0, 0, len(data)) + data
    out = []
    s = sock or socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET,
                              socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(packet, address)
        end = time.time() + max(timeout, collect)
        while time.time() < end:
            try:
                reply = s.recv(65536)
            except socket.timeout:
                break
            if struct.unpack("!H", reply[2:4])[0] != sequence:
                continue  # a late answer to an earlier try
            count = struct.unpack("!H", reply[10:12])[0]
            out.append(reply[12:12 + count].decode(errors="replace"))
            if not reply[1] & 0x20:  # no More bit: the last fragment
                break
    finally:
        if sock is None:
            s.close()
    return out


def env_without_leak_check():
    """The environment with LeakSanitizer's check at exit turned off (in the ASan tree): it stops
    the process's threads with ptrace, which a system-call filter rightly refuses."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return env


def random_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def seeded_rng(seed=2026):
    return random.Random(seed)


# Tests of peers that only speak to port 123 (ntpdig, ntpq) re-run themselves inside a new
# network namespace (unshare -rn: its own loopback, nothing else reachable) where stratad may
# bind port 123. Where namespaces are not allowed (some containers) but we are root and port
# 123 is free on the given loopback addresses, they run on the host's loopback instead.
NETNS = os.environ.get("STRATA_IN_NETNS")  # "1": in our namespace; "host": host loopback
IN_NETNS = NETNS in ("1", "host")


def port_123_free(addresses):
    try:
        for addr in addresses:
            family = socket.AF_INET6 if ":" in addr else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.bind((addr, 123))
        return True
    except OSError:
        return False


def main_in_netns(script, requirements, host_addresses, mount=False):
    """Runs unittest.main() in a namespace of our own (or on the host, see above). The
    requirements are (condition, why) pairs checked first: a missing one skips. `mount`: a
    mount namespace too (unshare -rnm), for tests that mount over system directories; they
    never fall back to the host."""
    import shutil
    import unittest
    if IN_NETNS:
        if NETNS == "1":
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        unittest.main(verbosity=2)
        return
    unshare = shutil.which("unshare")
    flags = "-rnm" if mount else "-rn"
    netns = unshare and subprocess.run([unshare, flags, "true"], capture_output=True).returncode == 0
    try:
        for condition, why in requirements:
            require(condition, why)
        if mount:
            require(netns, "no user, network and mount namespaces (unshare -rnm)")
        require(netns or (is_root() and port_123_free(host_addresses)),
                "no network namespace (unshare -rn) and port 123 on loopback not usable")
    except unittest.SkipTest as e:
        print("skipped:", e)
        return
    me = [sys.executable, os.path.abspath(script)]
    if netns:
        sys.exit(subprocess.run([unshare, flags] + me, env=dict(os.environ, STRATA_IN_NETNS="1")).returncode)
    print("no network namespace allowed: testing on the host's loopback port 123")
    sys.exit(subprocess.run(me, env=dict(os.environ, STRATA_IN_NETNS="host")).returncode)
