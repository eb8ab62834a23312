// Prometheus endpoint over libmicrohttpd (see metrics_server.h).
#include "control/metrics_server.h"

#include <microhttpd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace strata::control {

namespace {

MHD_Result respond(MHD_Connection* c, unsigned status, const std::string& body, const char* type) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  const MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

MHD_Result handle(void* cls, MHD_Connection* c, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload*/, size_t* upload_size,
                  void** /*state*/) {
  auto* render = static_cast<MetricsServer::Render*>(cls);
  if (*upload_size != 0) return MHD_NO;  // requests carry no body
  if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0)
    return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", "text/plain");
  if (std::strcmp(url, "/metrics") != 0)
    return respond(c, MHD_HTTP_NOT_FOUND, "stratad serves /metrics only\n", "text/plain");
  return respond(c, MHD_HTTP_OK, (*render)(), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace

MetricsServer::~MetricsServer() { stop(); }

std::string MetricsServer::start(const base::Endpoint& listen, Render render) {
  render_ = std::move(render);
  sockaddr_storage ss{};
  listen.to_sockaddr(ss);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (listen.address.family == base::Family::kV6) flags |= MHD_USE_IPv6;
  errno = 0;
  daemon_ = MHD_start_daemon(flags, listen.port, nullptr, nullptr, &handle, &render_,
                             MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&ss),
                             MHD_OPTION_CONNECTION_LIMIT, 16u,
                             MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                             MHD_OPTION_END);
  if (daemon_ == nullptr)
    return "metrics: cannot listen on " + listen.to_string() + ": " +
           (errno != 0 ? std::strerror(errno) : "libmicrohttpd refused");
  port_ = listen.port;
  if (const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT))
    port_ = info->port;
  return "";
}

void MetricsServer::stop() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
  daemon_ = nullptr;
}

}  // namespace strata::control
