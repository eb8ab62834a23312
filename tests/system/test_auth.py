#!/usr/bin/env python3
"""Symmetric-key authentication against real peers: chronyd (-x) configured with the same key
file as stratad selects it and keeps authenticating; with another secret it never does.
`strata query -k -a` authenticates, reports a crypto-NAK, and keys change with a reload."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_chrony import Chronyd  # noqa: E402

# chrony's syntax (ID TYPE HEX:/ASCII:), which stratad reads too.
CHRONY_KEYS = """1 MD5 ASCII:sesame
2 SHA1 HEX:0011223344556677889900112233445566778899
3 AES128 HEX:2b7e151628aed2a6abf7158809cf4f3c
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


class AuthTest(unittest.TestCase):
    def config(self, keys, extra=""):
        return f'[time]\nsource = "local"\n[auth]\nkeys = "{keys}"\n{extra}'

    def test_chronyd_authenticates_with_each_algorithm(self):
        h.require(os.access(h.CHRONYD, os.X_OK), f"{h.CHRONYD} missing (./setup unpacks chrony)")
        with h.Stratad(config="") as d0:
            keys = write(os.path.join(d0.dir, "chrony.keys"), CHRONY_KEYS)
        for key in ("1", "2", "3"):
            with h.Stratad(config=self.config(keys)) as d:
                c = Chronyd([f"server 127.0.0.1 port {d.port} key {key} iburst minpoll -2 maxpoll -2",
                             f"keyfile {keys}", "port 0"])
                try:
                    self.assertTrue(c.wait_for("Selected source 127.0.0.1", 20),
                                    f"key {key}:\n" + "\n".join(c.log))
                finally:
                    c.stop()
                counters = d.counters()
                self.assertGreaterEqual(counters["authenticated_replies"], 1)
                self.assertEqual(counters["authenticated_replies"], counters["processed"])
                self.assertEqual(counters["auth_failed"], 0)

    def test_chronyd_with_another_secret_never_selects(self):
        h.require(os.access(h.CHRONYD, os.X_OK), f"{h.CHRONYD} missing (./setup unpacks chrony)")
        with h.Stratad(config="") as d0:
            ours = write(os.path.join(d0.dir, "server.keys"), "1 SHA1 HEX:" + "ab" * 20 + "\n")
            theirs = write(os.path.join(d0.dir, "client.keys"), "1 SHA1 HEX:" + "cd" * 20 + "\n")
        with h.Stratad(config=self.config(ours)) as d:
            c = Chronyd([f"server 127.0.0.1 port {d.port} key 1 iburst minpoll -2 maxpoll -2",
                         f"keyfile {theirs}", "port 0"])
            try:
                self.assertFalse(c.wait_for("Selected source", 5), "\n".join(c.log))
            finally:
                c.stop()
            counters = d.counters()
            self.assertGreaterEqual(counters["drop_bad_mac"], 2)
            self.assertEqual(counters["drop_bad_mac"], counters["auth_failed"])
            self.assertEqual(counters["responses_sent"], 0)

    def query(self, d, keys, key, *extra):
        return h.run([h.STRATA, "query", "--json", "-t", "1", "-k", keys, "-a", key,
                      f"127.0.0.1:{d.port}", *extra])

    def test_strata_query_authenticates_and_sees_crypto_nak(self):
        with h.Stratad(config="") as d0:
            keys = write(os.path.join(d0.dir, "ntp.keys"),
                         "1 MD5 sesame\n2 SHA1 00112233445566778899aabbccddeeff0011223344\n"
                         "3 AES128CMAC 2b7e151628aed2a6abf7158809cf4f3c\n")
            wrong = write(os.path.join(d0.dir, "wrong.keys"), "1 MD5 other\n")
        with h.Stratad(config=self.config(keys, 'bad_mac = "crypto-nak"\n')) as d:
            for key in ("1", "2", "3"):
                r = self.query(d, keys, key)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertEqual(json.loads(r.stdout)[0]["auth"], "ok")
            r = self.query(d, wrong, "1")
            self.assertEqual(r.returncode, 1, r.stdout)
            reply = json.loads(r.stdout)[0]
            self.assertEqual(reply["auth"], "crypto-NAK")
            self.assertEqual(reply["length"], 52)  # 48 + key id 0: never more than asked
            counters = d.counters()
            self.assertEqual(counters["crypto_nak_sent"], 1)
            self.assertEqual(counters["authenticated_replies"], 3)
        r = h.run([h.STRATA, "query", "-k", keys, "-a", "7", "127.0.0.1:1"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("key 7 is not in", r.stderr)

    def test_reload_changes_the_keys_and_refuses_a_broken_file(self):
        with h.Stratad(config="") as d0:
            keys = write(os.path.join(d0.dir, "ntp.keys"), "1 MD5 sesame\n")
            client = write(os.path.join(d0.dir, "client.keys"), "1 MD5 sesame\n2 MD5 second\n")
        with h.Stratad(config=self.config(keys)) as d:
            self.assertEqual(self.query(d, client, "1").returncode, 0)
            self.assertEqual(self.query(d, client, "2").returncode, 1)
            write(keys, "1 MD5 sesame\n2 MD5 second\n")
            r = h.run([h.STRATA, "reload", "--control", d.control], check=True)
            self.assertIn("2 keys", r.stdout + r.stderr)
            self.assertEqual(self.query(d, client, "2").returncode, 0)
            write(keys, "1 MD5 sesame\n2 SHA256 x\n")
            r = h.run([h.STRATA, "reload", "--control", d.control])
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(f"{keys}:2: unsupported key type 'SHA256'", r.stdout + r.stderr)
            self.assertEqual(self.query(d, client, "2").returncode, 0)  # nothing changed


if __name__ == "__main__":
    unittest.main(verbosity=2)
