#!/usr/bin/env python3
"""systemd-timesyncd, the SNTP client of most Linux systems, as a client of stratad: what it
sends is captured (dumpcap) and `strata analyze` must put it in the SNTP class (leap 0,
stratum 0, precision 0, every other field zero but a random transmit timestamp).

timesyncd only speaks to port 123 and reads its servers from /etc/systemd/timesyncd.conf, so
the test re-runs itself in user, network and mount namespaces of its own (unshare -rnm):
a tmpfs over /run, /etc/systemd and /var/lib/systemd holds its config and state, nothing
outside is reachable, and it cannot set this machine's clock (no CAP_SYS_TIME
outside the namespace; it runs as a mapped non-root user, as it would drop to one)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CONF = """[Time]
NTP=127.0.0.1
FallbackNTP=127.0.0.1
PollIntervalMinSec=16
"""


class TimesyncdTest(unittest.TestCase):
    def test_timesyncd_requests_are_sntp(self):
        # Our own, empty /run (no system bus, no state of the host's timesyncd), config and
        # state directories: only in this mount namespace.
        for d in ("/run", "/etc/systemd", "/var/lib/systemd"):
            h.run(["mount", "-t", "tmpfs", "tmpfs", d], check=True)
        with open("/etc/systemd/timesyncd.conf", "w") as f:
            f.write(CONF)
        work = tempfile.mkdtemp(prefix="timesyncd-")
        capture = os.path.join(work, "timesyncd.pcapng")
        dump = subprocess.Popen([shutil.which("dumpcap"), "-q", "-i", "lo", "-f", "udp port 123", "-w", capture],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # dumpcap says which interface it captures on once it does.
            line, deadline = "", time.time() + 10
            while time.time() < deadline and "Capturing on" not in line:
                line = dump.stderr.readline()
            with h.Stratad(listen=["127.0.0.1:123"], user="root") as d:
                env = dict(os.environ, SYSTEMD_LOG_TARGET="console", SYSTEMD_LOG_LEVEL="debug")
                tsd = subprocess.Popen(["unshare", "--map-user=1000", "--map-group=1000", h.TIMESYNCD],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
                try:
                    deadline = time.time() + 15
                    while time.time() < deadline and d.counters().get("responses_sent", 0) < 1:
                        time.sleep(0.2)
                    self.assertGreaterEqual(d.counters().get("responses_sent", 0), 1)
                finally:
                    tsd.terminate()
                    log = tsd.communicate(timeout=10)[0]
                self.assertIn("Sent NTP request to 127.0.0.1:123", log)
                time.sleep(0.3)
        finally:
            dump.terminate()
            dump.wait(timeout=10)
            dump.stderr.close()
        r = h.run([h.STRATA, "analyze", "--json", capture], check=True)
        out = json.loads(r.stdout)
        self.assertEqual(out["clients"]["unique"], 1)
        self.assertGreaterEqual(out["requests"]["total"], 1)
        software = {row["class"]: row for row in out["software"]}
        self.assertEqual(software["SNTP"]["clients"], 1, out["software"])
        self.assertEqual(software["SNTP"]["requests"], out["requests"]["total"])


if __name__ == "__main__":
    h.main_in_netns(__file__, [
        (os.access(h.TIMESYNCD, os.X_OK), "systemd-timesyncd missing (./setup unpacks it)"),
        (shutil.which("dumpcap") is not None, "dumpcap missing (./setup installs tshark)"),
    ], ["127.0.0.1"], mount=True)
