// Control socket server and client (see control_server.h).
#include "control/control_server.h"
#include "control/json_text.h"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <unordered_map>
#include <stdexcept>

#include <fmt/format.h>

#include "base/log.h"

namespace strata::control {

namespace {

// Replies can list many clients; this only stops a runaway peer.
constexpr size_t kMaxReply = size_t{1} << 30;

bool make_address(const std::string& path, sockaddr_un& addr, std::string& error) {
  addr = sockaddr_un{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    error = "control socket path too long: " + path;
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

// The client's read of a reply: until a newline or EOF, each wait at most `timeout_ms`.
// False on timeout, error or oversize.
bool read_line(int fd, std::string& out, int timeout_ms, size_t max_size) {
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !out.empty();
    out.append(buf, static_cast<size_t>(n));
    if (out.find('\n') != std::string::npos) return true;
    if (out.size() > max_size) return false;
  }
}

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The server's writes, on its non-blocking descriptor: false once the client has taken
// nothing for `timeout_ms` (it stopped reading) or has gone.
bool send_within(int fd, const std::string& data, int timeout_ms) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, timeout_ms);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

std::string describe_socket_file(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  const passwd* pw = ::getpwuid(st.st_uid);
  const group* gr = ::getgrgid(st.st_gid);
  return fmt::format("{}:{} {:04o}", pw ? pw->pw_name : std::to_string(st.st_uid),
                     gr ? gr->gr_name : std::to_string(st.st_gid), st.st_mode & 07777);
}

namespace {

int connect_to(const std::string& path, std::string& error) {
  sockaddr_un addr;
  if (!make_address(path, addr, error)) return -1;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == ECONNREFUSED)
      error = path + ": stratad is not running (nothing listens on the socket: a stratad that "
                     "stopped or crashed left it)";
    else if (e == ENOENT)
      error = path + " does not exist: stratad is not running, or it uses another control "
                     "socket (--control PATH, --config STRATAD.TOML or $STRATA_CONTROL)";
    else if (e == EACCES)
      error = path + ": permission denied: only the socket's owner and group may use it (" +
              describe_socket_file(path) + ")";
    else
      error = path + ": " + std::strerror(e);
    return -1;
  }
  return fd;
}

}  // namespace

ControlServer::~ControlServer() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::string ControlServer::bind(const std::string& path) {
  std::string error;
  sockaddr_un addr;
  if (!make_address(path, addr, error)) return error;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return "cannot create " + dir.string() + ": " + ec.message();
  }
  // A socket file that nobody answers is stale (a crash): replace it. One that answers is a
  // running daemon: refuse.
  if (std::filesystem::exists(path, ec)) {
    std::string ignored;
    const int probe = connect_to(path, ignored);
    if (probe >= 0) {
      ::close(probe);
      return "control socket " + path + " is in use by a running daemon";
    }
    ::unlink(path.c_str());
  }
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return std::string("socket: ") + std::strerror(errno);
  const mode_t old = ::umask(0117);  // socket file mode 0660
  const int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(listen_fd_, kBacklog) != 0) {
    const std::string e = "bind " + path + ": " + std::strerror(errno);
    ::close(listen_fd_);
    listen_fd_ = -1;
    return e;
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  path_ = path;
  return "";
}

void ControlServer::start(Handler handler, std::vector<std::string> heavy_commands) {
  handler_ = std::move(handler);
  heavy_commands_ = std::move(heavy_commands);
  threads_.emplace_back([this] { listen_loop(); });
  for (unsigned i = 0; i < kServingThreads; ++i) threads_.emplace_back([this] { serve_loop(0); });
  for (unsigned i = 0; i < kHeavyThreads; ++i) threads_.emplace_back([this] { serve_loop(1); });
}

