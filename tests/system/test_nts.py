#!/usr/bin/env python3
"""NTS (RFC 8915) with real peers: chronyd 4.3 as an NTS client (NTS-KE over TLS 1.3 with a
CA made here by openssl, then authenticated NTP) selects stratad and keeps its cookies working
across key rotations, a certificate reload and a stratad restart; gnutls-cli is refused TLS 1.2
and a missing ALPN; a broken certificate on reload keeps the one in force."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_chrony import Chronyd  # noqa: E402

CHRONYC = os.path.join(h.PEERS, "chrony", "usr", "bin", "chronyc")


def tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pki:
    """A CA and leaf certificates it signs (EC P-256), for 127.0.0.1 and localhost."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="strata-pki-")
        os.chmod(self.dir, 0o755)
        self.ca = os.path.join(self.dir, "ca.crt")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-days", "30", "-subj", "/CN=strata test CA", "-keyout", os.path.join(self.dir, "ca.key"),
                      "-out", self.ca)

    def _openssl(self, *args):
        h.run(["openssl", *args], check=True)

    def leaf(self, name, days=30):
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-subj", "/CN=" + name, "-keyout", key, "-out", csr)
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", os.path.join(self.dir, "ca.key"),
                      "-CAcreateserial", "-days", str(days), "-extfile", ext, "-out", crt)
        for p in (key, crt):
            os.chmod(p, 0o644)  # stratad reads them again after dropping root (reload)
        return crt, key

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def nts_config(pki_dir, ke_port, secret, extra=""):
    return (f'[time]\nsource = "local"\n'
            f'[nts]\ncertificate = "{pki_dir}/server.crt"\nkey = "{pki_dir}/server.key"\n'
            f'listen = ["127.0.0.1:{ke_port}"]\nsecret = "{secret}"\n{extra}')


def server_pki(test):
    """A CA and its leaf for the server, removed after `test`; skips without openssl."""
    h.require(shutil.which("openssl") is not None, "openssl missing (./setup installs it)")
    pki = Pki()
    test.addCleanup(pki.cleanup)
    pki.leaf("server")
    return pki


