// Prometheus endpoint over libmicrohttpd (see metrics_server.h).
#include "control/metrics_server.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "base/ntp_time.h"
#include "clients/address_key.h"

namespace strata::control {

namespace {

MHD_Result respond(MHD_Connection* c, unsigned status, const std::string& body, const char* type,
                   const char* cache = "no-store") {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
  for (const auto& [name, value] : web::security_headers())
    MHD_add_response_header(r, name.c_str(), value.c_str());
  const MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

MHD_Result add_argument(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  auto* query = static_cast<std::map<std::string, std::string>*>(cls);
  if (key != nullptr && query->size() < 32) (*query)[key] = value != nullptr ? value : "";
  return MHD_YES;
}

bool from_loopback(MHD_Connection* c) {
  const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return false;
  const auto peer = base::Endpoint::from_sockaddr(info->client_addr);
  // ::ffff:127.0.0.1 (a dual-stack listener) is loopback too: AddressKey's normal form.
  return peer && clients::AddressKey::from(peer->address).address().is_loopback();
}

MHD_Result handle(void* cls, MHD_Connection* c, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload*/, size_t* upload_size,
                  void** /*state*/) {
  auto* serving = static_cast<MetricsServer::Serving*>(cls);
  if (*upload_size != 0) return MHD_NO;  // requests carry no body
  if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0)
    return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", "text/plain");
  if (std::strcmp(url, "/metrics") != 0) {
    if (!serving->route) return respond(c, MHD_HTTP_NOT_FOUND, "stratad serves /metrics only\n", "text/plain");
    web::Request request;
    request.path = url;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, &add_argument, &request.query);
    if (const char* k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key")) {
      request.api_key = k;
    } else if (const char* a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)) {
      if (std::strncmp(a, "Bearer ", 7) == 0) request.api_key = a + 7;
    }
    request.loopback = from_loopback(c);
    const web::Reply reply = serving->route(request);
    return respond(c, reply.status, reply.body, reply.type.c_str(), reply.cacheable ? "max-age=3600" : "no-store");
  }
  // One rendering per kRenderEveryS however many scrapes come.
  const int64_t now_ns = base::now_mono().count();
  if (!serving->valid || now_ns - serving->rendered_ns >= static_cast<int64_t>(MetricsServer::kRenderEveryS * 1e9)) {
    serving->text = serving->render();
    serving->rendered_ns = now_ns;
    serving->valid = true;
  }
  return respond(c, MHD_HTTP_OK, serving->text, "text/plain; version=0.0.4; charset=utf-8");
}

void notify_connection(void* cls, MHD_Connection* c, void** /*socket_context*/,
                       MHD_ConnectionNotificationCode code) {
  auto* serving = static_cast<MetricsServer::Serving*>(cls);
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    serving->connections[c] = {base::now_mono().count(), info ? info->connect_fd : -1, false};
  } else {
    serving->connections.erase(c);
  }
}

void request_completed(void* cls, MHD_Connection* c, void** /*state*/,
                       MHD_RequestTerminationCode /*why*/) {
  auto* serving = static_cast<MetricsServer::Serving*>(cls);
  const auto it = serving->connections.find(c);
  if (it != serving->connections.end()) it->second.since_ns = base::now_mono().count();
}

}  // namespace

MetricsServer::~MetricsServer() { stop(); }

std::string MetricsServer::bind(const base::Endpoint& listen) {
  where_ = listen.to_string();
  const auto fail = [&](const char* what) {
    const std::string e = "metrics: cannot listen on " + where_ + ": " + what + std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return e;
  };
  const bool v6 = listen.address.family == base::Family::kV6;
  fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return fail("socket: ");
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (v6) ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  sockaddr_storage ss{};
  const socklen_t len = listen.to_sockaddr(ss);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("");
  if (::listen(fd_, 64) != 0) return fail("listen: ");
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return "";
}

std::string MetricsServer::start(Render render, Route route) {
  if (fd_ < 0) return "metrics: not bound";
  serving_.render = std::move(render);
  serving_.route = std::move(route);
  // No internal thread: ours runs MHD's epoll loop and, between its rounds, the deadlines
  // (MHD closes descriptors only inside MHD_run_wait, on this thread, so shutting one down
  // from here never hits a descriptor number reused by another connection).
  const unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  errno = 0;
  daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &handle, &serving_,
                             MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(fd_),
                             MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxPerAddress,
                             MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutS,
                             MHD_OPTION_NOTIFY_CONNECTION, &notify_connection, &serving_,
                             MHD_OPTION_NOTIFY_COMPLETED, &request_completed, &serving_,
                             MHD_OPTION_END);
  if (daemon_ == nullptr)
    return "metrics: cannot serve on " + where_ + ": " +
           (errno != 0 ? std::strerror(errno) : "libmicrohttpd refused");
  fd_ = -1;  // MHD closes it at stop
  thread_ = std::thread([this] { run(); });
  return "";
}

void MetricsServer::run() {
  while (!stopping_.load(std::memory_order_relaxed)) {
    MHD_run_wait(daemon_, 100);
    enforce_deadlines(base::now_mono().count());
  }
}

void MetricsServer::enforce_deadlines(int64_t now_ns) {
  const auto cut_one = [&](Connection& conn) {
    // MHD sees the end of the stream on its next round and closes the connection itself.
    if (conn.fd >= 0) ::shutdown(conn.fd, SHUT_RDWR);
    conn.cut = true;
    cut_.fetch_add(1, std::memory_order_relaxed);
  };
  Connection* oldest = nullptr;
  size_t open = 0;
  for (auto& [c, conn] : serving_.connections) {
    if (conn.cut) continue;
    ++open;
    if (static_cast<double>(now_ns - conn.since_ns) > kRequestDeadlineS * 1e9) {
      cut_one(conn);
      --open;
    } else if (oldest == nullptr || conn.since_ns < oldest->since_ns) {
      oldest = &conn;
    }
  }
  if (open >= kMaxConnections && oldest != nullptr &&
      static_cast<double>(now_ns - oldest->since_ns) > kCrowdedAfterS * 1e9)
    cut_one(*oldest);
}

void MetricsServer::stop() {
  if (thread_.joinable()) {
    stopping_ = true;
    thread_.join();
  }
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
  daemon_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace strata::control
