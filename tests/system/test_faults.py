#!/usr/bin/env python3
"""Fault tests (issue 12, section 3.5 and 3.6), short versions; bench/soak runs the long ones.
State: stratad killed with SIGKILL while it saves its sketches every second, again and again:
each restart finds a complete file or sets a damaged one aside with its reason, and serves.
Truncated, empty, garbage, wrong-version and unreadable state files; a state_dir that is a
file (a full disk: tests/system/test_full_disk.py). Bad
configuration: a rules file that is a directory, a symlink loop, a deeply nested TOML file, a
large rules file; a running server keeps its old configuration when a reload is refused."""
import json
import os
import random
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# bench/soak sets these for the long runs.
KILLS = int(os.environ.get("STRATA_SOAK_KILLS", "5"))
RULE_LINES = int(os.environ.get("STRATA_SOAK_RULE_LINES", "100000"))
TOML_MB = int(os.environ.get("STRATA_SOAK_TOML_MB", "10"))  # bench/soak: 100


def config_with_state(d, extra=""):
    return f'[time]\nsource = "local"\n[clients]\nstate_dir = "{d}"\nsave_interval = 1\n' + extra


class StateFaultTest(unittest.TestCase):
    def test_kill_9_during_saves(self):
        d = h.state_dir(prefix="faults-")
        path = os.path.join(d, "unique-sketches.json")
        rng = random.Random(12)
        outcomes = {"restored": 0, "set aside": 0, "first start": 0}
        for i in range(KILLS):
            s = h.Stratad(config=config_with_state(d))
            try:
                text = "\n".join(s.log)
                if "restored" in text:
                    outcomes["restored"] += 1
                elif "ignoring " + path in text:
                    outcomes["set aside"] += 1
                    self.assertTrue(os.path.exists(path + ".damaged"), text)
                else:
                    outcomes["first start"] += 1
                self.assertIsNotNone(h.exchange(s.v4, h.request()), text)
                # Some clients, then SIGKILL at a random point of the save cycle.
                h.run([h.STRATA, "load", "--server", f"127.0.0.1:{s.port}", "--clients", "200",
                       "--rate", "2000", "--duration", "0.3"])
                time.sleep(rng.uniform(0.9, 2.1))
            finally:
                s.proc.send_signal(signal.SIGKILL)
                s.proc.wait()
                s.stop(sig=signal.SIGKILL)
            # No temporary file is left half-written under the real name.
            if os.path.exists(path):
                with open(path) as f:
                    json.load(f)
        print(f"{KILLS} kills: {outcomes}", file=sys.stderr)
        self.assertEqual(outcomes["first start"], 1, outcomes)
        # Saved atomically: no restart ever found a damaged file.
        self.assertEqual(outcomes["set aside"], 0, outcomes)

    def test_damaged_state_files_are_set_aside_with_a_reason(self):
        cases = {
            "empty": b"",
            "truncated": b'{"format": "strata-unique-sketches", "format_version": 1, "sket',
            "garbage": bytes(range(256)) * 4,
            "wrong version": json.dumps({"format": "strata-unique-sketches",
                                         "format_version": 99, "sketches": []}).encode(),
        }
        for name, content in cases.items():
            with self.subTest(case=name):
                d = h.state_dir(prefix="faults-")
                path = os.path.join(d, "unique-sketches.json")
                with open(path, "wb") as f:
                    f.write(content)
                os.chmod(path, 0o666)
                with h.Stratad(config=config_with_state(d)) as s:
                    self.assertIsNotNone(h.exchange(s.v4, h.request()), s.log)
                    lines = [l for l in s.log if "ignoring " + path + ":" in l]
                    self.assertEqual(len(lines), 1, s.log)
                    self.assertIn("kept as " + path + ".damaged", lines[0])
                self.assertTrue(os.path.exists(path + ".damaged"))
                with open(path) as f:  # the save at stop wrote a good one
                    self.assertIn("sketches", json.load(f))

    def test_unreadable_state_file_is_kept_aside_with_a_reason(self):
        d = h.state_dir(prefix="faults-")
        path = os.path.join(d, "unique-sketches.json")
        with open(path, "w") as f:
            f.write('{"format": "strata-unique-sketches", "format_version": 1, "sketches": []}\n')
        os.chmod(path, 0)
        with h.Stratad(config=config_with_state(d)) as s:
            self.assertIsNotNone(h.exchange(s.v4, h.request()), s.log)
            lines = [l for l in s.log if "cannot read " + path in l]
            self.assertEqual(len(lines), 1, s.log)
            self.assertIn("Permission denied", lines[0])
            self.assertIn("kept as " + path + ".unreadable", lines[0])
        self.assertTrue(os.path.exists(path + ".unreadable"))  # not overwritten by a save
        with open(path) as f:
            self.assertIn("sketches", json.load(f))

    def test_state_dir_that_is_a_file_is_refused_at_start(self):
        f = tempfile.NamedTemporaryFile(prefix="faults-notadir-", delete=False)
        f.close()
        s = h.Stratad(config=config_with_state(f.name), wait=False)
        self.assertEqual(s.proc.wait(timeout=10), 1)
        s.stop()
        text = "\n".join(s.log)
        self.assertIn(f.name, text)
        self.assertIn("state_dir", text)


