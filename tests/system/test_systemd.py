#!/usr/bin/env python3
"""Running as a systemd service: stratad speaks sd_notify (READY, RELOADING, STOPPING) to
$NOTIFY_SOCKET as Type=notify requires, the unit in examples/ passes `systemd-analyze
verify`, stratad really runs under the unit's system-call filter (a seccomp filter built from
the unit's SystemCallFilter= lines, groups expanded by `systemd-analyze syscall-filter`,
unlisted calls killing the process as systemd's do) through every feature that makes a system
call, and the example pool-server configuration passes --check-config. This machine's PID 1
is not systemd, so `systemd-run` cannot apply the unit itself: the filter is applied here."""
import os
import shutil
import json
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EXAMPLES = os.path.join(os.environ.get("STRATA_SOURCE", os.path.join(os.path.dirname(__file__), "..", "..")), "examples")

SECCOMP_EXEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_exec.py")


def system_python_has_seccomp():
    return subprocess.run([h.SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True).returncode == 0


def unit_syscall_allowlist(unit_text, analyze):
    """The system calls the unit's SystemCallFilter= lines allow, groups expanded the way
    `systemd-analyze syscall-filter` lists them (allow-list lines only: the unit has no ~)."""
    names, groups = set(), {}

    def expand(item):
        if not item.startswith("@"):
            names.add(item)
            return
        if item in groups:
            return
        out = subprocess.run([analyze, "syscall-filter", item], capture_output=True, text=True,
                             check=True).stdout
        groups[item] = True
        for line in out.splitlines()[1:]:  # the first line is the group's own name
            line = line.strip()
            if line and not line.startswith("#"):
                expand(line)

    lines = [l.split("=", 1)[1].split() for l in unit_text.splitlines()
             if l.startswith("SystemCallFilter=")]
    assert lines, "the unit has no SystemCallFilter="
    for items in lines:
        assert not items[0].startswith("~"), "deny-list filters are not modelled here"
        for item in items:
            expand(item)
    return names


def mode6_read(address, names=""):
    """One READVAR (ntpq's rv) from loopback; returns the response data as text or None."""
    replies = h.mode6(address, 2, names.encode(), timeout=2)
    return replies[0] if replies else None


class SystemdTest(unittest.TestCase):
    def test_sd_notify_ready_reloading_stopping(self):
        work = tempfile.mkdtemp(prefix="notify-test-")
        os.chmod(work, 0o755)
        path = os.path.join(work, "notify.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(path)
        os.chmod(path, 0o777)  # stratad notifies after dropping root
        listener.settimeout(10)
        os.environ["NOTIFY_SOCKET"] = path
        try:
            d = h.Stratad()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        with d:
            ready = listener.recv(4096).decode()
            self.assertIn("READY=1", ready)
            self.assertIn("STATUS=serving on", ready)
            os.kill(d.proc.pid, h.signal.SIGHUP)
            self.assertEqual(listener.recv(4096).decode(), "RELOADING=1")
            self.assertEqual(listener.recv(4096).decode(), "READY=1")
            d.stop()
            self.assertEqual(listener.recv(4096).decode(), "STOPPING=1")
        listener.close()

    def test_unit_verifies(self):
        analyze = shutil.which("systemd-analyze")
        h.require(analyze is not None, "systemd-analyze missing")
        work = tempfile.mkdtemp(prefix="unit-test-")
        with open(os.path.join(EXAMPLES, "stratad.service")) as f:
            unit = f.read()
        # The unit names the installed binary; verify it against the one just built.
        unit = unit.replace("/usr/local/sbin/stratad", os.path.abspath(os.path.join(h.BUILD, "stratad")))
        path = os.path.join(work, "stratad.service")
        with open(path, "w") as f:
            f.write(unit)
        r = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60)
        # A misspelt key is only a warning ("Unknown key ..., ignoring"): any line about the
        # unit file is a failure.
        problems = [l for l in (r.stdout + r.stderr).splitlines() if path in l]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(problems, [], r.stdout + r.stderr)

    def test_runs_under_the_units_syscall_filter(self):
        analyze = shutil.which("systemd-analyze")
        h.require(analyze is not None, "systemd-analyze missing")
        h.require(system_python_has_seccomp(), "python3-seccomp missing")
        with open(os.path.join(EXAMPLES, "stratad.service")) as f:
            allowed = unit_syscall_allowlist(f.read(), analyze)
        self.assertIn("read", allowed)
        listing = os.path.join(tempfile.mkdtemp(prefix="unit-filter-"), "allowed")
        with open(listing, "w") as f:
            f.write("\n".join(sorted(allowed)) + "\n")
        sandbox = [h.SYSTEM_PYTHON, SECCOMP_EXEC, listing]
        # The time a mirroring stratad polls: an unsandboxed one serving the local clock.
        upstream = h.Stratad()
        try:
            for source in ("kernel", "mirror"):
                with self.subTest(source=source):
                    self.exercise(source, upstream, sandbox)
            if shutil.which("openssl"):
                with self.subTest(source="kernel, NTS"):
                    self.exercise("kernel", upstream, sandbox, nts=True)
        finally:
            upstream.stop()

    def exercise(self, source, upstream, sandbox, nts=False):
        state = h.state_dir(prefix="unit-state-")
        config = f'[time]\nsource = "{source}"\n'
        if source == "mirror":
            config += f'mirror = "127.0.0.1:{upstream.port}"\nmirror_interval = 1\n'
        config += (f'[clients]\nstate_dir = "{state}"\n[ratelimit]\nenabled = true\n'
                   '[access]\nrules = ["127.0.0.0/8 query"]\n')
        if nts:  # NTS-KE threads, the secrets file made at start, cookies on the workers
            from test_nts import Pki, tcp_port
            pki = Pki()
            self.addCleanup(pki.cleanup)
            pki.leaf("server")
            ke_port, ntp_port = tcp_port(), h.free_port()
            config += (f'[nts]\ncertificate = "{pki.dir}/server.crt"\nkey = "{pki.dir}/server.key"\n'
                       f'listen = ["127.0.0.1:{ke_port}"]\nntp_port = {ntp_port}\n')
        # The unit's filter has no ptrace for LeakSanitizer's check at exit (ASan tree only).
        d = h.Stratad(config=config, wrapper=sandbox, ratelimit=True, env=h.env_without_leak_check(),
                      listen=[f"127.0.0.1:{ntp_port}", f"[::1]:{ntp_port}"] if nts else None)
        if nts:
            d.port = ntp_port  # the port named in [nts] ntp_port, chosen before the start
        try:
            # Time requests, rate limiting and KoDs, then every control command.
            h.run([h.STRATA, "load", "--server", f"127.0.0.1:{d.port}", "--clients", "20",
                   "--rate", "400", "--duration", "1"], check=True)
            self.assertIsNotNone(h.exchange(d.v6, h.request()))
            if nts:  # NTS-KE, then an authenticated exchange
                r = h.run([h.STRATA, "query", "--nts", f"localhost:{ke_port}", "--ca", pki.ca, "-4"], timeout=30)
                # (exit 1 when this machine's kernel clock is unsynchronised: LI 3 is not valid time)
                self.assertIn("nts ok", r.stdout, r.stdout + r.stderr + "\n".join(d.log))
            for args in (["stats"], ["clients"], ["clients", "--count"], ["clients", "--kod-effect"],
                         ["top"], ["top", "--by", "bytes", "--prefix"]):
                r = h.run([h.STRATA] + args + ["--control", d.control])
                self.assertEqual(r.returncode, 0, (args, r.stdout, r.stderr, d.log))
            # Mode 6: the default variables (tai reads adjtimex), sysstats, sysinfo.
            rv = mode6_read(d.v4)
            self.assertIsNotNone(rv, d.log)
            self.assertIn("tai=", rv)
            for names in ("ss_uptime,ss_received", "mru_depth,mru_mem"):
                self.assertIsNotNone(mode6_read(d.v4, names), d.log)
            # Prometheus, a reload through the control socket and through SIGHUP.
            with urllib.request.urlopen(d.metrics_url, timeout=5) as r:
                self.assertTrue(b"\nstrata_received_total " in r.read(), "no counters at /metrics")
            r = h.run([h.STRATA, "reload", "--control", d.control])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            d.proc.send_signal(h.signal.SIGHUP)
            time.sleep(0.5)
            if source == "mirror":  # polls of the upstream went through
                time.sleep(1.5)
                self.assertEqual(json.loads(h.run([h.STRATA, "stats", "--control", d.control,
                                                   "--json"], check=True).stdout)["time"]["stratum"],
                                 10, d.log)  # the mirrored daemon's stratum
            self.assertIsNone(d.proc.poll(), d.log)
        finally:
            code = d.stop()
        # A system call outside the filter kills the process with SIGSYS (-31).
        self.assertEqual(code, 0, "\n".join(d.log))
        # The state save at stop went through.
        self.assertTrue(os.path.exists(os.path.join(state, "unique-sketches.json")), d.log)

    def test_example_config_checks(self):
        # Its state directory (systemd's StateDirectory= makes it) in a temporary place.
        work = tempfile.mkdtemp(prefix="example-config-")
        os.chmod(work, 0o777)
        with open(os.path.join(EXAMPLES, "pool-server.toml")) as f:
            text = f.read()
        self.assertIn('state_dir = "/var/lib/stratad"', text)
        path = os.path.join(work, "pool-server.toml")
        with open(path, "w") as f:
            f.write(text.replace("/var/lib/stratad", work))
        os.chmod(path, 0o644)
        r = h.run([h.STRATAD, "--config", path, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
