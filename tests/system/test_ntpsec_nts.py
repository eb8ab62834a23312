#!/usr/bin/env python3
"""NTPsec's ntpd 1.2.2 as an NTS client of stratad: it runs NTS-KE (TLS 1.3 with a CA made
here), takes the cookies and the NTP port from the response, and selects stratad as its
system peer over authenticated NTP. ntpd binds port 123 on loopback, so the test re-runs
itself in a network namespace of its own (harness.main_in_netns); there, and on the host
fallback, ntpd runs without CAP_SYS_TIME and with its clock discipline disabled, so it cannot
touch the clock."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_nts import nts_config, server_pki, tcp_port  # noqa: E402

NTPD = os.path.join(h.PEERS, "ntpsec", "usr", "sbin", "ntpd")


def start_ntpd(conf):
    """NTPsec's ntpd -n with config file `conf`, without CAP_SYS_TIME whatever it tries:
    (process, its log lines as they come)."""
    args = ["setpriv", "--bounding-set", "-sys_time", "--inh-caps", "-sys_time", NTPD, "-n", "-c", conf]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    threading.Thread(target=lambda: [log.append(l.rstrip()) for l in proc.stdout], daemon=True).start()
    return proc, log


def stop_ntpd(proc):
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


class NtpsecNtsTest(unittest.TestCase):
    def test_ntpd_selects_stratad_over_nts(self):
        pki = server_pki(self)
        state = h.state_dir()
        ke_port = tcp_port()
        ntp_port = h.free_port()
        config = nts_config(pki.dir, ke_port, os.path.join(state, "nts-secret"), f"ntp_port = {ntp_port}\n")
        user = "root" if h.NETNS == "1" else None  # only our own uid exists in the namespace
        with h.Stratad(config, threads=2, listen=[f"127.0.0.1:{ntp_port}"], user=user) as d:
            work = tempfile.mkdtemp(prefix="ntpsec-nts-")
            conf = os.path.join(work, "ntp.conf")
            with open(conf, "w") as f:
                f.write(f"server 127.0.0.1:{ke_port} nts ca {pki.ca} minpoll 3 maxpoll 3 iburst\n"
                        "disable ntp\ndisable kernel\n"            # no clock discipline
                        "interface ignore wildcard\ninterface listen 127.0.0.1\n"
                        f"driftfile {work}/drift\nlogconfig =allall\n")
            proc, log = start_ntpd(conf)
            try:
                end = time.time() + 60
                while time.time() < end and not any("127.0.0.1" in l and "sys_peer" in l for l in log):
                    self.assertIsNone(proc.poll(), "\n".join(log))
                    time.sleep(0.2)
                self.assertTrue(any("127.0.0.1" in l and "sys_peer" in l for l in log), "\n".join(log))
                self.assertTrue(any("Got 8 cookies, length 100, aead=15" in l for l in log), "\n".join(log))
                self.assertTrue(any(f"Using port {ntp_port}" in l for l in log), "\n".join(log))
            finally:
                stop_ntpd(proc)
                shutil.rmtree(work, ignore_errors=True)
            counters = d.counters()
            self.assertEqual(counters["ke_completed"], 1)
            self.assertGreaterEqual(counters["nts_authenticated"], 2)
            self.assertEqual(counters["nts_nak_sent"], 0)
            self.assertEqual(counters["drop_nts_malformed"], 0)


if __name__ == "__main__":
    h.main_in_netns(__file__, [(os.access(NTPD, os.X_OK), f"{NTPD} missing (./setup unpacks ntpsec)"),
                               (shutil.which("openssl") is not None, "openssl missing"),
                               (shutil.which("setpriv") is not None, "setpriv missing (util-linux)")],
                    ["127.0.0.1"])
