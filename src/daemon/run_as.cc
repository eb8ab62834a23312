// Who stratad runs as, and what that user can reach (see run_as.h).
#include "daemon/run_as.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace strata::daemon {

std::optional<RunAs> resolve_run_as(const std::string& wanted, std::string& error) {
  RunAs r;
  if (::geteuid() != 0) {
    const passwd* pw = ::getpwuid(::geteuid());
    r.name = pw ? pw->pw_name : std::to_string(::geteuid());
    r.uid = ::geteuid();
    r.gid = ::getegid();
    return r;
  }
  r.name = wanted.empty() ? (::getpwnam("stratad") ? "stratad" : "nobody") : wanted;
  const passwd* pw = ::getpwnam(r.name.c_str());
  if (pw == nullptr) {
    error = fmt::format("user '{}' does not exist", r.name);
    return std::nullopt;
  }
  r.uid = pw->pw_uid;
  r.gid = pw->pw_gid;
  r.drop = r.uid != 0;
  return r;
}

namespace {

std::vector<std::string> check_here(const RunAs& who, const std::vector<FileNeed>& needs) {
  std::vector<std::string> out;
  const std::string user = fmt::format("user {} (uid {})", who.name, who.uid);
  for (const FileNeed& n : needs) {
    struct stat st{};
    if (::stat(n.path.c_str(), &st) != 0) {
      out.push_back(fmt::format("{} {}: {} for {}", n.what, n.path, std::strerror(errno), user));
      continue;
    }
    if (n.directory_rw) {
      if (!S_ISDIR(st.st_mode)) {
        out.push_back(fmt::format("{} {}: not a directory", n.what, n.path));
        continue;
      }
      if (::access(n.path.c_str(), W_OK | X_OK) != 0)
        out.push_back(fmt::format("{} {} is not writable by {}: {}", n.what, n.path, user, std::strerror(errno)));
    } else if (::access(n.path.c_str(), R_OK) != 0) {
      out.push_back(fmt::format("{} {} is not readable by {}: {} (it is read again at each reload)",
                                n.what, n.path, user, std::strerror(errno)));
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> check_files_as(const RunAs& who, const std::vector<FileNeed>& needs) {
  if (needs.empty()) return {};
  if (!who.drop) return check_here(who, needs);
  int fds[2];
  if (::pipe(fds) != 0) return {fmt::format("cannot check files as {}: pipe: {}", who.name, std::strerror(errno))};
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {fmt::format("cannot check files as {}: fork: {}", who.name, std::strerror(errno))};
  }
  if (pid == 0) {  // the child: become the user, check, report, exit
    ::close(fds[0]);
    std::string report;
    if (::setgroups(0, nullptr) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
      report = fmt::format("cannot switch to user {}: {}\n", who.name, std::strerror(errno));
    } else {
      for (const auto& line : check_here(who, needs)) report += line + "\n";
    }
    for (size_t done = 0; done < report.size();) {
      const ssize_t n = ::write(fds[1], report.data() + done, report.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::vector<std::string> out;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = text.find('\n', pos);
    out.push_back(text.substr(pos, end - pos));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

}  // namespace strata::daemon
