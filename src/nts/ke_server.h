// The NTS-KE server (RFC 8915 section 4): TLS 1.3 over TCP 4460 with GnuTLS, one request per
// connection, answered with the negotiated protocol and AEAD, `cookies` cookies sealed with
// the current master key, and the configured Server and Port Negotiation records.
//
// Threads: one acceptor and `threads` TLS threads. The acceptor does everything that is cheap
// and must be global before any TLS work: the connection cap (`max_connections`, all threads
// together; more are closed at once), the access hook, and a per-prefix rate limit through
// the same Tracker (client table, limiter, unique counts, top talkers) as NTP, so that a
// client re-handshaking in a loop is held back, counted and visible. It hands accepted sockets
// to the TLS threads round-robin through a pipe each. A TLS thread runs non-blocking GnuTLS
// sessions on an epoll loop with one deadline per connection (`timeout`, the whole exchange,
// handshake included; connections are kept in accept order, so the oldest expires first).
//
// Certificates reload without a restart: set_credentials() swaps a shared pointer; a session
// keeps the credentials it started with, so no handshake in progress fails. TLS 1.3 only, ALPN
// "ntske/1" mandatory, no session tickets (nothing to resume: one request per connection).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/net.h"
#include "clients/limiter.h"
#include "clients/tracker.h"
#include "nts/cookies.h"
#include "stats/counters.h"
#include "stats/histogram.h"

namespace strata::nts {

// A certificate chain and its key, loaded once; shared by the sessions that use it.
class Credentials {
 public:
  ~Credentials();
  Credentials(const Credentials&) = delete;
  Credentials& operator=(const Credentials&) = delete;
  void* handle() const { return handle_; }  // gnutls_certificate_credentials_t
  const std::string& subject() const { return subject_; }
  int64_t expires_unix() const { return expires_; }

 private:
  friend struct CredentialsResult load_credentials(const std::string&, const std::string&);
  Credentials() = default;
  void* handle_ = nullptr;
  std::string subject_;
  int64_t expires_ = 0;
};

struct CredentialsResult {
  std::shared_ptr<const Credentials> credentials;  // null on error
  std::string error;                               // "file: reason"
};
// Reads a PEM certificate chain and its private key (they must match).
CredentialsResult load_credentials(const std::string& certificate, const std::string& key);

struct KeOptions {
  std::vector<base::Endpoint> listen;
  bool listen_is_default = false;  // a family the host lacks is skipped, not fatal
  unsigned threads = 1;
  unsigned max_connections = 512;
  double timeout_s = 2;
  unsigned cookies = 8;
  std::string ntp_server;  // "": no Server Negotiation record
  uint16_t ntp_port = 0;   // 0: no Port Negotiation record
  clients::LimitParams limits;  // per prefix: interval, burst, prefix lengths
};

class KeServer {
 public:
  // `tracker`: the acceptor's (KE clients' table, limiter, sketches). `admit`: access rules
  // (false: closed before TLS, counted as ke_refused_access); may be empty.
  KeServer(const KeOptions& options, clients::Tracker& tracker,
           std::function<bool(const base::IpAddress&)> admit = {});
  ~KeServer();
  KeServer(const KeServer&) = delete;
  KeServer& operator=(const KeServer&) = delete;

  // Binds and listens (before the privilege drop), and makes the threads' state, whose
  // counters may be read from then on. "" or the error.
  std::string bind();
  // The ports bound (for tests with port 0), in the order of options.listen.
  std::vector<base::Endpoint> bound() const { return bound_; }

  void set_credentials(std::shared_ptr<const Credentials> credentials);
  std::shared_ptr<const Credentials> credentials() const;
  void set_secrets(std::shared_ptr<const Secrets> secrets, const KeyPolicy& policy);

  // Starts the acceptor and TLS threads; stop() ends them and closes every connection (the
  // counters stay readable).
  std::string start();
  void stop();

  // Counters of every KE thread, summed; KE durations (accept to response sent).
  void add_counters(stats::CounterTotals& out) const;
  void add_durations(stats::HistogramCounts& out) const;
  unsigned open_connections() const { return open_.load(std::memory_order_relaxed); }

 private:
  struct Thread;
  void accept_loop();
  void tls_loop(Thread& t);

  KeOptions options_;
  clients::Tracker& tracker_;
  std::function<bool(const base::IpAddress&)> admit_;
  std::vector<int> listen_fds_;
  std::vector<base::Endpoint> bound_;
  int stop_fd_ = -1;  // eventfd: readable once stop() is called
  std::atomic<unsigned> open_{0};
  mutable std::mutex mutex_;  // credentials_ and secrets_ (read once per connection)
  std::shared_ptr<const Credentials> credentials_;
  std::shared_ptr<const Secrets> secrets_;
  KeyPolicy policy_;
  void* priority_ = nullptr;  // gnutls_priority_t
  std::unique_ptr<stats::WorkerCounters> accept_counters_;
  std::vector<std::unique_ptr<Thread>> threads_;
  std::thread acceptor_;
  bool started_ = false;
};

}  // namespace strata::nts
