#!/usr/bin/python3
"""Runs a command under a seccomp allow-list, as systemd's SystemCallFilter= does without
SystemCallErrorNumber=: any system call not listed kills the process (SIGSYS).
Usage: seccomp_exec.py ALLOWED_FILE COMMAND [ARGS...]; ALLOWED_FILE has one call per line.
Run with Debian's /usr/bin/python3, whose python3-seccomp is libseccomp's own binding."""
import os
import sys

import seccomp


def main():
    with open(sys.argv[1]) as f:
        allowed = [l.strip() for l in f if l.strip()]
    flt = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    for name in allowed:
        try:
            flt.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # a name this libseccomp or architecture does not know
    flt.load()
    os.execv(sys.argv[2], sys.argv[2:])


if __name__ == "__main__":
    main()
