#!/usr/bin/env python3
"""A full disk under the state directory (issue 12, section 3.5): a small tmpfs in a mount
namespace of the test's own (unshare -rnm), filled up while stratad saves its sketches (and
its history) every second. Each failed save says why (a few lines, then one a minute), leaves the previous file
as it was and no temporary file behind; serving goes on; once space is freed the next save
works and says so."""
import glob
import json
import os
import re
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class FullDiskTest(unittest.TestCase):
    def test_full_disk_keeps_the_last_save_and_serving(self):
        d = tempfile.mkdtemp(prefix="full-disk-")
        # Room for the sketches and the history (3.7 MiB) until the test fills it.
        h.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", d], check=True)
        self.addCleanup(lambda: h.run(["umount", "-l", d]))
        path = os.path.join(d, "unique-sketches.json")
        config = f'[time]\nsource = "local"\n[clients]\nstate_dir = "{d}"\nsave_interval = 1\n'
        # In the user namespace only root is mapped: stratad stays root there.
        with h.Stratad(config=config, user="root") as s:
            h.run([h.STRATA, "load", "--server", f"127.0.0.1:{s.port}", "--clients", "300",
                   "--rate", "3000", "--duration", "0.2"])
            end = time.time() + 10
            while time.time() < end and not os.path.exists(path):
                time.sleep(0.1)
            with open(path) as f:
                saved = f.read()
            self.assertIn("sketches", json.loads(saved))
            # Fill the file system to the last block, three times 0.6 s apart: the history
            # (state_dir/history, 3.7 MiB) may be half written when the first fill ends, and the
            # space its failed save then gives back would let the next save of the sketches in.
            filler = os.path.join(d, "filler")
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                for _ in range(3):
                    try:
                        while True:
                            os.write(fd, b"\0" * 4096)
                    except OSError:
                        pass
                    time.sleep(0.6)
            finally:
                os.close(fd)
            # New clients, so that the next save differs from the last good one.
            h.run([h.STRATA, "load", "--server", f"127.0.0.1:{s.port}", "--clients", "300",
                   "--source-prefix", "127.60.0.0/16", "--rate", "3000", "--duration", "0.2"])
            time.sleep(4.5)
            failed = [l for l in s.log if "saving the unique-client sketches:" in l]
            self.assertGreaterEqual(len(failed), 1, s.log)
            self.assertLessEqual(len(failed), 3, failed)  # a few lines, not one per save
            self.assertIn("No space left on device", failed[0])
            with open(path) as f:
                self.assertEqual(f.read(), saved)  # the last good save, untouched
            self.assertEqual(glob.glob(path + ".tmp.*"), [])  # no half-written leftovers
            self.assertIsNotNone(h.exchange(s.v4, h.request()))
            # /metrics says so too (the alert StrataStateSaveFailing watches this).
            metrics = urllib.request.urlopen(s.metrics_url, timeout=10).read().decode()
            failures = re.search(r'^strata_state_save_failures_total\{file="sketches"\} (\d+)$', metrics, re.M)
            self.assertIsNotNone(failures, metrics)
            self.assertGreaterEqual(int(failures.group(1)), len(failed))
            self.assertRegex(metrics, r'(?m)^strata_state_saves_total\{file="sketches"\} [1-9]')
            os.unlink(filler)
            end = time.time() + 10
            while time.time() < end and not any("again after" in l for l in s.log):
                time.sleep(0.1)
            again = [l for l in s.log if "saved the unique-client sketches" in l and "again after" in l]
            self.assertEqual(len(again), 1, s.log)
            with open(path) as f:
                self.assertNotEqual(f.read(), saved)
            print("\n".join(failed + again), file=sys.stderr)


if __name__ == "__main__":
    h.main_in_netns(__file__, [], ["127.0.0.1"], mount=True)
