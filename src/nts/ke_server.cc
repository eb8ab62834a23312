// NTS-KE server (see ke_server.h).
#include "nts/ke_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <list>

#include <fmt/format.h>

#include "base/ntp_time.h"
#include "nts/ke_records.h"
#include "nts/random.h"

namespace strata::nts {

using stats::Counter;

namespace {

constexpr char kAlpn[] = "ntske/1";
constexpr char kExporterLabel[] = "EXPORTER-network-time-security";
// TLS 1.3 only (RFC 8915 section 3: "MUST NOT ... earlier than 1.3").
constexpr char kPriority[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
constexpr int kTlsNice = 10;

std::string gnutls_text(int rc) { return gnutls_strerror(rc); }

// After the ClientHello is processed: without ALPN "ntske/1" the handshake is aborted there,
// with a no_application_protocol alert (GNUTLS_ALPN_MANDATORY alone lets a client that sends
// no ALPN extension at all complete the handshake).
int require_alpn(gnutls_session_t session, unsigned, unsigned, unsigned, const gnutls_datum_t*) {
  gnutls_datum_t proto{};
  if (gnutls_alpn_get_selected_protocol(session, &proto) < 0 || proto.size != sizeof(kAlpn) - 1 ||
      std::memcmp(proto.data, kAlpn, proto.size) != 0)
    return GNUTLS_E_NO_APPLICATION_PROTOCOL;
  return 0;
}

}  // namespace

Credentials::~Credentials() {
  if (handle_ != nullptr) gnutls_certificate_free_credentials(static_cast<gnutls_certificate_credentials_t>(handle_));
}

CredentialsResult load_credentials(const std::string& certificate, const std::string& key) {
  CredentialsResult r;
  gnutls_certificate_credentials_t cred = nullptr;
  if (const int rc = gnutls_certificate_allocate_credentials(&cred); rc < 0) {
    r.error = fmt::format("{}: {}", certificate, gnutls_text(rc));
    return r;
  }
  std::shared_ptr<Credentials> c(new Credentials());
  c->handle_ = cred;
  // Which file is at fault: the certificate alone first, then the pair.
  gnutls_datum_t data{};
  if (const int rc = gnutls_load_file(certificate.c_str(), &data); rc < 0) {
    r.error = fmt::format("{}: cannot read it: {}", certificate, std::strerror(errno != 0 ? errno : EIO));
    return r;
  }
  gnutls_x509_crt_t* list = nullptr;
  unsigned count = 0;
  const int crt_rc = gnutls_x509_crt_list_import2(&list, &count, &data, GNUTLS_X509_FMT_PEM, 0);
  gnutls_free(data.data);
  if (crt_rc < 0 || count == 0) {
    r.error = fmt::format("{}: not a PEM certificate: {}", certificate,
                          crt_rc < 0 ? gnutls_text(crt_rc) : "no certificate in it");
    return r;
  }
  gnutls_datum_t dn{};
  if (gnutls_x509_crt_get_dn3(list[0], &dn, 0) >= 0) {
    c->subject_.assign(reinterpret_cast<const char*>(dn.data), dn.size);
    gnutls_free(dn.data);
  }
  c->expires_ = static_cast<int64_t>(gnutls_x509_crt_get_expiration_time(list[0]));
  for (unsigned i = 0; i < count; ++i) gnutls_x509_crt_deinit(list[i]);
  gnutls_free(list);
  if (::access(key.c_str(), R_OK) != 0) {
    r.error = fmt::format("{}: cannot read it: {}", key, std::strerror(errno));
    return r;
  }
  if (const int rc = gnutls_certificate_set_x509_key_file2(cred, certificate.c_str(), key.c_str(),
                                                            GNUTLS_X509_FMT_PEM, nullptr, 0);
      rc < 0) {
    r.error = fmt::format("{}: {} (with the certificate {})", key, gnutls_text(rc), certificate);
    return r;
  }
  r.credentials = std::move(c);
  return r;
}

// One TLS thread: its epoll, its pipe of new sockets, its connections, counters and jar.
struct KeServer::Thread {
  enum class State : uint8_t { kHandshake, kReading, kWriting, kClosing };
  struct Conn {
    int fd = -1;
    gnutls_session_t session = nullptr;
    std::shared_ptr<const Credentials> credentials;  // alive as long as the session
    int64_t started_ns = 0;  // monotonic
    State state = State::kHandshake;
    std::vector<uint8_t> in;
    std::vector<uint8_t> out;
    size_t sent = 0;
    Counter outcome = Counter::ke_completed;  // counted once the response is sent
    unsigned cookies = 0;
    uint32_t events = 0;  // registered with epoll
    std::list<Conn>::iterator self;  // its node in `conns` (list iterators stay valid)
  };
  int epoll_fd = -1;
  int pipe_read = -1;
  int pipe_write = -1;
  std::list<Conn> conns;  // in accept order: the front has the nearest deadline
  stats::WorkerCounters counters;
  stats::Histogram durations;
  CookieJar jar;
  Random random;
  std::thread thread;
};

KeServer::KeServer(const KeOptions& options, clients::Tracker& tracker,
                   std::function<bool(const base::IpAddress&)> admit)
    : options_(options), tracker_(tracker), admit_(std::move(admit)),
      accept_counters_(std::make_unique<stats::WorkerCounters>()) {
  if (options_.threads == 0) options_.threads = 1;
}

KeServer::~KeServer() {
  stop();
  for (auto& t : threads_) {
    ::close(t->epoll_fd);
    ::close(t->pipe_read);
    ::close(t->pipe_write);
  }
  for (int fd : listen_fds_) ::close(fd);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  if (priority_ != nullptr) gnutls_priority_deinit(static_cast<gnutls_priority_t>(priority_));
}

std::string KeServer::bind() {
  for (const base::Endpoint& ep : options_.listen) {
    const bool v6 = ep.address.family == base::Family::kV6;
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const auto fail = [&](const char* what) {
      const int e = errno;
      if (fd >= 0) ::close(fd);
      return fmt::format("nts-ke: cannot listen on {}: {}{}", ep.to_string(), what, std::strerror(e));
    };
    if (fd < 0) {
      if (options_.listen_is_default && (errno == EAFNOSUPPORT)) continue;
      return fail("socket: ");
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_storage ss{};
    const socklen_t len = ep.to_sockaddr(ss);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      if (options_.listen_is_default && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)) {
        ::close(fd);
        continue;
      }
      return fail("");
    }
    if (::listen(fd, 1024) != 0) return fail("listen: ");
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
    if (auto b = base::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&bound))) bound_.push_back(*b);
    listen_fds_.push_back(fd);
  }
  if (listen_fds_.empty()) return "nts-ke: no address to listen on";
  // The threads' state exists from here on (their counters are read by others from now),
  // their threads only from start().
  gnutls_priority_t prio = nullptr;
  const char* where = nullptr;
  if (const int rc = gnutls_priority_init(&prio, kPriority, &where); rc < 0)
    return fmt::format("nts-ke: TLS priority \"{}\": {}", kPriority, gnutls_text(rc));
  priority_ = prio;
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return fmt::format("nts-ke: eventfd: {}", std::strerror(errno));
  for (unsigned i = 0; i < options_.threads; ++i) {
    auto t = std::make_unique<Thread>();
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return fmt::format("nts-ke: pipe: {}", std::strerror(errno));
    t->pipe_read = p[0];
    t->pipe_write = p[1];
    t->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (t->epoll_fd < 0) return fmt::format("nts-ke: epoll: {}", std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the pipe
    ::epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, t->pipe_read, &ev);
    ev.data.ptr = &t->pipe_write;  // the stop eventfd (any non-null, non-connection tag)
    ::epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, stop_fd_, &ev);
    threads_.push_back(std::move(t));
  }
  return "";
}

