#!/usr/bin/env python3
"""The Debian package: packaging/build-deb builds strata_<version>_<arch>.deb from the tree
with dpkg-buildpackage and lintian reports no errors; the package holds the three programs, their
man pages, the conffile /etc/stratad/stratad.toml, the systemd units (neither enabled nor
started), the stratad system user and the state directory; installed with `dpkg -i` into a
throwaway root (an overlay over this machine's / in a mount namespace of our own, so the
machine itself is never touched; in CI, where the machine is thrown away, on the machine when
no overlay can be mounted) it passes `stratad --check-config`, serves, and removes and
purges cleanly. Only the plain tree runs it (CTest label `package`)."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))
import harness as h  # noqa: E402

BUILD_DEB = os.path.join(h.SOURCE, "packaging", "build-deb")

# Runs in a private mount namespace (unshare -m): a tmpfs holds the overlay's upper layer, the
# overlay's lower layer is this machine's /, and every command runs chrooted in the overlay.
# Each step prints a "== name" line, then its output, then "rc=N".
THROWAWAY_ROOT = r"""
set -u
T=$1; DEB=$2; PORT=$3; WHERE=$4
if [ "$WHERE" = overlay ]; then
  mount -t tmpfs tmpfs "$T" || exit 90
  mkdir "$T/upper" "$T/work" "$T/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$T/root" || exit 91
  R=$T/root
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  # Nothing of the machine's runtime state: no systemd to reload, no sockets to reach.
  mount -t tmpfs tmpfs "$R/run"
  mount -t tmpfs tmpfs "$R/tmp"
else
  R=/  # CI's throwaway machine itself (no overlay there)
