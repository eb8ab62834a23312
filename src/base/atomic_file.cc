// Writing a state file atomically (see atomic_file.h).
#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

#include "base/text.h"

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

std::optional<std::string> read_settled_file(const std::string& path, std::string& error,
                                             std::chrono::milliseconds settle,
                                             std::chrono::milliseconds max_wait) {
  using Clock = std::chrono::steady_clock;
  const auto give_up = Clock::now() + max_wait;
  const auto same = [](const struct stat& a, const struct stat& b) {
    return a.st_ino == b.st_ino && a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
           a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
  };
  for (;;) {
    struct stat before{};
    if (::stat(path.c_str(), &before) != 0) {
      error = std::strerror(errno);
      return std::nullopt;
    }
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const double age = static_cast<double>(now.tv_sec - before.st_mtim.tv_sec) +
                       static_cast<double>(now.tv_nsec - before.st_mtim.tv_nsec) * 1e-9;
    const double settle_s = std::chrono::duration<double>(settle).count();
    if (age >= 0 && age < settle_s && Clock::now() < give_up) {  // written a moment ago: wait
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min(settle_s - age, 0.2)));
      continue;
    }
    auto text = read_file(path);
    if (!text) {
      error = std::strerror(errno);
      return std::nullopt;
    }
    struct stat after{};
    if (::stat(path.c_str(), &after) == 0 && same(before, after) && static_cast<off_t>(text->size()) == after.st_size)
      return text;
    if (Clock::now() >= give_up) {
      error = "it kept changing while being read (write it elsewhere and rename it over)";
      return std::nullopt;
    }
  }
}

}  // namespace strata::base