class NtsChronyTest(unittest.TestCase):
    def setUp(self):
        h.require(os.access(h.CHRONYD, os.X_OK), f"{h.CHRONYD} missing (./setup unpacks chrony)")
        h.require(shutil.which("openssl") is not None, "openssl missing (./setup installs it)")
        self.pki = Pki()
        self.addCleanup(self.pki.cleanup)
        self.crt, self.key = self.pki.leaf("server")
        self.state = h.state_dir()
        self.secret = os.path.join(self.state, "nts-secret")
        self.ke_port = tcp_port()

    def chronyd(self, port, poll=-2, extra=()):
        sockdir = tempfile.mkdtemp(prefix="chronyd-cmd-")
        os.chmod(sockdir, 0o700)  # chronyd refuses a command socket in a directory others can use
        self.cmd_socket = os.path.join(sockdir, "chronyd.sock")
        c = Chronyd([f"server 127.0.0.1 port {port} nts ntsport {self.ke_port} iburst minpoll {poll} maxpoll {poll}",
                     f"ntstrustedcerts {self.pki.ca}", "port 0", f"bindcmdaddress {self.cmd_socket}", *extra])
        self.addCleanup(c.stop)
        return c

    def authdata(self):
        out = h.run([CHRONYC, "-h", self.cmd_socket, "-n", "-c", "authdata"], timeout=10)
        # CSV: name,mode,keyid,type,klen,last,atmp,nak,cook,clen
        for line in out.stdout.splitlines():
            fields = line.split(",")
            if fields and fields[0] == "127.0.0.1":
                return fields
        return None

    def wait_counter(self, d, name, at_least, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if d.counters().get(name, 0) >= at_least:
                return True
            time.sleep(0.2)
        return False

    def test_chronyd_synchronises_over_nts_and_survives_rotation_reload_and_restart(self):
        # A key per 2 s, three past accepted: chronyd polls every 0.5 s and spends its 8 cookies
        # oldest first (each up to 4 s old), so its cookies span several periods, and they
        # last 4 s of silence (the restart).
        config = nts_config(self.pki.dir, self.ke_port, self.secret, "rotate = 2\nkeep = 3\n")
        config += '[clients]\nmemory = "16MiB"\n'
        d = h.Stratad(config, threads=2)
        try:
            c = self.chronyd(d.port, poll=-1)
            self.assertTrue(c.wait_for("Selected source 127.0.0.1", 25), "\n".join(c.log + d.log))
            auth = self.authdata()
            self.assertIsNotNone(auth, "chronyc authdata has no 127.0.0.1")
            self.assertEqual(auth[1], "NTS")
            self.assertEqual(auth[3], "15")      # AEAD_AES_SIV_CMAC_256
            self.assertGreaterEqual(int(auth[8]), 1)  # cookies held
            self.assertEqual(auth[9], "100")     # cookie length
            self.assertEqual(auth[7], "0")       # no NAK
            counters = d.counters()
            self.assertEqual(counters["ke_completed"], 1)
            self.assertEqual(counters["ke_cookies_issued"], 8)
            self.assertGreaterEqual(counters["nts_authenticated"], 3)
            self.assertEqual(counters["nts_nak_sent"], 0)
            self.assertEqual(counters["drop_nts"], 0)
            # Key rotation: 3 more periods pass; every request still authenticates.
            before = counters["nts_authenticated"]
            time.sleep(6.5)
            counters = d.counters()
            self.assertGreater(counters["nts_authenticated"], before + 8)
            self.assertEqual(counters["nts_nak_sent"], 0, d.log)
            self.assertEqual(counters["ke_completed"], 1)  # no new KE was needed
            self.assertGreater(counters["nts_key_past"], 0)  # cookies of the previous period
            # strata clients flags NTS clients.
            rows = h.run([h.STRATA, "clients", "--control", d.control], check=True).stdout
            self.assertRegex(rows, r" N +3 4 .*127\.0\.0\.1")

            # Certificate reload: a new leaf of the same CA; a broken one first keeps the old.
            with open(self.crt, "w") as f:
                f.write("not a certificate\n")
            out = h.run([h.STRATA, "reload", "--control", d.control], timeout=20)
            self.assertIn(f"{self.crt}: not a PEM certificate", out.stdout + out.stderr)
            self.assertEqual(ke_subject(self.ke_port, self.pki.ca), "CN=server")
            self.pki.leaf("server")  # rewrites server.crt/.key with a new key
            shutil.copy(os.path.join(self.pki.dir, "server.crt"), os.path.join(self.pki.dir, "renewed.crt"))
            out = h.run([h.STRATA, "reload", "--control", d.control], timeout=20)
            self.assertIn("loaded for new handshakes", out.stdout + out.stderr)
            self.assertEqual(ke_fingerprint(self.ke_port, self.pki.ca),
                             cert_fingerprint(os.path.join(self.pki.dir, "renewed.crt")))
            # chronyd is unaffected (it has cookies), and a fresh KE works with the new files.
            time.sleep(1)
            self.assertEqual(d.counters()["nts_nak_sent"], 0)
            self.assertEqual(ke_subject(self.ke_port, self.pki.ca), "CN=server")

            # stratad restarts with the same secrets file: chronyd's cookies still open.
            d.stop()
            d = h.Stratad(config, threads=2, listen=[f"127.0.0.1:{d.port}"])
            self.assertTrue(self.wait_counter(d, "nts_authenticated", 4), d.log)
            counters = d.counters()
            self.assertEqual(counters["ke_completed"], 0, "chronyd needed a new KE after the restart")
            self.assertEqual(counters["nts_nak_sent"], 0)
            self.assertIn("NTS", ",".join(self.authdata() or []))
        finally:
            d.stop()

    def test_unknown_secret_gets_a_nak_and_chronyd_renews_its_cookies(self):
        config = nts_config(self.pki.dir, self.ke_port, self.secret)
        d = h.Stratad(config, threads=1)
        try:
            c = self.chronyd(d.port)
            self.assertTrue(c.wait_for("Selected source 127.0.0.1", 25), "\n".join(c.log + d.log))
            d.stop()
            # Another fleet's secret: the old cookies are refused with NTSN, chronyd runs KE again.
            with open(self.secret, "w") as f:
                f.write("ab" * 32 + "\n")
            d = h.Stratad(config, threads=1, listen=[f"127.0.0.1:{d.port}"])
            self.assertTrue(self.wait_counter(d, "ke_completed", 1, timeout=30), d.log + c.log)
            counters = d.counters()
            self.assertGreaterEqual(counters["nts_nak_sent"], 1)
            self.assertEqual(counters["nts_nak_sent"], counters["nts_nak_unknown_key"])
            self.assertTrue(self.wait_counter(d, "nts_authenticated", 2), d.log)
        finally:
            d.stop()


def ke_pem(port, ca):
    """The certificate the KE server presents (openssl s_client, ALPN ntske/1)."""
    out = h.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-alpn", "ntske/1",
                 "-CAfile", ca, "-verify_return_error", "-servername", "localhost"],
                input="", timeout=20)
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out.stdout, re.S)
    return m.group(0) if m else ""