void ControlServer::stop() {
  if (threads_.empty()) return;
  // The eventfd stays readable (nobody reads it): the listener sees it and ends.
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  for (auto& cv : ready_cv_) cv.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (auto& queue : ready_) {
    for (auto& job : queue) ::close(job.fd);
    queue.clear();
  }
  if (!path_.empty()) ::unlink(path_.c_str());  // may fail after dropping root; harmless
}

namespace {

// The one-line error reply to a connection the listener turns away, sent without blocking
// (a client that does not read it simply does not get it).
void refuse(int fd, const std::string& error) {
  const std::string line = control::json_text(
      nlohmann::json{{"ok", false}, {"error", error}, {"version", kProtocolVersion}}) + "\n";
  [[maybe_unused]] const ssize_t n = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

}  // namespace

void ControlServer::listen_loop() {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    base::log(base::LogLevel::kError, "control: epoll: {}", std::strerror(errno));
    return;
  }
  const auto watch = [ep](int fd, int op) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return ::epoll_ctl(ep, op, fd, &ev);
  };
  watch(listen_fd_, EPOLL_CTL_ADD);
  watch(wake_fd_, EPOLL_CTL_ADD);
  struct Reading {
    std::string buffer;
    uint64_t serial = 0;  // tells a reused descriptor number from the one the deadline was for
  };
  std::unordered_map<int, Reading> reading;
  // Every connection gets the same time for its request line, so accept order is deadline
  // order: the oldest is at the front.
  struct Deadline {
    std::chrono::steady_clock::time_point at;
    int fd;
    uint64_t serial;
  };
  std::deque<Deadline> deadlines;
  uint64_t serial = 0;
  bool accepting = true;
  std::chrono::steady_clock::time_point resume_accept{};
  base::LogLimiter fd_warnings{3, std::chrono::seconds(60)};
  const auto finish = [&](int fd) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    reading.erase(fd);
  };
  const auto turn_away = [&](int fd, const std::string& error) {
    finish(fd);
    refuse(fd, error);
    open_.fetch_sub(1, std::memory_order_relaxed);
  };
  const auto pop_stale = [&] {  // deadlines of connections already finished
    while (!deadlines.empty()) {
      const auto it = reading.find(deadlines.front().fd);
      if (it != reading.end() && it->second.serial == deadlines.front().serial) break;
      deadlines.pop_front();
    }
  };
  epoll_event events[64];
  for (;;) {
    pop_stale();
    auto now = std::chrono::steady_clock::now();
    int wait_ms = -1;
    if (!deadlines.empty())
      wait_ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(deadlines.front().at - now).count() + 1));
    if (!accepting) wait_ms = wait_ms < 0 ? 100 : std::min(wait_ms, 100);
    const int n = ::epoll_wait(ep, events, 64, wait_ms);
    if (n < 0 && errno != EINTR) {
      base::log(base::LogLevel::kError, "control: epoll_wait: {}", std::strerror(errno));
      break;
    }
    now = std::chrono::steady_clock::now();
    bool stop = false;
    for (int i = 0; i < std::max(n, 0); ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        stop = true;
      } else if (fd == listen_fd_) {
        for (;;) {
          const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
              // Out of descriptors: stop accepting for 100 ms rather than spin on the backlog.
              fd_warnings.log(base::LogLevel::kWarning, "control: accept: {}; pausing 100 ms",
                              std::strerror(errno));
              ::epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd_, nullptr);
              accepting = false;
              resume_accept = now + std::chrono::milliseconds(100);
            }
            break;
          }
          if (open_.load(std::memory_order_relaxed) >= kMaxConnections) {
            // Full: the connection that has waited longest without sending its request line
            // makes room (a client that sends its line at once always gets in); when every
            // open connection has sent one, the newcomer is turned away.
            pop_stale();
            if (deadlines.empty()) {
              refuse(c, fmt::format("too many control connections ({} open); try again", kMaxConnections));
              refused_.fetch_add(1, std::memory_order_relaxed);
              continue;
            }
            const int oldest = deadlines.front().fd;
            deadlines.pop_front();
            turn_away(oldest, fmt::format("request line not sent; closed to make room ({} "
                                          "control connections open)", kMaxConnections));
            refused_.fetch_add(1, std::memory_order_relaxed);
          }
          open_.fetch_add(1, std::memory_order_relaxed);
          reading[c] = Reading{{}, ++serial};
          deadlines.push_back({now + std::chrono::milliseconds(kClientTimeoutMs), c, serial});
          watch(c, EPOLL_CTL_ADD);
        }
      } else {
        const auto it = reading.find(fd);
        if (it == reading.end()) continue;
        std::string& buffer = it->second.buffer;
        char chunk[4096];
        bool complete = false, gone = false;
        for (;;) {
          const ssize_t got = ::read(fd, chunk, sizeof chunk);
          if (got > 0) {
            const size_t before = buffer.size();
            buffer.append(chunk, static_cast<size_t>(got));
            if (buffer.find('\n', before) != std::string::npos) {
              complete = true;
              break;
            }
            if (buffer.size() > kMaxRequest) break;
            continue;
          }
          if (got < 0 && errno == EINTR) continue;
          if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          // End of file: a request without its newline is still a request.
          gone = true;
          complete = !buffer.empty();
          break;
        }
        if (complete) {
          // One request per connection: the first line; what follows it is not part of it.
          std::string line = std::move(buffer);
          line.resize(std::min(line.size(), line.find('\n')));
          finish(fd);
          Job job{fd, nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false)};
          // Requests whose replies can be long (the clients list) have threads of their own,
          // so that clients that stop reading them never hold up stats or reload.
          int pool = 0;
          if (job.request.is_object()) {
            const auto command = job.request.find("command");
            if (command != job.request.end() && command->is_string() &&
                std::find(heavy_commands_.begin(), heavy_commands_.end(),
                          command->get_ref<const std::string&>()) != heavy_commands_.end())
              pool = 1;
          }
          {
            std::lock_guard lock(mu_);
            ready_[pool].push_back(std::move(job));
          }
          ready_cv_[pool].notify_one();
        } else if (buffer.size() > kMaxRequest) {
          turn_away(fd, fmt::format("request line longer than {} octets", kMaxRequest));
        } else if (gone) {
          turn_away(fd, "no request line");
        }
      }
    }
    if (stop) break;
    pop_stale();
    while (!deadlines.empty() && deadlines.front().at <= now) {
      const int fd = deadlines.front().fd;
      deadlines.pop_front();
      turn_away(fd, fmt::format("no request line within {} ms", kClientTimeoutMs));
      pop_stale();
    }
    if (!accepting && now >= resume_accept) {
      watch(listen_fd_, EPOLL_CTL_ADD);
      accepting = true;
    }
  }
  for (auto& [fd, r] : reading) {
    ::close(fd);
    open_.fetch_sub(1, std::memory_order_relaxed);
  }
  ::close(ep);
}

