#!/usr/bin/env python3
"""The default dynamic-block rules and NTPsec's ntpd 1.2.2 as a client: its iburst (requests
2 s apart) and then polling every 8 s (minpoll 3) are never blocked, over more than a whole
window of every rule, while stratad's rules are on and loopback is not excluded. ntpd only
speaks from and to port 123, so the test re-runs itself in a network namespace of its own
(harness.main_in_netns), where stratad serves 10.9.0.1:123 (a local route whose preferred
source is 127.0.0.2) and ntpd listens on 127.0.0.2:123; ntpd runs without CAP_SYS_TIME and with
its clock discipline disabled."""
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
from test_ntpsec_nts import NTPD, start_ntpd, stop_ntpd  # noqa: E402


class BlocksNtpdTest(unittest.TestCase):
    def test_ntpd_iburst_and_8s_polling_are_never_blocked(self):
        h.require(h.NETNS == "1", "needs a network namespace of its own for port 123")
        subprocess.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"], check=True)
        subprocess.run(["ip", "route", "add", "local", "10.9.0.1", "dev", "lo", "src", "127.0.0.2"], check=True)
        config = '[time]\nsource = "local"\n[blocks]\nexclude = []\n'
        with h.Stratad(config, threads=2, listen=["10.9.0.1:123"], user="root", ratelimit=True, blocks=True) as d:
            work = tempfile.mkdtemp(prefix="ntpsec-blocks-")
            conf = os.path.join(work, "ntp.conf")
            with open(conf, "w") as f:
                f.write("server 10.9.0.1 minpoll 3 maxpoll 3 iburst\n"
                        "disable ntp\ndisable kernel\n"            # no clock discipline
                        "interface ignore wildcard\ninterface ignore 127.0.0.1\ninterface ignore ::1\n"
                        "interface listen 127.0.0.2\n"
                        f"driftfile {work}/drift\nlogconfig =allall\n")
            proc, log = start_ntpd(conf)
            try:
                # 8 iburst requests 2 s apart, then one every 8 s: 40 s is past the poller
                # rule's 30 s window and four of the flood rule's 10 s ones.
                end = time.time() + 40
                while time.time() < end:
                    self.assertIsNone(proc.poll(), "\n".join(log))
                    time.sleep(0.5)
            finally:
                stop_ntpd(proc)
                shutil.rmtree(work, ignore_errors=True)
            clients = {c["address"]: c for c in json.loads(
                h.run([h.STRATA, "clients", "--control", d.control, "--json"], check=True).stdout)}
            self.assertIn("127.0.0.2", clients, "ntpd did not poll: " + "\n".join(log))
            ntpd = clients["127.0.0.2"]
            self.assertGreaterEqual(ntpd["count"], 8, ntpd)  # the iburst and the 8 s polls
            self.assertGreaterEqual(ntpd["last"] - ntpd["first"], 30, ntpd)  # a whole window
            self.assertEqual((ntpd["kods"], ntpd["drops"]), (0, 0), ntpd)
            listed = json.loads(h.run([h.STRATA, "block", "list", "--control", d.control, "--json"],
                                      check=True).stdout)
            self.assertEqual(listed["blocks"], [])
            self.assertEqual(listed["warnings"], [])
            counters = d.counters()
            self.assertEqual(counters["blocked"], 0)
            self.assertEqual(counters["rate_limited"], 0)
            self.assertFalse(any("kiss" in l.lower() or "RATE" in l for l in log), "\n".join(log))


if __name__ == "__main__":
    h.main_in_netns(__file__, [(os.access(NTPD, os.X_OK), f"{NTPD} missing (./setup unpacks ntpsec)"),
                               (shutil.which("setpriv") is not None, "setpriv missing (util-linux)")],
                    ["127.0.0.1"])
