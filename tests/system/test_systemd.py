#!/usr/bin/env python3
"""Running as a systemd service: stratad speaks sd_notify (READY, RELOADING, STOPPING) to
$NOTIFY_SOCKET as Type=notify requires, the unit in examples/ passes `systemd-analyze
verify`, and the example pool-server configuration passes --check-config."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EXAMPLES = os.path.join(os.environ.get("STRATA_SOURCE", os.path.join(os.path.dirname(__file__), "..", "..")), "examples")


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

    def test_example_config_checks(self):
        r = h.run([h.STRATAD, "--config", os.path.join(EXAMPLES, "pool-server.toml"), "--check-config"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