void ControlServer::serve_loop(int pool) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      ready_cv_[pool].wait(lock, [&] { return stopping_ || !ready_[pool].empty(); });
      if (stopping_) return;
      job = std::move(ready_[pool].front());
      ready_[pool].pop_front();
    }
    serve_one(job.fd, job.request);
    ::close(job.fd);
    open_.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool Responder::line(std::string_view text) {
  if (!ok_) return false;
  buffer_.append(text);
  buffer_.push_back('\n');
  if (buffer_.size() >= (64u << 10)) return flush();
  return true;
}

bool Responder::flush() {
  if (ok_ && !buffer_.empty() && sink_ != nullptr) sink_->append(buffer_);
  else if (ok_ && !buffer_.empty()) ok_ = send_within(fd_, buffer_, ControlServer::kSendTimeoutS * 1000);
  buffer_.clear();
  return ok_;
}

void ControlServer::serve_one(int fd, const nlohmann::json& req) {
  Responder out(fd);
  nlohmann::json reply;
  // Whatever a client sends (a version of the wrong type, a field of the wrong type in any
  // command, bytes that are not UTF-8), the answer is an error reply, never an exception
  // out of this thread (which would end the daemon).
  try {
    const auto version = req.is_object() ? req.find("version") : req.end();
    if (req.is_discarded() || !req.is_object()) {
      reply = {{"ok", false}, {"error", "request is not a JSON object"}};
    } else if (version != req.end() && !(version->is_number_integer() && *version == kProtocolVersion)) {
      reply = {{"ok", false},
               {"error", fmt::format("unsupported protocol version {} (this daemon speaks {})",
                                     json_text(*version), kProtocolVersion)}};
    } else {
      reply = handler_(req, out);
    }
  } catch (const std::exception& e) {
    reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
  }
  reply["version"] = kProtocolVersion;
  out.line(json_text(reply));
  out.flush();
}

