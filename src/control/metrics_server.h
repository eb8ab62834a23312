// The read-only HTTP endpoint for Prometheus, on libmicrohttpd (Debian's libmicrohttpd-dev:
// a well-kept HTTP server library; we write no HTTP parser). GET /metrics answers the text
// from `render`; other paths 404, other methods 405. Its own thread (epoll, every connection
// at once), bound by the daemon before it drops root and started after. Against slow or
// piling clients: at most kMaxConnections connections, kMaxPerAddress from one address, each
// closed after kIdleTimeoutS without progress; and `render` runs at most once per
// kRenderEveryS (scrapes in between get the same text), so scrapes cost bounded CPU.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/net.h"

struct MHD_Daemon;

namespace strata::control {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  MetricsServer() = default;
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  static constexpr unsigned kMaxConnections = 64;
  static constexpr unsigned kMaxPerAddress = 4;
  static constexpr unsigned kIdleTimeoutS = 5;
  static constexpr double kRenderEveryS = 0.2;

  // Binds and listens (before the privilege drop). Empty string on success, else why not
  // ("metrics: cannot listen on 127.0.0.1:9123: Address already in use").
  std::string bind(const base::Endpoint& listen);
  // Starts the serving thread on the bound socket. "" or why not.
  std::string start(Render render);
  void stop();
  uint16_t port() const { return port_; }  // the bound port (useful with port 0)

  // What the handler keeps (MHD's one thread is its only user).
  struct Cache {
    Render render;
    std::string text;
    int64_t rendered_ns = 0;
    bool valid = false;
  };

 private:
  MHD_Daemon* daemon_ = nullptr;
  Cache cache_;
  int fd_ = -1;  // the bound socket, until MHD owns it
  std::string where_;
  uint16_t port_ = 0;
};

}  // namespace strata::control
