// stratad's least privilege once start-up is done: no capability left, and a seccomp filter
// (libseccomp from Debian) that allows only the system calls serving needs. Installed by the
// main thread after the sockets are bound, the privileges dropped and every thread made;
// the filter is synchronised onto every thread (TSYNC) and sets no_new_privs.
//
// With Seccomp::kKill a call outside the list stops the process with SIGSYS after one line on
// stderr naming the call ("seccomp: system call 'ptrace' (101) is not allowed ..."); with
// kLog it is allowed and the kernel logs it (audit log, or the kernel log without auditd).
// No process can be created (clone only with CLONE_THREAD, clone3 answers ENOSYS so that
// glibc falls back to clone), nothing executed, nothing mounted or traced.
#pragma once

#include <span>
#include <string>

#include "config/config.h"

namespace strata::daemon {

// The calls allowed without conditions on their arguments (clone, clone3, socket and ioctl
// are added with conditions: see sandbox.cc). In a sanitizer build (build/asan, build/tsan)
// the list also holds what the sanitizers' run-time needs (LeakSanitizer's ptrace at exit,
// the symbolizer's fork and exec at a report); a release build never does.
std::span<const char* const> allowed_system_calls();

// Clears every capability of the calling thread (effective, permitted, inheritable and
// ambient): a stratad started by systemd as its own user with CAP_NET_BIND_SERVICE keeps none
// after binding. Call before any other thread starts (capabilities are per thread). "" or why
// not.
std::string drop_capabilities();

// Installs the filter with `mode` on every thread of the process; nothing for kOff.
// "" or why not (then stratad does not start).
std::string install_seccomp(config::Seccomp mode);

}  // namespace strata::daemon
