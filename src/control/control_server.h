// The control socket: a unix stream socket where each connection sends one JSON request line
// ({"version":1,"command":"stats"}) and gets one JSON response line. File permissions guard
// it (root-only by default). Bound by the daemon before it drops root; served by the control
// threads, several clients at once (kServingThreads), each with deadlines.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace strata::control {

inline constexpr int kProtocolVersion = 1;

// Lines written back to one control client, buffered. A handler that streams (a million
// clients) writes a header object line, then one line per row, and returns the trailer
// object, which the server writes last; a plain handler writes nothing and returns its reply.
class Responder {
 public:
  explicit Responder(int fd) : fd_(fd) {}
  ~Responder() { flush(); }
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  // Appends `text` and a newline. False once the client has gone (stop producing rows).
  bool line(std::string_view text);
  bool flush();
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = true;
  std::string buffer_;
};

// "root:root 0660": who may use a control socket file (for messages), or why it cannot be seen.
std::string describe_socket_file(const std::string& path);

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request, Responder& out)>;

  ControlServer() = default;
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket at `path` (its directory too, if missing); replaces a stale socket
  // file but refuses to take over one that a running daemon answers. Empty string on success.
  std::string bind(const std::string& path);
  // Clients served at once, each by a thread of its own (made at start, none later): a slow
  // or stalled client holds one of them for at most its deadlines (kClientTimeoutMs for the
  // request line, the send timeout per write of the reply) while the others keep serving.
  // More waiting connections queue in the listen backlog (kBacklog); past that, connect()
  // fails at once (EAGAIN), which the client reports.
  static constexpr unsigned kServingThreads = 4;
  static constexpr int kBacklog = 64;

  // Serves requests on kServingThreads threads until stop(). The handler runs on any of
  // them, concurrently: it must be thread-safe.
  void start(Handler handler);
  void stop();

 private:
  void run();
  void serve_one(int fd);

  std::string path_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  Handler handler_;
  std::vector<std::thread> threads_;
};

// One request from a client: connects, sends, reads the reply. Throws std::runtime_error
// with a readable message on failure (no such socket, permission denied, bad reply).
nlohmann::json request(const std::string& path, const nlohmann::json& request_body,
                       int timeout_ms = 5000);

// A streamed request: `on_header` gets the first line (an object), `on_row` each row line
// as text, and the trailer object is returned. Throws like request().
nlohmann::json request_stream(const std::string& path, const nlohmann::json& request_body,
                              const std::function<void(const nlohmann::json&)>& on_header,
                              const std::function<void(std::string_view)>& on_row,
                              int timeout_ms = 30000);

}  // namespace strata::control
