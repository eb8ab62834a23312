// The control socket: a unix stream socket where each connection sends one JSON request line
// ({"version":1,"command":"stats"}) and gets one JSON response line. File permissions guard
// it (root-only by default). Bound by the daemon before it drops root; served by the control
// threads: one reads every connection's request line, several serve the requests.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
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
  // Collects the lines in `sink` instead of sending them (the console's HTTP API).
  explicit Responder(std::string* sink) : sink_(sink) {}
  ~Responder() { flush(); }
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  // Appends `text` and a newline. False once the client has gone (stop producing rows).
  bool line(std::string_view text);
  bool flush();
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  std::string* sink_ = nullptr;
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
  // One listener thread accepts and reads request lines from every connection at once
  // (epoll, non-blocking): a client gets kClientTimeoutMs for its line, at most kMaxRequest
  // octets, or an error line and the connection closed. At most kMaxConnections are open
  // (reading, queued or being served); when full, the one that has waited longest without a
  // request line is closed to make room, or the newcomer is refused when all have sent one.
  // Complete requests are served by kServingThreads threads, and the commands named heavy at
  // start (replies that can be long: a client that stops reading one holds its thread until it
  // has taken nothing for kSendTimeoutS) by kHeavyThreads others, so stalled readers of the clients list
  // never hold up stats or reload. All threads are made at start, none later.
  static constexpr unsigned kServingThreads = 4;
  static constexpr unsigned kHeavyThreads = 2;
  static constexpr size_t kMaxConnections = 256;
  static constexpr size_t kMaxRequest = 64 * 1024;
  static constexpr int kClientTimeoutMs = 2000;
  static constexpr int kSendTimeoutS = 5;
  static constexpr int kBacklog = 64;

  // Serves requests until stop(). The handler runs on any serving thread, concurrently: it
  // must be thread-safe.
  void start(Handler handler, std::vector<std::string> heavy_commands = {});
  void stop();
  // Connections turned away because kMaxConnections were open.
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  void listen_loop();
  void serve_loop(int pool);
  void serve_one(int fd, const nlohmann::json& request);

  std::string path_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  Handler handler_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> open_{0};
  std::atomic<uint64_t> refused_{0};
  std::vector<std::string> heavy_commands_;
  struct Job {
    int fd = -1;
    nlohmann::json request;  // discarded when the line is not JSON
  };
  std::mutex mu_;  // guards ready_ and stopping_
  std::condition_variable ready_cv_[2];
  std::deque<Job> ready_[2];  // complete requests: [0] the serving threads', [1] heavy
  bool stopping_ = false;
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
