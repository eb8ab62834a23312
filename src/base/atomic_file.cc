// Writing a state file atomically (see atomic_file.h).
#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace strata::base {

namespace {

std::string random_suffix() {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r))
    r = static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ULL ^ static_cast<uint64_t>(::time(nullptr));
  return fmt::format("{:016x}", r);
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string write_file_atomically(const std::string& path, std::string_view data, unsigned mode) {
  const std::string tmp = path + ".tmp." + random_suffix();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return fmt::format("cannot create {}: {}", tmp, std::strerror(errno));
  std::string error;
  for (size_t done = 0; done < data.size() && error.empty();) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) error = fmt::format("cannot write {}: {}", tmp, std::strerror(n < 0 ? errno : ENOSPC));
    else done += static_cast<size_t>(n);
  }
  if (error.empty() && ::fsync(fd) != 0) error = fmt::format("cannot sync {}: {}", tmp, std::strerror(errno));
  if (::close(fd) != 0 && error.empty()) error = fmt::format("cannot close {}: {}", tmp, std::strerror(errno));
  if (error.empty() && ::rename(tmp.c_str(), path.c_str()) != 0)
    error = fmt::format("cannot replace {}: {}", path, std::strerror(errno));
  if (!error.empty()) {
    ::unlink(tmp.c_str());
    return error;
  }
  // The rename itself survives a crash once the directory is on disk.
  const int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return "";
}

}  // namespace strata::base
