// Control socket server and client (see control_server.h).
#include "control/control_server.h"
#include "control/json_text.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "base/log.h"

namespace strata::control {

namespace {

// A request larger than this is refused: the API's requests are small.
constexpr size_t kMaxRequest = 64 * 1024;
// A client that sends nothing for this long is dropped, so it cannot stall the thread.
constexpr int kClientTimeoutMs = 2000;
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

// Reads until a newline or EOF. `timeout_ms` bounds each wait (a client reading a long reply)
// or, with `total`, the whole line (the server's read of a request: a client sending a byte a
// second held the control thread for minutes). A readable `wake_fd` (stop) ends the wait at
// once, so SIGTERM never waits for a slow client. False on timeout, error, stop or oversize.
bool read_line(int fd, std::string& out, int timeout_ms, size_t max_size, int wake_fd = -1,
               bool total = false) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  for (;;) {
    int wait = timeout_ms;
    if (total) {
      wait = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now()).count());
      if (wait <= 0) return false;
    }
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int ready = ::poll(p, wake_fd >= 0 ? 2 : 1, wait);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || (wake_fd >= 0 && p[1].revents)) return false;
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

void ControlServer::start(Handler handler) {
  handler_ = std::move(handler);
  for (unsigned i = 0; i < kServingThreads; ++i) threads_.emplace_back([this] { run(); });
}

void ControlServer::stop() {
  if (threads_.empty()) return;
  // The eventfd stays readable (nobody reads it): every thread, waiting or serving, sees it.
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (!path_.empty()) ::unlink(path_.c_str());  // may fail after dropping root; harmless
}

void ControlServer::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      base::log(base::LogLevel::kError, "control: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    // Every waiting thread wakes for a connection; one gets it, the others EAGAIN.
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve_one(fd);
    ::close(fd);
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
  if (ok_ && !buffer_.empty()) ok_ = write_all(fd_, buffer_);
  buffer_.clear();
  return ok_;
}

void ControlServer::serve_one(int fd) {
  // A client that stops reading cannot hold the control thread for long.
  const timeval send_timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  Responder out(fd);
  std::string line;
  nlohmann::json reply;
  // Whatever a client sends (a version of the wrong type, a field of the wrong type in any
  // command, bytes that are not UTF-8), the answer is an error reply, never an exception
  // out of this thread (which would end the daemon).
  try {
    if (!read_line(fd, line, kClientTimeoutMs, kMaxRequest, wake_fd_, /*total=*/true)) {
      reply = {{"ok", false}, {"error", "no request line"}};
    } else {
      // One request per connection: the first line; what follows it in the same read is
      // not part of it.
      line.resize(std::min(line.size(), line.find('\n')));
      const nlohmann::json req = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
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