def ke_subject(port, ca):
    pem = ke_pem(port, ca)
    out = h.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253"], input=pem)
    return out.stdout.strip().replace("subject=", "")


def ke_fingerprint(port, ca):
    return h.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=ke_pem(port, ca)).stdout.strip()


def cert_fingerprint(path):
    return h.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", path]).stdout.strip()


class StrataQueryNtsTest(unittest.TestCase):
    def test_query_nts_runs_ke_then_verified_exchanges(self):
        pki = server_pki(self)
        state = h.state_dir()
        port = tcp_port()
        ntp_port = h.free_port()
        config = nts_config(pki.dir, port, os.path.join(state, "nts-secret"), f"ntp_port = {ntp_port}\n")
        with h.Stratad(config, threads=1, listen=[f"127.0.0.1:{ntp_port}"]) as d:
            h.within_one_window(20)  # the three handshakes and the 1m KE top talkers in one minute
            out = h.run([h.STRATA, "query", "--nts", f"localhost:{port}", "--ca", pki.ca, "-c", "3", "-i", "0.05", "-4"],
                        timeout=30)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("NTS-KE ok", out.stdout)
            self.assertIn("AEAD 15 (AES-SIV-CMAC-256)  8 cookies of 100 octets", out.stdout)
            self.assertIn(f"NTP server localhost port {ntp_port}", out.stdout)
            self.assertIn("certificate CN=server", out.stdout)
            self.assertEqual(out.stdout.count("nts ok"), 3, out.stdout)
            self.assertIn("228 octets each way", out.stdout)
            js = h.run([h.STRATA, "query", "--nts", f"localhost:{port}", "--ca", pki.ca, "--json", "-4"], timeout=30)
            self.assertEqual(js.returncode, 0, js.stdout + js.stderr)
            doc = json.loads(js.stdout)
            self.assertEqual(doc["nts_ke"]["aead"], 15)
            self.assertEqual(doc["replies"][0]["nts"], "nts ok")
            self.assertTrue(doc["replies"][0]["valid"])
            # A CA that did not sign the certificate: refused, exit 1.
            other = Pki()
            self.addCleanup(other.cleanup)
            bad = h.run([h.STRATA, "query", "--nts", f"localhost:{port}", "--ca", other.ca], timeout=30)
            self.assertEqual(bad.returncode, 1)
            self.assertIn("NTS-KE failed: certificate not trusted", bad.stdout)
            counters = d.counters()
            self.assertEqual(counters["ke_completed"], 2)
            self.assertEqual(counters["nts_authenticated"], 4)
            # KE clients' top talkers, the KE times, the certificate's expiry and the key's age.
            for _ in range(20):  # published within 250 ms
                top = json.loads(h.run([h.STRATA, "top", "--ke", "--control", d.control, "--json"],
                                       check=True).stdout)
                if top["rows"] and top["rows"][0]["count"] == 3:
                    break
                time.sleep(0.1)
            self.assertTrue(top["ke"])
            self.assertEqual(top["rows"][0]["key"], "127.0.0.1")
            self.assertEqual(top["rows"][0]["count"], 3)  # two good exchanges and the refused one
            stats = d.stats()
            self.assertEqual(stats["nts"]["ke_time_ns"]["count"], 2)
            self.assertGreater(stats["nts"]["certificate_expiry_s"], 29 * 86400)
            self.assertGreaterEqual(stats["nts"]["key_age_s"], 0)
            metrics = urllib.request.urlopen(d.metrics_url, timeout=10).read().decode()
            self.assertIn("strata_nts_ke_duration_seconds_count 2\n", metrics)
            self.assertRegex(metrics, r"strata_nts_certificate_expiry_seconds \d+")
            self.assertRegex(metrics, r"strata_nts_key_age_seconds \d+")
            self.assertIn("strata_ke_completed_total 2\n", metrics)
            self.assertIn('strata_nts_ke_unique_clients{window="1m",kind="v4"} 1\n', metrics)


