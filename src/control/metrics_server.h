// The read-only HTTP endpoint for Prometheus, on libmicrohttpd (Debian's libmicrohttpd-dev:
// a well-kept HTTP server library; we write no HTTP parser). GET /metrics answers the text
// from `render`; other paths 404, other methods 405. Its own thread, one connection at a time
// (a scrape is small and rare); bound by the daemon before it drops root.
#pragma once

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

  // Binds and starts serving. Empty string on success, else why not ("bind 127.0.0.1:9123:
  // Address already in use").
  std::string start(const base::Endpoint& listen, Render render);
  void stop();
  uint16_t port() const { return port_; }  // the bound port (useful with port 0)

 private:
  MHD_Daemon* daemon_ = nullptr;
  Render render_;
  uint16_t port_ = 0;
};

}  // namespace strata::control
