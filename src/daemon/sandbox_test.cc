// The seccomp filter and the capability drop, each tried in a child process (a filter
// cannot be taken off again).
#include "daemon/sandbox.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>
#include <functional>
#include <string>
#include <thread>

namespace strata::daemon {
namespace {

struct Outcome {
  int status = 0;      // from waitpid
  std::string stderr;  // what the child wrote there
};

// Runs `body` in a child whose stderr is captured; the child exits with body's value.
Outcome in_child(const std::function<int()>& body) {
  int pipe_fds[2];
  EXPECT_EQ(::pipe(pipe_fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    ::_exit(body());
  }
  ::close(pipe_fds[1]);
  Outcome out;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) out.stderr.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  EXPECT_EQ(::waitpid(pid, &out.status, 0), pid);
  return out;
}

std::string status_field(const std::string& name) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + ":", 0) == 0) {
      const size_t at = line.find_first_not_of(" \t", name.size() + 1);
      return at == std::string::npos ? "" : line.substr(at);
    }
  return "?";
}

TEST(Sandbox, AKilledCallIsNamedAndStopsTheProcessWithSigsys) {
  const Outcome o = in_child([] {
    if (!install_seccomp(config::Seccomp::kKill).empty()) return 10;
    ::syscall(SYS_chroot, "/nonexistent");  // nothing stratad does
    return 0;
  });
  ASSERT_TRUE(WIFSIGNALED(o.status)) << o.status << " " << o.stderr;
  EXPECT_EQ(WTERMSIG(o.status), SIGSYS);
  EXPECT_NE(o.stderr.find("seccomp: system call 'chroot' (" + std::to_string(SYS_chroot)),
            std::string::npos)
      << o.stderr;
}

TEST(Sandbox, LogModeLetsTheCallThrough) {
  const Outcome o = in_child([] {
    if (!install_seccomp(config::Seccomp::kLog).empty()) return 10;
    const long rc = ::syscall(SYS_chroot, "/nonexistent");
    return rc == -1 && (errno == ENOENT || errno == EPERM) ? 0 : 11;
  });
  ASSERT_TRUE(WIFEXITED(o.status)) << o.status << " " << o.stderr;
  EXPECT_EQ(WEXITSTATUS(o.status), 0) << o.stderr;
}

TEST(Sandbox, WhatStratadDoesStillWorksAndTheStatusSaysFiltered) {
  const Outcome o = in_child([] {
    if (!install_seccomp(config::Seccomp::kKill).empty()) return 10;
    int ran = 0;
    std::thread t([&] { ran = 1; });  // clone with CLONE_THREAD (clone3 answers ENOSYS)
    t.join();
    if (ran != 1) return 11;
    const std::string path = ::testing::TempDir() + "/sandbox-" + std::to_string(::getpid());
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0600);
    if (fd < 0 || ::write(fd, "x", 1) != 1 || ::fsync(fd) != 0 || ::close(fd) != 0) return 12;
    if (::rename(path.c_str(), (path + ".b").c_str()) != 0 || ::unlink((path + ".b").c_str()) != 0) return 13;
    if (status_field("Seccomp") != "2") return 14;
    if (status_field("NoNewPrivs") != "1") return 15;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(o.status)) << o.status << " " << o.stderr;
  EXPECT_EQ(WEXITSTATUS(o.status), 0) << o.stderr;
}

#ifndef STRATA_SANITIZER_RUNTIME
TEST(Sandbox, NoProcessCanBeMade) {
  const Outcome o = in_child([] {
    if (!install_seccomp(config::Seccomp::kKill).empty()) return 10;
    ::fork();  // clone without CLONE_THREAD
    return 0;
  });
  ASSERT_TRUE(WIFSIGNALED(o.status)) << o.status << " " << o.stderr;
  EXPECT_EQ(WTERMSIG(o.status), SIGSYS);
  EXPECT_NE(o.stderr.find("'clone'"), std::string::npos) << o.stderr;
}
#endif

TEST(Sandbox, OffInstallsNothing) {
  const Outcome o = in_child([] {
    if (!install_seccomp(config::Seccomp::kOff).empty()) return 10;
    return status_field("Seccomp") == "0" ? 0 : 11;
  });
  ASSERT_TRUE(WIFEXITED(o.status));
  EXPECT_EQ(WEXITSTATUS(o.status), 0);
}

TEST(Sandbox, CapabilitiesAreAllDropped) {
  const Outcome o = in_child([] {
    if (!drop_capabilities().empty()) return 10;
    for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapAmb"})
      if (status_field(set) != "0000000000000000") return 11;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(o.status));
  EXPECT_EQ(WEXITSTATUS(o.status), 0) << o.stderr;
}

TEST(Sandbox, TheListNamesEveryCallOnce) {
  const auto calls = allowed_system_calls();
  std::set<std::string> seen;
  for (const char* c : calls) EXPECT_TRUE(seen.insert(c).second) << c;
  EXPECT_TRUE(seen.count("recvmmsg"));
  EXPECT_FALSE(seen.count("clone"));  // only with CLONE_THREAD, added apart
#ifndef STRATA_SANITIZER_RUNTIME
  for (const char* never : {"execve", "ptrace", "fork", "mount", "clone3", "setuid"})
    EXPECT_FALSE(seen.count(never)) << never;
#endif
}

#ifndef STRATA_SANITIZER_RUNTIME
// docs/operating.md lists the calls an operator's stratad may make: it must stay true.
TEST(Sandbox, TheOperatingGuideNamesEveryAllowedCall) {
  std::ifstream in(std::string(STRATA_SOURCE_DIR) + "/docs/operating.md");
  ASSERT_TRUE(in) << STRATA_SOURCE_DIR;
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t start = doc.find("## What stratad may do once it serves");
  ASSERT_NE(start, std::string::npos);
  const std::string section = doc.substr(start, doc.find("\n## ", start + 1) - start);
  for (const char* c : allowed_system_calls())
    EXPECT_NE(section.find("`" + std::string(c) + "`"), std::string::npos) << c;
}
#endif

}  // namespace
}  // namespace strata::daemon