void KeServer::set_credentials(std::shared_ptr<const Credentials> credentials) {
  std::lock_guard<std::mutex> lock(mutex_);
  credentials_ = std::move(credentials);
}

std::shared_ptr<const Credentials> KeServer::credentials() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return credentials_;
}

void KeServer::set_secrets(std::shared_ptr<const Secrets> secrets, const KeyPolicy& policy) {
  std::lock_guard<std::mutex> lock(mutex_);
  secrets_ = std::move(secrets);
  policy_ = policy;
}

std::string KeServer::start() {
  if (started_) return "";
  if (listen_fds_.empty() || threads_.empty()) return "nts-ke: not bound";
  std::atomic<unsigned> ready{0};
  for (auto& t : threads_) {
    Thread* raw = t.get();
    raw->thread = std::thread([this, raw, &ready] {
      // Below the NTP workers: a TLS handshake (a few hundred microseconds of public-key
      // work) never delays a waiting NTP batch on a shared core. SCHED_IDLE: a waking worker
      // preempts it at once (at nice 10 the plain-NTP p99 went from 0.11-0.19 ms to 0.41-0.47
      // ms with KE flat out on the same core; at SCHED_IDLE it stays, bench/nts). The price:
      // where NTP saturates every core, handshakes wait (and time out, ke_timeout) first.
      const sched_param none{};
      if (::sched_setscheduler(::gettid(), SCHED_IDLE, &none) != 0)
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kTlsNice);
      ready.fetch_add(1);
      tls_loop(*raw);
    });
  }
  // Done before start() returns: the system-call filter that follows has no setpriority.
  while (ready.load() < threads_.size()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  acceptor_ = std::thread([this] { accept_loop(); });
  started_ = true;
  return "";
}

