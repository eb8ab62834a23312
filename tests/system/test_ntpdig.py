#!/usr/bin/env python3
"""Interop with NTPsec's ntpdig (Debian 12's sntp and ntpdate). ntpdig only speaks to port
123, so the test re-runs itself in a network namespace of its own (harness.main_in_netns)."""
import json
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

INSIDE = h.IN_NETNS


KEYS = """# ntp.keys: id type key (20 characters or fewer: text; more: hex)
1 MD5 sesame
2 SHA1 00112233445566778899aabbccddeeff0011223344
3 AES128CMAC 2b7e151628aed2a6abf7158809cf4f3c
"""


class NtpdigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not INSIDE:
            return
        # In the namespace we are root only by mapping: no other user to switch to.
        cls.d = h.Stratad(listen=["127.0.0.1:123", "[::1]:123"], user="root")
        cls.unsynced = h.Stratad(
            listen=["127.0.0.2:123"], user="root",
            config=f'[time]\nsource = "mirror"\nmirror = "127.0.0.1:{h.free_port()}"\n')
        # Symmetric keys, one of each algorithm, in ntp.keys syntax (as ntpdig reads them).
        cls.keys = os.path.join(cls.unsynced.dir, "ntp.keys")
        with open(cls.keys, "w") as f:
            f.write(KEYS)
        cls.authd = h.Stratad(listen=["127.0.0.3:123"], user="root",
                              config=f'[time]\nsource = "local"\n[auth]\nkeys = "{cls.keys}"\n')

    @classmethod
    def tearDownClass(cls):
        if INSIDE:
            cls.d.stop()
            cls.unsynced.stop()
            cls.authd.stop()

    def test_ntpdig_gets_the_time_over_ipv4_json(self):
        r = h.run(["ntpdig", "-j", "-t", "2", "127.0.0.1"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["stratum"], 10)
        self.assertEqual(out["leap"], "no-leap")
        self.assertLess(abs(out["offset"]), 0.01)

    def test_ntpdig_over_ipv6_with_samples(self):
        r = h.run(["ntpdig", "-p", "3", "-g", "50", "-t", "2", "::1"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("::1 s10 no-leap", r.stdout)

    def test_ntpdig_counts_in_stats(self):
        before = self.d.counters()["processed"]
        h.run(["ntpdig", "-t", "2", "127.0.0.1"], check=True)
        self.assertEqual(self.d.counters()["processed"], before + 1)

    def test_ntpdig_refuses_an_unsynchronised_server(self):
        r = h.run(["ntpdig", "-t", "2", "127.0.0.2"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("stratum too high", r.stderr)

    def test_ntpdig_authenticates_with_each_algorithm(self):
        before = self.authd.counters()
        for key in ("1", "2", "3"):
            r = h.run(["ntpdig", "-t", "2", "-k", self.keys, "-a", key, "127.0.0.3"])
            self.assertEqual(r.returncode, 0, f"key {key}: " + r.stdout + r.stderr)
            self.assertIn("127.0.0.3 s10 no-leap", r.stdout)
        after = self.authd.counters()
        self.assertEqual(after["authenticated_replies"] - before["authenticated_replies"], 3)
        self.assertEqual(after["auth_failed"], before["auth_failed"])

    def test_ntpdig_with_a_wrong_key_gets_nothing(self):
        wrong = os.path.join(self.authd.dir, "wrong.keys")
        with open(wrong, "w") as f:
            f.write("1 MD5 not-sesame\n9 MD5 sesame\n")
        before = self.authd.counters()
        for key in ("1", "9"):  # a wrong secret; an id the server does not know
            r = h.run(["ntpdig", "-t", "1", "-k", wrong, "-a", key, "127.0.0.3"])
            self.assertNotEqual(r.returncode, 0, r.stdout)
        after = self.authd.counters()
        self.assertEqual(after["auth_failed"] - before["auth_failed"], 2)
        self.assertEqual(after["drop_bad_mac"] - before["drop_bad_mac"], 1)
        self.assertEqual(after["drop_mac"] - before["drop_mac"], 1)
        self.assertEqual(after["responses_sent"], before["responses_sent"])


if __name__ == "__main__":
    h.main_in_netns(__file__, [(shutil.which("ntpdig") is not None,
                                "ntpdig not installed (./setup installs ntpsec-ntpdig)")],
                    ["127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"])