class NtsCheckConfigTest(unittest.TestCase):
    def test_check_config_names_the_certificate_and_the_secrets(self):
        pki = server_pki(self)
        state = h.state_dir()
        conf = os.path.join(pki.dir, "stratad.toml")
        with open(conf, "w") as f:
            f.write(nts_config(pki.dir, tcp_port(), os.path.join(state, "nts-secret")))
        args = [h.STRATAD, "--config", conf, "--check-config"] + (["--user", "nobody"] if h.is_root() else [])
        out = h.run(args)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("nts KE with CN=server, expires", out.stdout)
        self.assertIn("nts-secret will be created at start", out.stdout)
        self.assertFalse(os.path.exists(os.path.join(state, "nts-secret")))  # --check-config writes nothing
        # A key that is not the certificate's: refused, naming the key file.
        other = Pki()
        self.addCleanup(other.cleanup)
        _, other_key = other.leaf("server")
        shutil.copy(other_key, os.path.join(pki.dir, "server.key"))
        out = h.run(args)
        self.assertEqual(out.returncode, 1)
        self.assertIn(f"nts-ke: {pki.dir}/server.key: ", out.stderr)


class NtsFleetTest(unittest.TestCase):
    def test_a_secret_file_makes_a_fleet_without_a_key_service(self):
        """NTS-KE on one stratad sends clients (Server/Port Negotiation) to another that has
        no certificate, only the same secrets file: it accepts the cookies the first made."""
        pki = server_pki(self)
        state = h.state_dir()
        secret = os.path.join(state, "nts-secret")
        ke_port, ntp_port = tcp_port(), h.free_port()
        ke_host = nts_config(pki.dir, ke_port, secret, f'ntp_server = "127.0.0.1"\nntp_port = {ntp_port}\n')
        with h.Stratad(ke_host, threads=1) as ke:  # creates the secrets file
            ntp_only = f'[time]\nsource = "local"\n[nts]\nsecret = "{secret}"\n'
            with h.Stratad(ntp_only, threads=1, listen=[f"127.0.0.1:{ntp_port}"]) as ntp:
                out = h.run([h.STRATA, "query", "--nts", f"localhost:{ke_port}", "--ca", pki.ca, "-c", "3",
                             "-i", "0.05", "-4"], timeout=30)
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
                self.assertIn(f"NTP server 127.0.0.1 port {ntp_port}", out.stdout)
                self.assertEqual(out.stdout.count("nts ok"), 3, out.stdout)
                c = ntp.counters()
                self.assertEqual(c["nts_authenticated"], 3)
                self.assertEqual(c["ke_accepted"], 0)  # no NTS-KE there
                self.assertEqual(ke.counters()["ke_completed"], 1)
                self.assertEqual(ke.counters()["nts_requests"], 0)


