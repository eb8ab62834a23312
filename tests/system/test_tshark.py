#!/usr/bin/env python3
"""tshark (Wireshark's dissector) checks what stratad sends: a capture of strata query and of
raw requests of every version against stratad on loopback dissects as valid NTP server
replies with no expert warnings or malformed packets."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TRACEROUTE = "Possible traceroute"


class TsharkTest(unittest.TestCase):
    def test_replies_dissect_cleanly(self):
        h.require(shutil.which("tshark") is not None, "tshark not installed")
        h.require(h.is_root(), "live capture on lo needs root")
        with h.Stratad() as d:
            pcap = os.path.join(tempfile.mkdtemp(prefix="tshark-test-"), "cap.pcapng")
            # 2 + 2 + 8 packets: query over v4 and v6, then versions 1-4 (mode 3) raw.
            cap = h.start_capture(f"udp port {d.port}", pcap, seconds=20, count=12)
            try:
                h.run([h.STRATA, "query", f"127.0.0.1:{d.port}"], check=True)
                h.run([h.STRATA, "query", f"[::1]:{d.port}"], check=True)
                for v in range(1, 5):
                    self.assertIsNotNone(h.exchange(d.v4, h.request(v, 3)))
                cap.wait(timeout=25)
            finally:
                if cap.poll() is None:
                    cap.kill()
                cap.stderr.close()
            decode = ["-r", pcap, "-d", f"udp.port=={d.port},ntp"]
            fields = h.run(["tshark", *decode, "-T", "fields", "-e", "udp.srcport",
                            "-e", "ntp.flags.vn", "-e", "ntp.flags.mode", "-e", "ntp.stratum",
                            "-e", "ntp.flags.li", "-e", "_ws.malformed", "-e", "_ws.expert"],
                           check=True).stdout.splitlines()
            self.assertEqual(len(fields), 12, fields)
            replies = [f.split("\t") for f in fields if f.split("\t")[0] == str(d.port)]
            self.assertEqual(len(replies), 6)
            self.assertEqual(sorted(r[1] for r in replies), ["1", "2", "3", "4", "4", "4"])
            for r in replies:
                self.assertEqual(r[2], "4", r)      # server mode
                self.assertEqual(r[3], "10", r)     # stratum
                self.assertEqual(r[4], "0", r)      # no leap warning
                # Not malformed, no expert info about NTP. Wireshark's IP layer calls any UDP
                # datagram with a port in 33434-33534 a "possible traceroute": an ephemeral
                # port lands there now and then, which says nothing about the packet.
                expert = h.expert_infos(r[6])
                self.assertEqual((r[5], expert), ("", []), r)
            verbose = h.run(["tshark", *decode, "-V"], check=True).stdout
            self.assertEqual(verbose.count("Network Time Protocol (NTP Version"), 12)
            self.assertNotIn("Malformed", verbose)
            self.assertEqual([l for l in verbose.splitlines()
                              if "Expert Info" in l and TRACEROUTE not in l], [])
            expert = h.run(["tshark", *decode, "-q", "-z", "expert"], check=True).stdout
            self.assertNotIn("Warn", expert)
            self.assertNotIn("Error", expert)


if __name__ == "__main__":
    unittest.main(verbosity=2)