fi
cp "$DEB" "$R/tmp/strata.deb"
step() { name=$1; shift; echo "== $name"; chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" 2>&1; echo "rc=$?"; }
step install dpkg -i /tmp/strata.deb
step status dpkg-query -W -f '${Status} ${Version}\n' strata
step user getent passwd stratad
step group getent group stratad
step state_dir stat -c '%U %G %a' /var/lib/stratad
step enabled sh -c 'ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null | grep -c stratad || true'
step check_config stratad --check-config /etc/stratad/stratad.toml
step version sh -c 'strata --version && strata-snmp --version' 
step serve sh -c "printf '[time]\nsource = \"local\"\n[server]\ncontrol = \"\"\n' > /tmp/t.toml &&
  (stratad --config /tmp/t.toml --listen 127.0.0.1:$PORT --user stratad & echo \$! > /tmp/pid) &&
  sleep 1 && strata query -c 1 127.0.0.1:$PORT; r=\$?; kill \$(cat /tmp/pid); exit \$r"
step remove dpkg -r strata
step after_remove sh -c 'ls /usr/sbin/stratad /usr/bin/strata 2>&1; ls /etc/stratad; dpkg-query -W -f "\${Status}\n" strata'
step purge dpkg -P strata
step after_purge sh -c 'ls -d /etc/stratad /var/lib/stratad 2>&1; dpkg-query -W strata 2>&1'
"""


def steps(output):
    """{name: (output, rc)} from the script's "== name" ... "rc=N" blocks."""
    result, name, lines = {}, None, []
    for line in output.splitlines():
        if line.startswith("== "):
            name, lines = line[3:], []
        elif line.startswith("rc=") and name is not None:
            result[name] = ("\n".join(lines), int(line[3:]))
            name = None
        elif name is not None:
            lines.append(line)
    return result


class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("dpkg-buildpackage", "dh", "lintian"):
            h.require(shutil.which(tool) is not None, f"{tool} missing (./setup installs it)")
        cls.out = tempfile.mkdtemp(prefix="strata-deb-out-")
        r = subprocess.run([BUILD_DEB, "--out", cls.out], capture_output=True, text=True, timeout=1800)
        cls.log = r.stdout + r.stderr
        if r.returncode != 0:
            raise AssertionError("packaging/build-deb failed:\n" + cls.log[-6000:])
        debs = glob.glob(os.path.join(cls.out, "strata_*.deb"))
        assert len(debs) == 1, debs
        cls.deb = debs[0]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_lintian_reports_no_errors(self):
        self.assertIn("build-deb: lintian: no errors", self.log)
        self.assertNotRegex(self.log, r"(?m)^E: strata")
        # dpkg-buildpackage built it from the tree (not a copy of build/'s binaries).
        self.assertIn("dpkg-buildpackage: info: source package strata", self.log)
        self.assertIn("dh_auto_build -- stratad strata", self.log)
        self.assertIn("dpkg-deb: building package 'strata'", self.log)

    def test_contents(self):
        listing = subprocess.run(["dpkg-deb", "-c", self.deb], capture_output=True, text=True,
                                 check=True).stdout
        paths = {line.split()[-1] if " -> " not in line else line.split()[-3] for line in listing.splitlines()}
        for path in ("./usr/sbin/stratad", "./usr/bin/strata", "./etc/stratad/stratad.toml",
                     "./lib/systemd/system/stratad.service", "./usr/lib/sysusers.d/strata.conf",
                     "./usr/lib/tmpfiles.d/strata.conf", "./usr/share/man/man1/strata.1.gz",
                     "./usr/share/man/man5/stratad.conf.5.gz", "./usr/share/man/man8/stratad.8.gz",
                     "./usr/share/doc/strata/copyright", "./usr/share/doc/strata/README.Debian",
                     "./usr/share/strata/prices.toml", "./usr/sbin/strata-snmp",
                     "./lib/systemd/system/strata-snmp.service", "./usr/share/man/man8/strata-snmp.8.gz",
                     "./usr/share/snmp/mibs/STRATA-MIB.txt"):
            self.assertIn(path, paths)
        self.assertTrue(any(p.startswith("./usr/share/doc/strata/README.md") for p in paths), paths)
        self.assertTrue(any(p.startswith("./usr/share/doc/strata/examples/grafana") for p in paths))
        self.assertFalse([p for p in paths if "/usr/local" in p or "_test" in p or "bench" in p])

        fields = subprocess.run(["dpkg-deb", "-f", self.deb, "Package", "Version", "Depends"],
                                capture_output=True, text=True, check=True).stdout
        self.assertIn("Package: strata", fields)
        for lib in ("libc6", "libgnutls30", "libxdp1", "libmaxminddb0", "libmicrohttpd12", "libsnmp40"):
            self.assertIn(lib, fields)

        control = tempfile.mkdtemp()
        try:
            subprocess.run(["dpkg-deb", "-e", self.deb, control], check=True)
            with open(os.path.join(control, "conffiles")) as f:
                self.assertEqual(f.read().split(), ["/etc/stratad/stratad.toml"])
            with open(os.path.join(control, "postinst")) as f:
                postinst = f.read()
            self.assertIn("systemd-sysusers", postinst)
            # Installed, never enabled or started by the package.
            self.assertNotIn("deb-systemd-invoke start", postinst)
            self.assertNotRegex(postinst, r"deb-systemd-helper enable 'stratad.service'\n(?!.*was-enabled)")
        finally:
            shutil.rmtree(control)

        unit = subprocess.run(["dpkg-deb", "--fsys-tarfile", self.deb], capture_output=True, check=True).stdout
        import io
        import tarfile
        with tarfile.open(fileobj=io.BytesIO(unit)) as tar:
            text = tar.extractfile("./lib/systemd/system/stratad.service").read().decode()
            conf = tar.extractfile("./etc/stratad/stratad.toml").read().decode()
        self.assertIn("ExecStart=/usr/sbin/stratad --config /etc/stratad/stratad.toml", text)
        self.assertNotIn("/usr/local", text)
        self.assertIn("User=stratad", text)
        self.assertNotIn("cp examples/", text)  # the by-hand install notes are not in the package's unit
        with open(os.path.join(h.SOURCE, "examples", "pool-server.toml")) as f:
            self.assertEqual(conf, f.read())

    def test_install_check_config_remove_purge(self):
        h.require(h.is_root(), "installing into a throwaway root needs root (mounts, chown)")
        h.require(shutil.which("unshare") is not None, "unshare missing")
        def install(where):
            scratch = tempfile.mkdtemp(prefix="strata-deb-root-")
            try:
                return subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", THROWAWAY_ROOT,
                                       "throwaway-root", scratch, self.deb, str(h.free_port()), where],
                                      capture_output=True, text=True, timeout=600)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        r = install("overlay")
        if r.returncode in (90, 91):
            # No overlay over / here. In CI the machine is thrown away after the run: install there
            # (the issue allows it), provided nothing of the package is on it yet; elsewhere skip.
            why = "no tmpfs or overlay mount here: " + r.stderr[-300:]
            h.require(os.environ.get("STRATA_REQUIRE_ALL") == "1", why)
            h.require(subprocess.run(["dpkg-query", "-W", "strata"], capture_output=True).returncode != 0,
                      "strata is installed on this machine: not installing over it")
            print(why + "; installing on this (CI) machine itself")
            r = install("host")
        s = steps(r.stdout)
        report = r.stdout[-6000:] + r.stderr[-2000:]
        for name in ("install", "status", "user", "group", "state_dir", "check_config", "version",
                     "serve", "remove", "purge"):
            self.assertIn(name, s, report)
            self.assertEqual(s[name][1], 0, f"step {name}:\n{report}")
        # The postinst says the daemon is not started and how to start it.
        self.assertIn("neither enabled nor started", s["install"][0])
        self.assertIn("systemctl enable --now stratad", s["install"][0])
        self.assertIn("install ok installed 0.1.0", s["status"][0])
        self.assertRegex(s["user"][0], r"^stratad:x:\d+:\d+:strata NTP server:/var/lib/stratad:")
        self.assertEqual(s["state_dir"][0].strip(), "stratad stratad 750")
        self.assertEqual(s["enabled"][0].strip(), "0")
        self.assertIn("strata 0.1.0", s["version"][0])
        self.assertIn("strata-snmp 0.1.0", s["version"][0])
        self.assertRegex(s["serve"][0], r"stratum\s*[:=]?\s*\d")
        # Removed: programs gone, the conffile kept; purged: configuration and state gone.
        self.assertIn("No such file or directory", s["after_remove"][0])
        self.assertIn("stratad.toml", s["after_remove"][0])
        self.assertIn("deinstall ok config-files", s["after_remove"][0])
        self.assertIn("cannot access '/etc/stratad': No such file or directory", s["after_purge"][0])
        self.assertIn("cannot access '/var/lib/stratad': No such file or directory", s["after_purge"][0])
        self.assertIn("no packages found matching strata", s["after_purge"][0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