class NtsReloadUnderLoadTest(unittest.TestCase):
    def test_no_handshake_fails_across_certificate_and_secret_reloads(self):
        pki = server_pki(self)
        state = h.state_dir()
        secret = os.path.join(state, "nts-secret")
        port = tcp_port()
        with h.Stratad(nts_config(pki.dir, port, secret, "ke_interval = 0\n"), threads=1) as d:
            load = subprocess.Popen([h.STRATA, "load", "--nts", f"localhost:{port}", "--ca", pki.ca, "--ke-only",
                                     "--sockets", "4", "--duration", "4", "--json"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            reloads = 0
            time.sleep(0.3)
            for i in range(8):
                # A renewal (the files rewritten one after the other, as ACME clients do: a
                # reload may catch the new key with the old certificate, and keeps the old
                # pair then), then the reload.
                pki.leaf("server")
                out = h.run([h.STRATA, "reload", "--control", d.control], timeout=20)
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
                reloads += "loaded for new handshakes" in out.stdout + out.stderr
                time.sleep(0.2)
            # Rolling the secret, step 1: a second line that only opens cookies.
            with open(secret, "a") as f:
                f.write("cd" * 32 + "\n")
            out = h.run([h.STRATA, "reload", "--control", d.control], timeout=20)
            self.assertIn("nts: secrets from", out.stdout + out.stderr)
            self.assertIn("2 secrets", out.stdout + out.stderr)
            # A broken secrets file keeps the secrets in force, and says so with the file's name.
            with open(secret) as f:
                good = f.read()
            with open(secret, "w") as f:
                f.write("not hex\n")
            out = h.run([h.STRATA, "reload", "--control", d.control], timeout=20)
            self.assertIn(f"nts: {secret}:1: a secret is 64 hex digits", out.stdout + out.stderr)
            self.assertIn("the cookie secrets in force stay", out.stdout + out.stderr)
            with open(secret, "w") as f:
                f.write(good)
            stdout, stderr = load.communicate(timeout=60)
            r = json.loads(stdout)
            self.assertGreater(r["completed"], 20, stderr)
            self.assertEqual(r["failed"], 0, r)
            self.assertGreaterEqual(reloads, 4)
            counters = d.counters()
            self.assertEqual(counters["ke_failed_tls"], 0)
            self.assertEqual(counters["ke_completed"], r["completed"])


class NtsTlsRefusalTest(unittest.TestCase):
    def test_tls12_and_missing_alpn_are_refused(self):
        h.require(shutil.which("gnutls-cli") is not None, "gnutls-cli missing (./setup installs gnutls-bin)")
        pki = server_pki(self)
        state = h.state_dir()
        port = tcp_port()
        with h.Stratad(nts_config(pki.dir, port, os.path.join(state, "nts-secret")), threads=1) as d:
            base = ["gnutls-cli", "--x509cafile", pki.ca, "--port", str(port), "localhost"]
            ok = h.run(base + ["--alpn", "ntske/1", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3"],
                       input="", timeout=20)
            self.assertIn("Handshake was completed", ok.stdout, ok.stdout + ok.stderr)
            old = h.run(base + ["--alpn", "ntske/1", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2"],
                        input="", timeout=20)
            self.assertNotIn("Handshake was completed", old.stdout)
            no_alpn = h.run(base + ["--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3"], input="", timeout=20)
            self.assertNotIn("Handshake was completed", no_alpn.stdout)
            time.sleep(0.3)
            counters = d.counters()
            self.assertEqual(counters["ke_failed_tls"], 1)
            self.assertEqual(counters["ke_failed_alpn"], 1)
            # The good handshake sent no request before closing: not a completed exchange.
            self.assertEqual(counters["ke_completed"], 0)
            self.assertEqual(counters["ke_accepted"], 3)


if __name__ == "__main__":
    unittest.main()
