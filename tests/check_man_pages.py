#!/usr/bin/env python3
"""The man pages stay true to the programs: every long option of `stratad --help` and of each
`strata SUBCOMMAND --help` and of `strata-snmp --help` is in stratad(8) / strata(1) /
strata-snmp(8), every key of the configuration
reference (docs/configuration.md) is in stratad.conf(5) under its table, and mandoc's lint
finds nothing. Run by CTest as docs.man_pages."""
import os
import re
import shutil
import subprocess
import sys

SOURCE = os.environ.get("STRATA_SOURCE", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("STRATA_BUILD", os.path.join(SOURCE, "build"))
MAN = os.path.join(SOURCE, "man")
failures = []


def read(name):
    with open(os.path.join(MAN, name)) as f:
        return f.read()


def long_options(args):
    out = subprocess.run(args + ["--help"], capture_output=True, text=True, check=True).stdout
    return sorted(set(re.findall(r"--([a-z][a-z0-9-]*)", out)) - {"help"})


def check_options(page, args):
    text = read(page)
    for opt in long_options(args):
        if "\\-\\-" + opt.replace("-", "\\-") not in text:
            failures.append(f"{page}: {' '.join(os.path.basename(a) for a in args)} --{opt} is not documented")


check_options("stratad.8", [os.path.join(BUILD, "stratad")])
check_options("strata-snmp.8", [os.path.join(BUILD, "strata-snmp")])
strata = os.path.join(BUILD, "strata")
subcommands = re.findall(r"^  ([a-z-]+)\s{2,}", subprocess.run([strata, "--help"], capture_output=True,
                                                                 text=True, check=True).stdout, re.M)
if len(subcommands) < 7:
    failures.append(f"strata --help lists only {subcommands}")
page = read("strata.1")
for sub in subcommands:
    if f".SH strata {sub.replace('-', chr(92) + '-')}" not in page:
        failures.append(f"strata.1: no section for strata {sub}")
    check_options("strata.1", [strata, sub])

# Configuration keys: the TOML block of docs/configuration.md, table by table.
with open(os.path.join(SOURCE, "docs", "configuration.md")) as f:
    block = f.read().split("```toml", 1)[1].split("```", 1)[0]
conf = read("stratad.conf.5")
sections = {}
for part in re.split(r"^\.SH ", conf, flags=re.M)[1:]:
    title, _, body = part.partition("\n")
    sections[title.strip()] = body
table = None
for line in block.splitlines():
    m = re.match(r"^\[(\w+)\]", line)
    if m:
        table = m.group(1)
        if f"[{table}]" not in sections:
            failures.append(f"stratad.conf.5: no section [{table}]")
        continue
    m = re.match(r"^(\w+)\s*=", line)
    if m and table:
        key = m.group(1).replace("_", "_")
        body = sections.get(f"[{table}]", "")
        if not re.search(r"^\.(B|BR) .*\b" + re.escape(key) + r"\b", body, re.M):
            failures.append(f"stratad.conf.5: [{table}] {key} is not documented")

mandoc = shutil.which("mandoc")
if mandoc:
    r = subprocess.run([mandoc, "-T", "lint", "-W", "warning"] +
                       [os.path.join(MAN, p) for p in ("stratad.8", "stratad.conf.5", "strata.1", "strata-snmp.8")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        failures.append("mandoc -T lint:\n" + r.stdout + r.stderr)
else:
    print("mandoc not installed (./setup installs it): lint skipped")

for f in failures:
    print("FAIL:", f)
print(f"man pages: {len(failures)} problems")
sys.exit(1 if failures else 0)