class ConfigFaultTest(unittest.TestCase):
    def check_refused(self, config_text, expect):
        work = tempfile.mkdtemp(prefix="faults-config-")
        path = os.path.join(work, "stratad.toml")
        with open(path, "w") as f:
            f.write(config_text)
        r = h.run([h.STRATAD, "--config", path, "--check-config"], timeout=120)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(expect, r.stderr, r.stderr)
        self.assertNotIn("terminate", r.stderr)
        return r.stderr

    def test_rules_file_that_is_a_directory_or_a_loop(self):
        work = tempfile.mkdtemp(prefix="faults-rules-")
        loop = os.path.join(work, "loop")
        os.symlink(loop, loop)
        self.check_refused(f'[access]\nfile = "{work}"\n', work)
        self.check_refused(f'[access]\nfile = "{loop}"\n', loop)

    def test_huge_toml_files(self):
        # TOML_MB of comments (valid), of one string value, of random bytes: a verdict in
        # bounded time, and an error of bounded length that names file and line.
        size = TOML_MB << 20
        rng = random.Random(7)
        cases = {
            "comments": '[time]\nsource = "local"\n' + ("# " + "x" * 97 + "\n") * (size // 100),
            "one value": '[time]\nsource = "' + "a" * size + '"\n',
            "random bytes": rng.randbytes(size),
        }
        for name, text in cases.items():
            with self.subTest(case=name):
                work = tempfile.mkdtemp(prefix="faults-huge-")
                os.chmod(work, 0o755)  # --check-config reads it as the user stratad would be
                path = os.path.join(work, "stratad.toml")
                with open(path, "wb") as f:
                    f.write(text if isinstance(text, bytes) else text.encode())
                os.chmod(path, 0o644)
                t = time.monotonic()
                r = h.run([h.STRATAD, "--config", path, "--check-config"], timeout=300)
                took = time.monotonic() - t
                print(f"{TOML_MB} MB TOML, {name}: exit {r.returncode} in {took:.1f} s, "
                      f"{len(r.stderr)} octets said", file=sys.stderr)
                self.assertNotIn("terminate", r.stderr)
                self.assertLess(len(r.stderr), 2000, r.stderr[:2000])
                if name == "comments":
                    self.assertEqual(r.returncode, 0, r.stderr)
                else:
                    self.assertEqual(r.returncode, 1, r.stderr[:2000])
                    self.assertIn(path + ":", r.stderr)

    def test_deeply_nested_toml(self):
        depth = 100000
        text = "a = " + "[" * depth + "]" * depth + "\n"
        self.check_refused(text, "stratad.toml")

    def test_large_rules_file_loads_and_a_bad_reload_keeps_it(self):
        work = tempfile.mkdtemp(prefix="faults-bigrules-")
        os.chmod(work, 0o755)
        rules = os.path.join(work, "rules")
        with open(rules, "w") as f:
            for i in range(RULE_LINES):
                f.write(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32 deny\n")
            f.write("127.0.0.0/8 allow\n")
        os.chmod(rules, 0o644)
        start = time.time()
        with h.Stratad(config=f'[time]\nsource = "local"\n[access]\nfile = "{rules}"\n') as s:
            loaded = time.time() - start
            self.assertIsNotNone(h.exchange(s.v4, h.request()), s.log)
            # A broken line: the reload is refused, naming file and line; the rules stay.
            with open(rules, "a") as f:
                f.write("10.0.0.0/33 deny\n")
            time.sleep(1.1)  # a rules file is read once it has been still for a second
            r = h.run([h.STRATA, "reload", "--control", s.control])
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn(f"{rules}:{RULE_LINES + 2}:", r.stdout + r.stderr)
            self.assertIsNotNone(h.exchange(s.v4, h.request()), s.log)
            self.assertIsNone(s.proc.poll())
        print(f"{RULE_LINES + 1} rules: serving {loaded:.2f} s after start", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
