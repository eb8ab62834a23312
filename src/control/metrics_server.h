// The read-only HTTP endpoint for Prometheus and the console, on libmicrohttpd (Debian's
// libmicrohttpd-dev: a well-kept HTTP server library; we write no HTTP parser). GET /metrics
// answers the text from `render`; every other path goes to `route` (web/api: the dashboard
// and /api/v1/), 404 without one; other methods 405. Every answer carries
// web::security_headers(). Its own thread runs libmicrohttpd's
// epoll loop (every connection at once), bound by the daemon before it drops root and
// started after. Against slow or piling clients: at most kMaxConnections connections,
// kMaxPerAddress from one address, each closed after kIdleTimeoutS without progress or
// kRequestDeadlineS without completing a request (a byte a second is progress to
// libmicrohttpd's idle timeout, so the thread enforces this one itself); when all
// kMaxConnections are open, the oldest one older than kCrowdedAfterS is closed to make room.
// `render` runs at most once per kRenderEveryS (scrapes in between get the same text), so
// scrapes cost bounded CPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <unordered_map>

#include "base/net.h"
#include "web/http.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace strata::control {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  using Route = std::function<web::Reply(const web::Request&)>;
  MetricsServer() = default;
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  static constexpr unsigned kMaxConnections = 64;
  static constexpr unsigned kMaxPerAddress = 4;
  static constexpr unsigned kIdleTimeoutS = 5;
  static constexpr double kRequestDeadlineS = 10;
  static constexpr double kCrowdedAfterS = 1;
  static constexpr double kRenderEveryS = 0.2;

  // Binds and listens (before the privilege drop). Empty string on success, else why not
  // ("metrics: cannot listen on 127.0.0.1:9123: Address already in use").
  std::string bind(const base::Endpoint& listen);
  // Starts the serving thread on the bound socket. "" or why not.
  std::string start(Render render, Route route = {});
  void stop();
  uint16_t port() const { return port_; }  // the bound port (useful with port 0)
  // Connections closed for want of a complete request (kRequestDeadlineS, or to make room).
  uint64_t cut() const { return cut_.load(std::memory_order_relaxed); }

  // What the serving thread keeps (it is their only user: MHD's callbacks run on it).
  struct Connection {
    int64_t since_ns = 0;  // accepted, or its last request completed
    int fd = -1;
    bool cut = false;
  };
  struct Serving {
    Render render;
    Route route;
    std::string text;  // the last rendering, reused for kRenderEveryS
    int64_t rendered_ns = 0;
    bool valid = false;
    std::unordered_map<MHD_Connection*, Connection> connections;
  };

 private:
  void run();
  void enforce_deadlines(int64_t now_ns);

  MHD_Daemon* daemon_ = nullptr;
  Serving serving_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> cut_{0};
  int fd_ = -1;  // the bound socket, until MHD owns it
  std::string where_;
  uint16_t port_ = 0;
};

}  // namespace strata::control
