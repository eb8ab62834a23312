#!/usr/bin/env python3
"""SNMP: strata-snmp registers with Debian's real snmpd (run unprivileged with a private
configuration on a high port and an AgentX socket in a temporary directory) and serves the
NTPv4-MIB (RFC 5907) and STRATA-MIB objects; snmpwalk/snmpget read values equal to `strata
stats` (64-bit counters exact, RFC 5907's 32-bit ones modulo 2^32), the subagent reconnects
after snmpd restarts, says notRunning while stratad is down, and the shipped MIB passes smilint
and snmptranslate. snmpd is unpacked by ./setup (its package would start a system daemon)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SNMPD = os.path.join(h.PEERS, "snmpd", "usr", "sbin", "snmpd")
STRATA_SNMP = os.path.join(h.BUILD, "strata-snmp")
MIB = os.path.join(h.SOURCE, "mibs", "STRATA-MIB.txt")
BASE_MIBS = os.path.join(h.SOURCE, "tests", "data", "mibs")  # minimal SNMPv2-SMI/TC/CONF

NTP = ".1.3.6.1.2.1.197.1"
STRATA = ".1.3.6.1.4.1.32473.1"
ENV = dict(os.environ, MIBS="")  # numeric OIDs: Debian has no IETF MIB files to load


def parse_walk(text):
    """{oid: (type, value)} from `snmpwalk -On` lines ('.1.3... = Counter64: 12')."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\.[0-9.]+) = (?:([A-Za-z0-9-]+): )?(.*)$", line)
        if m:
            out[m.group(1)] = (m.group(2) or "", m.group(3))
    return out