void KeServer::stop() {
  if (!started_) return;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t w = ::write(stop_fd_, &one, sizeof one);
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& t : threads_)
    if (t->thread.joinable()) t->thread.join();
  started_ = false;
}

void KeServer::add_counters(stats::CounterTotals& out) const {
  for (size_t i = 0; i < stats::kCounterCount; ++i) {
    out[i] += accept_counters_->get(static_cast<Counter>(i));
    for (const auto& t : threads_) out[i] += t->counters.get(static_cast<Counter>(i));
  }
}

void KeServer::add_durations(stats::HistogramCounts& out) const {
  for (const auto& t : threads_) t->durations.add_to(out);
}

void KeServer::accept_loop() {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < listen_fds_.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, listen_fds_[i], &ev);
  }
  epoll_event stop_ev{};
  stop_ev.events = EPOLLIN;
  stop_ev.data.u64 = ~uint64_t{0};
  ::epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd_, &stop_ev);
  stats::WorkerCounters& c = *accept_counters_;
  size_t next_thread = 0;
  std::array<epoll_event, 16> events{};
  for (;;) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 250);
    if (n < 0 && errno != EINTR) break;
    // The KE clients' top talkers and sketches publish what they counted (as a worker does
    // when its receive comes back empty), so `strata top --ke` is at most 250 ms behind.
    tracker_.idle(base::now_real().time_since_epoch().count());
    bool stopping = false;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == ~uint64_t{0}) {
        stopping = true;
        continue;
      }
      const int lfd = listen_fds_[events[i].data.u64];
      for (int k = 0; k < 64; ++k) {  // a bounded burst per wake-up, then the others' turn
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        const int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        c.add(Counter::ke_accepted);
        const auto peer = base::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
        sockaddr_storage ls{};
        socklen_t llen = sizeof ls;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&ls), &llen);
        const auto local = base::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ls));
        if (!peer || open_.load(std::memory_order_relaxed) >= options_.max_connections) {
          c.add(Counter::ke_refused_connections);
          ::close(fd);
          continue;
        }
        if (admit_ && !admit_(peer->address)) {
          c.add(Counter::ke_refused_access);
          ::close(fd);
          continue;
        }
        const int64_t now_ns = base::now_real().time_since_epoch().count();
        const clients::Observation o =
            tracker_.observe(peer->address, local ? local->address : base::IpAddress{}, 3, 4, now_ns,
                             options_.limits,
                             options_.limits.enabled ? clients::Treatment::kLimited : clients::Treatment::kUnlimited,
                             0, clients::kFlagNts);
        if (o.verdict == clients::Verdict::kDrop || o.verdict == clients::Verdict::kKod) {
          c.add(Counter::ke_rate_limited);
          ::close(fd);
          continue;
        }
        // The handshake's flights are several small writes: without this, Nagle's algorithm
        // holds each one for the client's delayed ACK (40 ms a handshake on Linux).
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Thread& t = *threads_[next_thread++ % threads_.size()];
        open_.fetch_add(1, std::memory_order_relaxed);
        if (::write(t.pipe_write, &fd, sizeof fd) != static_cast<ssize_t>(sizeof fd)) {
          open_.fetch_sub(1, std::memory_order_relaxed);
          c.add(Counter::ke_refused_connections);
          ::close(fd);
        }
      }
    }
    if (stopping) break;
  }
  ::close(ep);
}

