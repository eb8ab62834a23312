// The control socket: a unix stream socket where each connection sends one JSON request line
// ({"version":1,"command":"stats"}) and gets one JSON response line. File permissions guard
// it (root-only by default). Bound by the daemon before it drops root; served by the control
// thread, one short connection at a time.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace strata::control {

inline constexpr int kProtocolVersion = 1;

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  ControlServer() = default;
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket at `path` (its directory too, if missing); replaces a stale socket
  // file but refuses to take over one that a running daemon answers. Empty string on success.
  std::string bind(const std::string& path);
  // Serves requests on a thread of its own until stop().
  void start(Handler handler);
  void stop();

 private:
  void run();
  void serve_one(int fd);

  std::string path_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  Handler handler_;
  std::thread thread_;
};

// One request from a client: connects, sends, reads the reply. Throws std::runtime_error
// with a readable message on failure (no such socket, permission denied, bad reply).
nlohmann::json request(const std::string& path, const nlohmann::json& request_body,
                       int timeout_ms = 5000);

}  // namespace strata::control