nlohmann::json request(const std::string& path, const nlohmann::json& body, int timeout_ms) {
  std::string error;
  const int fd = connect_to(path, error);
  if (fd < 0) throw std::runtime_error("cannot reach stratad's control socket " + error);
  nlohmann::json req = body;
  req["version"] = kProtocolVersion;
  std::string line;
  const bool ok = write_all(fd, control::json_text(req) + "\n") && read_line(fd, line, timeout_ms, kMaxReply);
  ::close(fd);
  if (!ok) throw std::runtime_error("no reply from stratad on " + path);
  nlohmann::json reply = nlohmann::json::parse(line, nullptr, false);
  if (reply.is_discarded()) throw std::runtime_error("malformed reply from stratad on " + path);
  if (!reply.value("ok", false)) {
    std::string message = "stratad: " + reply.value("error", std::string("request failed"));
    for (const auto& e : reply.value("errors", nlohmann::json::array()))
      if (e.is_string()) message += "\n  " + e.get<std::string>();
    throw std::runtime_error(message);
  }
  return reply;
}

nlohmann::json request_stream(const std::string& path, const nlohmann::json& body,
                              const std::function<void(const nlohmann::json&)>& on_header,
                              const std::function<void(std::string_view)>& on_row,
                              int timeout_ms) {
  std::string error;
  const int fd = connect_to(path, error);
  if (fd < 0) throw std::runtime_error("cannot reach stratad's control socket " + error);
  nlohmann::json req = body;
  req["version"] = kProtocolVersion;
  if (!write_all(fd, control::json_text(req) + "\n")) {
    ::close(fd);
    throw std::runtime_error("cannot send to stratad on " + path);
  }
  std::string buffer;
  size_t start = 0;
  bool header_seen = false;
  char chunk[1 << 16];
  for (;;) {
    const size_t nl = buffer.find('\n', start);
    if (nl == std::string::npos) {
      buffer.erase(0, start);
      start = 0;
      pollfd p{fd, POLLIN, 0};
      const ssize_t n = ::poll(&p, 1, timeout_ms) > 0 ? ::read(fd, chunk, sizeof chunk) : -1;
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        throw std::runtime_error("reply from stratad on " + path + " ended early");
      }
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    const std::string_view line(buffer.data() + start, nl - start);
    start = nl + 1;
    if (header_seen && !line.empty() && line.front() == '[') {
      on_row(line);
      continue;
    }
    nlohmann::json obj = nlohmann::json::parse(line, nullptr, false);
    if (obj.is_discarded() || !obj.is_object()) {
      ::close(fd);
      throw std::runtime_error("malformed reply from stratad on " + path);
    }
    if (!obj.value("ok", false)) {
      ::close(fd);
      throw std::runtime_error("stratad: " + obj.value("error", std::string("request failed")));
    }
    if (header_seen || !obj.value("stream", false)) {
      ::close(fd);
      return obj;  // the trailer (or a reply that did not stream)
    }
    header_seen = true;
    on_header(obj);
  }
}

}  // namespace strata::control