void KeServer::tls_loop(Thread& t) {
  using State = Thread::State;
  const int64_t timeout_ns = static_cast<int64_t>(options_.timeout_s * 1e9);
  const auto close_conn = [&](std::list<Thread::Conn>::iterator it, bool count_duration) {
    if (count_duration) t.durations.add(static_cast<uint64_t>(base::now_mono().count() - it->started_ns));
    if (it->session != nullptr) gnutls_deinit(it->session);
    // Out of the epoll set before the close: a close alone leaves it registered while another
    // process holds the descriptor (a child between fork and exec), and its next event would
    // name this freed connection (TSan caught it in the unit tests, which run openssl).
    ::epoll_ctl(t.epoll_fd, EPOLL_CTL_DEL, it->fd, nullptr);
    ::close(it->fd);
    t.conns.erase(it);
    open_.fetch_sub(1, std::memory_order_relaxed);
  };
  const auto want = [&](Thread::Conn& c, uint32_t events) {
    if (c.events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &c;
    ::epoll_ctl(t.epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
    c.events = events;
  };
  const auto direction = [&](Thread::Conn& c) {
    want(c, gnutls_record_get_direction(c.session) == 1 ? EPOLLOUT : EPOLLIN);
  };
  // The response to a complete request (or the error for a bad one).
  const auto respond = [&](Thread::Conn& c, const ParseResult& r) {
    if (r.status == ParseStatus::kError) {
      c.out = encode_error(r.error);
      c.outcome = r.error == KeError::kUnrecognizedCritical ? Counter::ke_unrecognized_critical
                                                            : Counter::ke_bad_request;
      return;
    }
    KeResponse response;
    response.negotiated = negotiate(r.request);
    if (!options_.ntp_server.empty()) response.server = options_.ntp_server;
    if (options_.ntp_port != 0) response.port = options_.ntp_port;
    std::shared_ptr<const Secrets> secrets;
    KeyPolicy policy;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      secrets = secrets_;
      policy = policy_;
    }
    if (response.negotiated.usable() && secrets && !secrets->secrets.empty()) {
      SessionKeys keys;
      const uint16_t aead = *response.negotiated.aead;
      for (uint8_t direction_octet : {uint8_t{0}, uint8_t{1}}) {
        // Context: protocol id (NTPv4: 0), AEAD id, 0 for C2S or 1 for S2C (RFC 8915 5.1).
        const uint8_t context[5] = {0, 0, static_cast<uint8_t>(aead >> 8), static_cast<uint8_t>(aead),
                                    direction_octet};
        Key& k = direction_octet == 0 ? keys.c2s : keys.s2c;
        if (gnutls_prf_rfc5705(c.session, sizeof(kExporterLabel) - 1, kExporterLabel, sizeof context,
                               reinterpret_cast<const char*>(context), k.size(),
                               reinterpret_cast<char*>(k.data())) < 0) {
          c.out = encode_error(KeError::kInternal);
          c.outcome = Counter::ke_failed_tls;
          return;
        }
      }
      const int64_t now_s = base::now_real().time_since_epoch().count() / 1'000'000'000;
      for (unsigned i = 0; i < options_.cookies; ++i) {
        std::vector<uint8_t> cookie(kCookieSize);
        t.jar.seal(*secrets, policy, now_s, keys, t.random, std::span<uint8_t, kCookieSize>(cookie.data(), kCookieSize));
        response.cookies.push_back(std::move(cookie));
      }
      explicit_bzero(&keys, sizeof keys);
      c.cookies = options_.cookies;
      c.outcome = Counter::ke_completed;
    } else {
      c.outcome = Counter::ke_not_negotiated;
    }
    c.out = encode_response(response);
  };
  // Advances one connection as far as it goes without blocking; false when it is done (closed).
  const auto advance = [&](std::list<Thread::Conn>::iterator it) {
    Thread::Conn& c = *it;
    for (;;) {
      switch (c.state) {
        case State::kHandshake: {
          const int rc = gnutls_handshake(c.session);
          if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
            direction(c);
            return true;
          }
          if (rc < 0) {
            t.counters.add(rc == GNUTLS_E_NO_APPLICATION_PROTOCOL ? Counter::ke_failed_alpn
                                                                  : Counter::ke_failed_tls);
            close_conn(it, false);
            return false;
          }
          gnutls_datum_t proto{};
          if (gnutls_alpn_get_selected_protocol(c.session, &proto) < 0 || proto.size != sizeof(kAlpn) - 1 ||
              std::memcmp(proto.data, kAlpn, proto.size) != 0) {
            t.counters.add(Counter::ke_failed_alpn);
            close_conn(it, false);
            return false;
          }
          c.state = State::kReading;
          break;
        }
        case State::kReading: {
          std::array<uint8_t, 2048> buf{};
          const ssize_t n = gnutls_record_recv(c.session, buf.data(), buf.size());
          if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            direction(c);
            return true;
          }
          if (n <= 0) {  // closed or failed before End of Message
            t.counters.add(n == 0 ? Counter::ke_bad_request : Counter::ke_failed_tls);
            close_conn(it, false);
            return false;
          }
          c.in.insert(c.in.end(), buf.begin(), buf.begin() + n);
          const ParseResult r = parse_request(c.in);
          if (r.status == ParseStatus::kNeedMore) break;
          respond(c, r);
          c.state = State::kWriting;
          break;
        }
        case State::kWriting: {
          while (c.sent < c.out.size()) {
            const ssize_t n = gnutls_record_send(c.session, c.out.data() + c.sent, c.out.size() - c.sent);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
              direction(c);
              return true;
            }
            if (n < 0) {
              t.counters.add(Counter::ke_failed_tls);
              close_conn(it, false);
              return false;
            }
            c.sent += static_cast<size_t>(n);
          }
          t.counters.add(c.outcome);
          if (c.outcome == Counter::ke_completed) t.counters.add(Counter::ke_cookies_issued, c.cookies);
          c.state = State::kClosing;
          break;
        }
        case State::kClosing: {
          // close_notify, as the RFC asks the server to close; not waited for beyond a try.
          const int rc = gnutls_bye(c.session, GNUTLS_SHUT_WR);
          if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
            direction(c);
            return true;
          }
          close_conn(it, true);
          return false;
        }
      }
    }
  };
  const auto add_conn = [&](int fd) {
    std::shared_ptr<const Credentials> cred = credentials();
    gnutls_session_t session = nullptr;
    if (!cred || gnutls_init(&session, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS | GNUTLS_NO_SIGNAL) < 0) {
      t.counters.add(Counter::ke_failed_tls);
      ::close(fd);
      open_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    gnutls_priority_set(session, static_cast<gnutls_priority_t>(priority_));
    gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE,
                           static_cast<gnutls_certificate_credentials_t>(cred->handle()));
    gnutls_certificate_server_set_request(session, GNUTLS_CERT_IGNORE);
    const gnutls_datum_t alpn{reinterpret_cast<unsigned char*>(const_cast<char*>(kAlpn)), sizeof(kAlpn) - 1};
    gnutls_alpn_set_protocols(session, &alpn, 1, GNUTLS_ALPN_MANDATORY);
    gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_POST, require_alpn);
    gnutls_transport_set_int(session, fd);
    t.conns.push_back({});
    auto it = std::prev(t.conns.end());
    it->self = it;
    it->fd = fd;
    it->session = session;
    it->credentials = std::move(cred);
    it->started_ns = base::now_mono().count();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &*it;
    it->events = EPOLLIN;
    ::epoll_ctl(t.epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    advance(it);
  };

  std::array<epoll_event, 64> events{};
  bool stopping = false;
  while (!stopping) {
    int wait_ms = 1000;
    if (!t.conns.empty()) {
      const int64_t left = t.conns.front().started_ns + timeout_ns - base::now_mono().count();
      wait_ms = static_cast<int>(std::clamp<int64_t>(left / 1'000'000 + 1, 0, 1000));
    }
    const int n = ::epoll_wait(t.epoll_fd, events.data(), static_cast<int>(events.size()), wait_ms);
    for (int i = 0; i < std::max(n, 0); ++i) {
      void* tag = events[i].data.ptr;
      if (tag == nullptr) {  // new sockets from the acceptor
        int fds[16];
        ssize_t got;
        while ((got = ::read(t.pipe_read, fds, sizeof fds)) > 0)
          for (ssize_t k = 0; k < got / static_cast<ssize_t>(sizeof(int)); ++k) add_conn(fds[k]);
        continue;
      }
      if (tag == &t.pipe_write) {
        stopping = true;
        continue;
      }
      advance(static_cast<Thread::Conn*>(tag)->self);
    }
    // Deadlines: the oldest first.
    const int64_t now = base::now_mono().count();
    while (!t.conns.empty() && t.conns.front().started_ns + timeout_ns <= now) {
      t.counters.add(Counter::ke_timeout);
      close_conn(t.conns.begin(), false);
    }
  }
  while (!t.conns.empty()) close_conn(t.conns.begin(), false);
}

}  // namespace strata::nts