class Snmpd:
    """Debian's snmpd with a private config: UDP 127.0.0.1:port, AgentX master on a Unix
    socket in `dir`; as nobody when the test runs as root."""

    def __init__(self, dir, port):
        self.dir, self.port = dir, port
        self.socket = os.path.join(dir, "agentx")
        self.conf = os.path.join(dir, "snmpd.conf")
        with open(self.conf, "w") as f:
            f.write(f"agentAddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\n"
                    f"master agentx\nagentXSocket {self.socket}\nagentXPerms 0666 0777\n")
        self.proc = None

    def start(self):
        os.makedirs(os.path.join(self.dir, "persist"), exist_ok=True)
        if h.is_root():
            shutil.chown(self.dir, "nobody")
            shutil.chown(os.path.join(self.dir, "persist"), "nobody")
        drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if h.is_root() else []
        env = dict(ENV, SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"))
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(os.path.join(self.dir, "snmpd.log"), "a")
        self.proc = subprocess.Popen(drop + [SNMPD, "-f", "-Lo", "-C", "-c", self.conf, "-I", "-smux"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        end = time.time() + 10
        while time.time() < end and not os.path.exists(self.socket):
            time.sleep(0.05)
        assert os.path.exists(self.socket), open(os.path.join(self.dir, "snmpd.log")).read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None


class Snmp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require(os.path.exists(SNMPD), "snmpd not unpacked into build/peers (run ./setup)")
        for tool in ("snmpget", "snmpwalk", "smilint", "snmptranslate", "setpriv"):
            h.require(shutil.which(tool) is not None, f"{tool} missing (./setup installs it)")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="strata-snmp-")
        os.chmod(self.dir, 0o777)
        self.snmpd = Snmpd(self.dir, h.free_port())
        self.snmpd.start()
        self.agent = None
        self.agent_err = None

    def tearDown(self):
        if self.agent and self.agent.poll() is None:
            self.agent.terminate()
            self.agent.wait(timeout=10)
        if self.agent_err:
            self.agent_err.close()
        self.snmpd.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_agent(self, control, *extra):
        self.agent_log = os.path.join(self.dir, "strata-snmp.log")
        self.agent_err = open(self.agent_log, "w")
        self.agent = subprocess.Popen([STRATA_SNMP, "--agentx", self.snmpd.socket, "--control", control,
                                       "--ping", "1", *extra], stdout=subprocess.DEVNULL, stderr=self.agent_err)

    def snmp(self, tool, *oids, timeout=10):
        r = subprocess.run([tool, "-v2c", "-c", "public", "-On", "-t", "2", "-r", "1",
                            f"127.0.0.1:{self.snmpd.port}", *oids], capture_output=True, text=True,
                           env=ENV, timeout=timeout + 20)
        return r

    def wait_registered(self, oid=f"{STRATA}.1.1.0", timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            r = self.snmp("snmpget", oid)
            if r.returncode == 0 and "No Such" not in r.stdout:
                return parse_walk(r.stdout)
            time.sleep(0.3)
        raise AssertionError(f"{oid} never served: {r.stdout} {r.stderr}\n" + open(self.agent_log).read())

    def test_values_equal_strata_stats(self):
        with h.Stratad() as d:
            self.start_agent(d.control, "--refresh", "0.2")
            for i in range(5):
                h.exchange(d.v4, h.request())
            h.exchange(d.v6, h.request(version=3))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"\x3b" + bytes(47), d.v4)  # version 7: a bad version
            time.sleep(0.3)
            self.wait_registered()
            time.sleep(0.3)  # past the subagent's refresh: the walk reads the counters as they are now
            walk = self.snmp("snmpwalk", ".1.3.6.1")
            self.assertEqual(walk.returncode, 0, walk.stderr)
            v = parse_walk(walk.stdout)
            stats = d.stats()
        c = stats["counters"]
        self.assertEqual(c["drop_bad_version"], 1)
        # Every counter, 64 bits wide, at the strataCounters.N the shipped MIB file names it.
        with open(MIB) as f:
            numbers = dict(re.findall(r"\n(strata\w+) OBJECT-TYPE\n    SYNTAX      Counter64\n.*?::= \{ strataCounters (\d+) \}",
                                      f.read(), re.S))
        self.assertEqual(len(numbers), len(c))
        for name, value in c.items():
            camel = "strata" + "".join(w.capitalize() for w in name.split("_"))
            kind, got = v[f"{STRATA}.1.{numbers[camel]}.0"]
            self.assertEqual(kind, "Counter64", name)
            if name == "receive_calls":  # the workers' wake-ups go on without traffic
                self.assertLessEqual(int(got), value, name)
            else:
                self.assertEqual(got, str(value), name)
        # RFC 5907's entity status: 32-bit counters, modulo 2^32.
        wrap = 1 << 32
        self.assertEqual(v[f"{NTP}.2.12.0"], ("Counter32", str(c["received"] % wrap)))
        self.assertEqual(v[f"{NTP}.2.13.0"], ("Counter32", str((c["responses_sent"] + c["control_responses"]) % wrap)))
        self.assertEqual(v[f"{NTP}.2.14.0"], ("Counter32", "1"))
        self.assertEqual(v[f"{NTP}.2.15.0"], ("Counter32", str(c["bad_format"] + c["auth_failed"])))
        self.assertEqual(v[f"{NTP}.2.17.1.2.4"], ("Counter32", str(c["responses_sent"])))
        self.assertEqual(v[f"{NTP}.2.17.1.3.3"], ("Counter32", str(c["current_version"] + c["older_version"])))
        self.assertEqual(c["received"], 7)
        # ntpEntInfo, and the status consistent with the (empty) association table.
        self.assertEqual(v[f"{NTP}.1.1.0"], ("STRING", '"strata"'))
        self.assertEqual(v[f"{NTP}.1.2.0"][1].strip('"'), h.run([STRATA_SNMP, "--version"]).stdout.split()[1])
        self.assertEqual(v[f"{NTP}.1.5.0"][0], "Gauge32")  # Unsigned32 is sent as Gauge32's tag
        self.assertEqual(v[f"{NTP}.1.6.0"], ("INTEGER", str(stats["time"]["precision"])))
        self.assertEqual(v[f"{NTP}.2.1.0"], ("INTEGER", "4"))  # syncToLocal ([time] source = "local")
        self.assertEqual(v[f"{NTP}.2.2.0"][1], str(stats["time"]["stratum"]))
        self.assertEqual(v[f"{NTP}.2.3.0"][1], "0")  # ActiveRefSourceId: stratad has no associations
        self.assertFalse([o for o in v if o.startswith(f"{NTP}.3.")], "an association table appeared")
        self.assertIn("local", v[f"{NTP}.2.4.0"][1])
        self.assertEqual(v[f"{NTP}.2.9.0"][0], "Hex-STRING")  # NtpDateTime, 16 octets
        self.assertEqual(len(v[f"{NTP}.2.9.0"][1].split()), 16)
        self.assertEqual(v[f"{STRATA}.3.1.0"], ("INTEGER", "1"))  # synchronised
        self.assertEqual(v[f"{STRATA}.2.4.0"][1], str(stats["clients"]["records"]))
        # Unique clients this minute (one address, IPv4 and IPv6): 2 unless the minute turned.
        self.assertIn(v[f"{STRATA}.2.1.0"][1], ("0", "1", "2"))
        self.assertEqual(v[f"{STRATA}.2.5.0"][0], "Gauge32")  # top-talker share, ppm
        self.assertLessEqual(int(v[f"{STRATA}.2.5.0"][1]), 1000000)
        # GETNEXT past the last object leaves our subtree; a set is refused (read-only).
        r = subprocess.run(["snmpset", "-v2c", "-c", "public", "-On", f"127.0.0.1:{self.snmpd.port}",
                            f"{NTP}.1.1.0", "s", "x"], capture_output=True, text=True, env=ENV, timeout=30)
        self.assertNotEqual(r.returncode, 0)

    def test_reconnects_after_snmpd_restart_and_says_not_running(self):
        with h.Stratad() as d:
            self.start_agent(d.control, "--refresh", "0.2")
            self.wait_registered()
            self.snmpd.stop()
            r = self.snmp("snmpget", f"{STRATA}.1.1.0", timeout=5)
            self.assertNotEqual(r.returncode, 0)
            self.snmpd.start()
            v = self.wait_registered(timeout=20)  # the subagent's next ping finds the new master
            self.assertEqual(v[f"{STRATA}.1.1.0"][0], "Counter64")
            self.assertIsNone(self.agent.poll())
        # stratad gone: the subagent stays, says notRunning and serves no counters.
        time.sleep(0.5)
        r = self.snmp("snmpget", f"{NTP}.2.1.0", f"{NTP}.2.12.0", f"{STRATA}.1.1.0", f"{NTP}.1.1.0")
        v = parse_walk(r.stdout)
        self.assertEqual(v[f"{NTP}.2.1.0"], ("INTEGER", "1"))  # notRunning
        self.assertIn("No Such Instance", v[f"{NTP}.2.12.0"][1] + v[f"{NTP}.2.12.0"][0])
        self.assertIn("No Such Instance", v[f"{STRATA}.1.1.0"][1] + v[f"{STRATA}.1.1.0"][0])
        self.assertEqual(v[f"{NTP}.1.1.0"], ("STRING", '"strata"'))
        log = open(self.agent_log).read()
        self.assertIn("serving ntpEntStatusCurrentMode notRunning", log)

    def test_configuration(self):
        # [snmp] agentx off by default: strata-snmp refuses with the reason; stratad checks [snmp].
        path = os.path.join(self.dir, "stratad.toml")
        with open(path, "w") as f:
            f.write('[server]\ncontrol = "/tmp/none.sock"\n')
        r = h.run([STRATA_SNMP, "--config", path])
        self.assertEqual(r.returncode, 1)
        self.assertIn("SNMP is off: set [snmp] agentx", r.stderr)
        with open(path, "w") as f:
            f.write(f'[snmp]\nagentx = "{self.snmpd.socket}"\nrefresh = 0.2\nping = 1\n[time]\nsource = "local"\n')
        r = h.run([h.STRATAD, "--check-config", path, "--control", ""])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(path, "w") as f:
            f.write('[snmp]\nagentx = "master"\n')
        r = h.run([h.STRATAD, "--check-config", path])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f'{path}:2: agentx = "master": expected the master agent\'s socket', r.stderr)
        # The config's [snmp] and [server] control are what strata-snmp uses.
        with h.Stratad() as d:
            with open(path, "w") as f:
                f.write(f'[server]\ncontrol = "{d.control}"\n[snmp]\nagentx = "{self.snmpd.socket}"\n'
                        f'refresh = 0.2\nping = 1\n')
            self.agent_log = os.path.join(self.dir, "strata-snmp.log")
            self.agent_err = open(self.agent_log, "w")
            self.agent = subprocess.Popen([STRATA_SNMP, "--config", path], stdout=subprocess.DEVNULL,
                                          stderr=self.agent_err)
            v = self.wait_registered(f"{NTP}.2.2.0")
            self.assertEqual(v[f"{NTP}.2.2.0"][1], str(d.stats()["time"]["stratum"]))

    def test_mib_file(self):
        # Generated from the counter list (docs test: mibs/STRATA-MIB.txt is current); lint-clean.
        env = dict(ENV, SMIPATH=BASE_MIBS)
        r = subprocess.run(["smilint", "-l", "6", "-s", MIB], capture_output=True, text=True, env=env)
        self.assertEqual(r.stdout + r.stderr, "", "smilint reports")
        r = subprocess.run(["snmptranslate", "-M", f"{BASE_MIBS}:{os.path.dirname(MIB)}", "-m", "STRATA-MIB",
                            "-Tp"], capture_output=True, text=True, env=ENV)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertIn("strataReceived(1)", r.stdout)
        r = subprocess.run(["snmptranslate", "-M", f"{BASE_MIBS}:{os.path.dirname(MIB)}", "-m", "STRATA-MIB",
                            "-On", "STRATA-MIB::strataUniqueClientsDay"], capture_output=True, text=True, env=ENV)
        self.assertEqual(r.stdout.strip(), f"{STRATA}.2.3")


if __name__ == "__main__":
    unittest.main(verbosity=2)
