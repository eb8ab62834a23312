// `strata load`: a load generator in the spirit of ntpperf over ordinary sockets. One thread
// paces batches of requests (open loop at --rate, or closed loop with a window for --max)
// from many source addresses (IP_PKTINFO picks the source per datagram, so one socket speaks
// for millions of 127.x.y.z clients), validates every reply against the request it answers
// (found through the origin timestamp) and records latencies. Always bounded: it stops after
// --duration plus --timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <bit>
#include <cerrno>
#include <thread>
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "control/json_text.h"
#include "cli/commands.h"
#include "cli/resolve.h"
#include "io/pktinfo.h"
#include "nts/ke_client.h"
#include "nts/packet.h"
#include "stats/histogram.h"
#include "wire/packet.h"

namespace strata::cli {

namespace {

using base::Nanos;

constexpr size_t kBatch = 64;            // datagrams per sendmmsg/recvmmsg
constexpr int kSocketBuffer = 8 << 20;   // bytes; replies must not be dropped on our side
constexpr double kSaneOffset = 10.0;     // s: a reply further from our clock is invalid
constexpr double kMaxProcessing = 1.0;   // s: T3 - T2 beyond this is invalid
constexpr Nanos kStall = std::chrono::milliseconds(50);  // --max: window presumed lost
constexpr Nanos kPacingTick = std::chrono::microseconds(100);  // open loop: one batch per tick
constexpr size_t kTxBuffer = 1024;      // an NTS request with 7 placeholders is 956 octets
constexpr size_t kRxBuffer = 2048;
constexpr size_t kMaxPool = 16384;      // NTS cookies kept for the next requests
constexpr size_t kPoolLow = 1024;       // below: requests ask for 7 more cookies

// NTS: the session of one KE, shared by every simulated client (a server does not tie a
// cookie to an address), and the pool of unused cookies that every reply refills.
struct NtsSession {
  nts::Siv c2s, s2c;
  nts::Random random;
  std::array<uint8_t, 24> uid_salt{};
  std::vector<nts::ClientCookie> pool;  // a stack: the freshest cookie first
  uint64_t naks = 0, bad_auth = 0, no_cookie = 0, cookies_received = 0, growth_requests = 0;
  uint64_t unchecked = 0;  // replies not decrypted (--check-every)
  uint64_t request_bytes = 0, reply_bytes = 0;
  double ke_seconds = 0;
  size_t ke_cookies = 0;
  // Each request's UID: its sequence number (as the origin carries it) and a salt.
  std::array<uint8_t, 32> uid(uint64_t tag) const {
    std::array<uint8_t, 32> u{};
    for (int i = 0; i < 8; ++i) u[static_cast<size_t>(i)] = static_cast<uint8_t>(tag >> (56 - 8 * i));
    std::copy(uid_salt.begin(), uid_salt.end(), u.begin() + 8);
    return u;
  }
};

// A contiguous range of source addresses.
struct SourceRange {
  base::IpAddress first;  // first usable address
  uint64_t size = 1;      // usable addresses
  bool pktinfo = false;   // false: let the kernel pick the source
  base::IpAddress at(uint64_t i) const {
    base::IpAddress a = first;
    // Add i to the address as a big-endian integer (low 64 bits are enough for any prefix
    // we accept).
    const int last = a.family == base::Family::kV4 ? 3 : 15;
    uint64_t carry = i;
    for (int b = last; b >= 0 && carry != 0; --b) {
      const uint64_t sum = a.bytes[b] + (carry & 0xFF);
      a.bytes[b] = static_cast<uint8_t>(sum);
      carry = (carry >> 8) + (sum >> 8);
    }
    return a;
  }
};

// Parses CIDR; the usable range skips the network address and the (v4) broadcast address.
std::optional<SourceRange> parse_prefix(const std::string& cidr) {
  const size_t slash = cidr.find('/');
  if (slash == std::string::npos) return std::nullopt;  // the length is required here
  const auto prefix = base::Cidr::parse(cidr);
  if (!prefix) return std::nullopt;
  const int bits = prefix->address.family == base::Family::kV4 ? 32 : 128;
  const int len = prefix->bits;
  SourceRange r;
  r.first = prefix->address;
  const int host_bits = std::min(bits - len, 40);  // 2^40 sources is plenty
  const uint64_t span = uint64_t{1} << host_bits;
  if (span <= 2) {
    r.size = 1;
    r.first = *base::IpAddress::parse(cidr.substr(0, slash));  // as given, not masked
  } else {
    r.first = r.at(1);
    r.size = span - 2;
  }
  r.pktinfo = true;
  return r;
}

struct Slot {
  uint64_t seq = ~uint64_t{0};
  int64_t sent_ns = 0;  // monotonic; 0 once answered
};

struct Results {
  uint64_t received = 0;   // datagrams
  uint64_t matched = 0;    // answered one of our outstanding requests
  uint64_t valid = 0;
  uint64_t kod = 0;
  uint64_t invalid = 0;    // matched but wrong mode/version/timestamps
  uint64_t unmatched = 0;  // unknown origin, duplicate, or too late
  uint64_t interleaved = 0;  // --interleaved: valid replies in interleaved mode
  stats::Histogram latency_ns;
  stats::Histogram processing_ns;
};

// One thread does everything: on one core, a sender and a receiver thread would spend their
// time switching between each other. Requests go out in batches (one per pacing tick in
// open loop), replies are drained between batches, and the loop sleeps in epoll until the
// next batch is due or a reply arrives.
class LoadRun {
 public:
  LoadRun(const LoadOptions& opt, const base::Endpoint& server, const SourceRange& sources,
          NtsSession* nts = nullptr)
      : opt_(opt), server_(server), sources_(sources), nts_(nts) {
    std::random_device rd;
    key_ = (uint64_t{rd()} << 32) ^ rd();
    receive_key_ = ((uint64_t{rd()} << 32) ^ rd()) | 1;
    if (opt.interleaved) last_receive_.assign(opt.clients, 0);
    const double in_flight = opt.max ? 4.0 * window() : (*opt.rate) * (opt.timeout + 1.0) * 2;
    const uint64_t want = std::bit_ceil(static_cast<uint64_t>(std::max(65536.0, in_flight)));
    ring_.resize(std::min<uint64_t>(want, uint64_t{1} << 22));
    mask_ = ring_.size() - 1;
    server_len_ = server_.to_sockaddr(server_addr_);
  }

  ~LoadRun() {
    for (int fd : fds_) ::close(fd);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  unsigned window() const { return opt_.window ? opt_.window : 64 * opt_.sockets; }

  std::string open_sockets() {
    const bool v4 = server_.address.family == base::Family::kV4;
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    for (unsigned i = 0; i < opt_.sockets; ++i) {
      const int fd = ::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return std::string("socket: ") + std::strerror(errno);
      fds_.push_back(fd);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
      base::Endpoint any{base::IpAddress{server_.address.family, {}}, 0};
      sockaddr_storage ss{};
      const socklen_t len = any.to_sockaddr(ss);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0)
        return std::string("bind: ") + std::strerror(errno);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    }
    return "";
  }

  // Runs until --duration of sending plus up to --timeout for the last replies. Returns an
  // error text if sending failed outright.
  std::string run();
  nlohmann::json report() const;
  nlohmann::json nts_report() const;
  nlohmann::json warnings(uint64_t sent, uint64_t kod, uint64_t matched) const;
  void print_text(const nlohmann::json& r) const;

 private:
  std::string send_batch(size_t n, Nanos now);
  void drain(size_t socket, base::RealTime now_real);
  void handle_reply(const uint8_t* data, size_t len, int64_t now_mono, base::RealTime now_real);
  void wait(Nanos timeout);

  const LoadOptions& opt_;
  base::Endpoint server_;
  SourceRange sources_;
  NtsSession* nts_ = nullptr;
  uint64_t key_ = 0;
  // --interleaved: a request's receive field is seq ^ receive_key_ (an interleaved reply
  // echoes it as origin), and per client address the last reply's receive timestamp.
  uint64_t receive_key_ = 0;
  std::vector<uint64_t> last_receive_;
  std::vector<Slot> ring_;
  uint64_t mask_ = 0;
  std::vector<int> fds_;
  int epoll_fd_ = -1;
  sockaddr_storage server_addr_{};
  socklen_t server_len_ = 0;
  // Batch buffers, reused by every sendmmsg and recvmmsg.
  struct Control {
    alignas(cmsghdr) uint8_t bytes[io::kPktinfoSpace];
  };
  struct {
    std::array<std::array<uint8_t, kTxBuffer>, kBatch> bufs;
    std::array<iovec, kBatch> iovs;
    std::array<mmsghdr, kBatch> msgs;
    std::array<Control, kBatch> controls;
  } tx_{};
  struct {
    std::array<std::array<uint8_t, kRxBuffer>, kBatch> bufs;
    std::array<iovec, kBatch> iovs;
    std::array<mmsghdr, kBatch> msgs;
  } rx_{};
  uint64_t sent_ = 0;
  uint64_t send_errors_ = 0;
  size_t next_socket_ = 0;
  Nanos start_{}, send_end_{};
  Results results_;
};

std::string LoadRun::run() {
  const Nanos duration =
      std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(opt_.duration));
  const Nanos linger =
      std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(opt_.timeout));
  const double rate = opt_.rate.value_or(0);
  // Open loop: one batch per tick, so the pacing costs few syscalls at any rate.
  const auto tick_batch = static_cast<uint64_t>(
      std::clamp(rate * std::chrono::duration<double>(kPacingTick).count(), 1.0, double(kBatch)));
  uint64_t lost = 0, last_matched = 0;
  start_ = base::now_mono();
  Nanos last_progress = start_;
  bool sending = true;
  // Open loop sends exactly rate x duration requests: a generator that fell behind its pacing
  // (a busy machine) catches up when the time is over instead of sending fewer.
  const auto total = static_cast<uint64_t>(
      std::llround(rate * std::chrono::duration<double>(duration).count()));
  for (;;) {
    const Nanos now = base::now_mono();
    Nanos sleep = std::chrono::milliseconds(5);
    const bool time_over = now - start_ >= duration;
    if (sending && (opt_.max ? time_over : sent_ >= total)) {
      sending = false;
      send_end_ = now;
    }
    if (sending && nts_ != nullptr && nts_->pool.empty()) {
      // No cookie left to send with: only replies bring more. None for --timeout: stop.
      if (results_.matched != last_matched) {
        last_matched = results_.matched;
        last_progress = now;
      } else if (now - last_progress > linger) {
        sending = false;
        send_end_ = now;
        continue;
      }
    }
    if (sending && !opt_.max) {
      const double secs = std::chrono::duration<double>(now - start_).count();
      const uint64_t due =
          time_over ? total : std::min<uint64_t>(total, static_cast<uint64_t>(rate * secs) + 1);
      if (due >= sent_ + tick_batch || (due == total && due > sent_)) {
        if (auto e = send_batch(std::min<uint64_t>(due - sent_, kBatch), now); !e.empty()) return e;
        sleep = Nanos{0};
      } else {  // until the next batch is due
        sleep = std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(
            static_cast<double>(sent_ + tick_batch - 1) / rate - secs));
      }
    } else if (sending) {
      if (results_.matched != last_matched) {
        last_matched = results_.matched;
        last_progress = now;
      }
      const uint64_t in_flight = sent_ - results_.matched - lost;
      if (in_flight < window()) {
        if (auto e = send_batch(std::min<uint64_t>(window() - in_flight, kBatch), now); !e.empty())
          return e;
        sleep = Nanos{0};
      } else if (now - last_progress > kStall) {  // replies stopped: count the window lost
        lost += in_flight;
        last_progress = now;
      } else {
        sleep = std::chrono::microseconds(500);
      }
    } else if (results_.matched >= sent_ || now - send_end_ >= linger) {
      return "";
    }
    wait(std::max(sleep, Nanos{0}));
  }
}

void LoadRun::wait(Nanos timeout) {
  epoll_event events[16];
  const timespec ts{static_cast<time_t>(timeout.count() / 1'000'000'000),
                    static_cast<long>(timeout.count() % 1'000'000'000)};
  const int n = ::epoll_pwait2(epoll_fd_, events, 16, &ts, nullptr);
  if (n <= 0) return;
  const base::RealTime now_real = base::now_real();
  for (int i = 0; i < n; ++i) drain(events[i].data.u64, now_real);
}

std::string LoadRun::send_batch(size_t n, Nanos now) {
  auto& bufs = tx_.bufs;
  auto& iovs = tx_.iovs;
  auto& msgs = tx_.msgs;
  if (nts_ != nullptr) {  // as many as there are cookies for
    if (nts_->pool.size() < n) ++nts_->no_cookie;
    n = std::min(n, nts_->pool.size());
    if (n == 0) return "";
  }
  for (size_t i = 0; i < n; ++i) {
    const uint64_t seq = sent_ + i;
    ring_[seq & mask_] = Slot{seq, now.count()};
    wire::build_client_request(static_cast<uint8_t>(opt_.version), 6,
                               base::NtpTimestamp{seq ^ key_}, bufs[i]);
    if (opt_.interleaved) {
      base::store_be64(bufs[i].data() + 24, last_receive_[seq % opt_.clients]);
      base::store_be64(bufs[i].data() + 32, seq ^ receive_key_);
    }
    size_t length = wire::kHeaderSize;
    if (nts_ != nullptr) {
      // Checking every reply, each cookie is spent once and replaced from the replies; checking
      // one in --check-every, the pool's cookies are used in turn (a server keeps no state
      // about cookies, so it serves a reused one like any other).
      const bool reuse = opt_.check_every > 1 && nts_->pool.size() >= kPoolLow;
      const nts::ClientCookie cookie = reuse ? nts_->pool[seq % nts_->pool.size()] : nts_->pool.back();
      if (!reuse) nts_->pool.pop_back();
      // 0-7 placeholders, as real clients ask for what they lack; fewer when the pool is full.
      // Below kPoolLow the pool grows first (7 placeholders: 8 cookies back for 1 spent),
      // else as asked; none when it is full.
      const unsigned placeholders = nts_->pool.size() < kPoolLow             ? 7
                                    : nts_->pool.size() + 8 >= kMaxPool      ? 0
                                    : opt_.placeholders >= 0                 ? static_cast<unsigned>(opt_.placeholders)
                                                                             : static_cast<unsigned>(seq % 8);
      if (nts_->pool.size() < kPoolLow) ++nts_->growth_requests;
      length = nts::append_client_fields(bufs[i], nts_->uid(seq ^ key_), cookie.view(), placeholders,
                                         nts_->c2s, nts_->random);
      nts_->request_bytes += length;
    }
    iovs[i] = {bufs[i].data(), length};
    msghdr& h = msgs[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &server_addr_;
    h.msg_namelen = server_len_;
    h.msg_iov = &iovs[i];
    h.msg_iovlen = 1;
    if (!sources_.pktinfo) continue;
    io::set_source_address(h, tx_.controls[i].bytes, sources_.at(seq % opt_.clients));
  }
  const int fd = fds_[next_socket_];
  next_socket_ = (next_socket_ + 1) % fds_.size();
  size_t done = 0;
  while (done < n) {
    const int r = ::sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(n - done), 0);
    if (r > 0) {
      done += static_cast<size_t>(r);
      continue;
    }
    if (errno == EINTR) continue;
    if (sent_ == 0 && done == 0)
      return fmt::format("cannot send to {}: {}{}", server_.to_string(), std::strerror(errno),
                         sources_.pktinfo ? " (are the source addresses local to this host?)" : "");
    ++send_errors_;
    ++done;
  }
  sent_ += n;
  return "";
}

void LoadRun::drain(size_t socket, base::RealTime now_real) {
  auto& bufs = rx_.bufs;
  auto& iovs = rx_.iovs;
  auto& msgs = rx_.msgs;
  for (;;) {
    for (size_t i = 0; i < kBatch; ++i) {
      iovs[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = ::recvmmsg(fds_[socket], msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (r <= 0) return;
    const int64_t now_mono = base::now_mono().count();
    for (int i = 0; i < r; ++i) handle_reply(bufs[i].data(), msgs[i].msg_len, now_mono, now_real);
    if (r < static_cast<int>(kBatch)) return;
  }
}

void LoadRun::handle_reply(const uint8_t* data, size_t len, int64_t now_mono,
                           base::RealTime now_real) {
  ++results_.received;
  if (len < wire::kHeaderSize) {
    ++results_.unmatched;
    return;
  }
  const wire::Header h = wire::decode_header({data, len});
  // A basic reply's origin is our transmit field, an interleaved one's our receive field.
  const auto outstanding = [&](uint64_t s) {
    const Slot& x = ring_[s & mask_];
    return s < sent_ && x.seq == s && x.sent_ns != 0;
  };
  uint64_t seq = h.origin.raw ^ key_;
  bool interleaved = false;
  if (!outstanding(seq) && opt_.interleaved && outstanding(h.origin.raw ^ receive_key_)) {
    seq = h.origin.raw ^ receive_key_;
    interleaved = true;
  }
  Slot& slot = ring_[seq & mask_];
  if (!outstanding(seq)) {  // unknown, stale or duplicate
    ++results_.unmatched;
    return;
  }
  const int64_t sent_ns = std::exchange(slot.sent_ns, 0);
  ++results_.matched;
  results_.latency_ns.add(static_cast<uint64_t>(std::max<int64_t>(0, now_mono - sent_ns)));
  if (h.mode != wire::Mode::kServer || h.version != opt_.version) {
    ++results_.invalid;
    return;
  }
  if (nts_ != nullptr) {
    nts_->reply_bytes += len;
    if (opt_.check_every > 1 && nts_->pool.size() >= kPoolLow && seq % opt_.check_every != 0) {
      // Not checked (a benchmark's cheaper generator): NTS-shaped and not a NAK is all we see.
      if (len <= wire::kHeaderSize) {
        ++nts_->bad_auth;
        ++results_.invalid;
        return;
      }
      ++nts_->unchecked;
    } else {
    std::array<nts::ClientCookie, 8> got{};
    size_t received = 0;
    switch (nts::check_reply({data, len}, nts_->uid(seq ^ key_), nts_->s2c, got, received)) {
      case nts::ReplyCheck::kOk: break;
      case nts::ReplyCheck::kNak:
        ++nts_->naks;
        ++results_.kod;
        return;
      default:
        ++nts_->bad_auth;
        ++results_.invalid;
        return;
    }
    nts_->cookies_received += received;
    for (size_t i = 0; i < received && nts_->pool.size() < kMaxPool; ++i) nts_->pool.push_back(got[i]);
    }
  }
  if (wire::is_kod(h)) {
    ++results_.kod;
    return;
  }
  const double processing = base::ntp_diff_seconds(h.transmit, h.receive);
  const double offset = base::ntp_diff_seconds(h.receive, base::to_ntp(now_real));
  // An interleaved reply's transmit time is its previous reply's: before this receive time.
  const bool order_ok = interleaved ? processing <= 0 && -processing < kSaneOffset
                                    : processing >= 0 && processing <= kMaxProcessing;
  if (h.receive.is_zero() || h.transmit.is_zero() || !order_ok || std::fabs(offset) > kSaneOffset) {
    ++results_.invalid;
    return;
  }
  ++results_.valid;
  if (opt_.interleaved) last_receive_[seq % opt_.clients] = h.receive.raw;
  if (interleaved)
    ++results_.interleaved;
  else
    results_.processing_ns.add(static_cast<uint64_t>(processing * 1e9));
}

nlohmann::json quantiles_us(const stats::Histogram& h) {
  stats::HistogramCounts c;
  h.add_to(c);
  return {{"p50", c.quantile(0.5) / 1e3}, {"p99", c.quantile(0.99) / 1e3},
          {"p999", c.quantile(0.999) / 1e3}, {"count", c.total()}};
}

nlohmann::json LoadRun::report() const {
  const double secs = std::max(1e-9, std::chrono::duration<double>(send_end_ - start_).count());
  const uint64_t sent = sent_;
  const uint64_t matched = results_.matched;
  return {{"server", server_.to_string()},
          {"clients", opt_.clients},
          {"sockets", opt_.sockets},
          {"mode", opt_.max ? "max" : "rate"},
          {"target_rate", opt_.rate.value_or(0)},
          {"duration", secs},
          {"sent", sent},
          {"send_errors", send_errors_},
          {"received", results_.received},
          {"valid", results_.valid},
          {"interleaved", results_.interleaved},
          {"kod", results_.kod},
          {"invalid", results_.invalid},
          {"unmatched", results_.unmatched},
          {"rate", static_cast<double>(sent) / secs},
          {"reply_rate", static_cast<double>(matched) / secs},
          {"response_ratio", sent ? static_cast<double>(matched) / static_cast<double>(sent) : 0.0},
          {"latency_us", quantiles_us(results_.latency_ns)},
          {"server_time_us", quantiles_us(results_.processing_ns)},
          {"warnings", warnings(sent, results_.kod, matched)},
          {"nts", nts_report()}};
}

nlohmann::json LoadRun::nts_report() const {
  if (nts_ == nullptr) return nullptr;
  const double sent = static_cast<double>(std::max<uint64_t>(1, sent_));
  return {{"ke_seconds", nts_->ke_seconds},
          {"ke_cookies", nts_->ke_cookies},
          {"naks", nts_->naks},
          {"bad_auth", nts_->bad_auth},
          {"cookies_received", nts_->cookies_received},
          {"cookie_stalls", nts_->no_cookie},
          {"growth_requests", nts_->growth_requests},
          {"unchecked", nts_->unchecked},
          {"request_octets", static_cast<double>(nts_->request_bytes) / sent},
          {"reply_octets", static_cast<double>(nts_->reply_bytes) / std::max<double>(1, static_cast<double>(results_.matched))}};
}

// What a result that looks like a broken server usually means. Most requests answered with
// KoD RATE, or most unanswered, is the rate limiter at work far more often than a fault:
// the generator makes each of its addresses poll far faster than any real client.
nlohmann::json LoadRun::warnings(uint64_t sent, uint64_t kod, uint64_t matched) const {
  nlohmann::json out = nlohmann::json::array();
  if (opt_.max && (server_.address.is_loopback() || server_.address.is_unspecified()))
    out.push_back("--max against a server on this host: the generator shares the server's cores, "
                  "so the rate is a lower bound for the server alone (bench/throughput runs the "
                  "server and the generator on cores of their own)");
  if (sent == 0) return out;
  const double secs = std::max(1e-9, std::chrono::duration<double>(send_end_ - start_).count());
  const double per_client = static_cast<double>(sent) / secs / std::max(1u, opt_.clients);
  const std::string pace =
      fmt::format("{} sent {} requests/s (a real client polls every 64-1024 s)",
                  opt_.clients == 1 ? std::string("its one source address")
                                    : fmt::format("each of its {} source addresses", opt_.clients), per_client >= 10 ? fmt::format("{:.0f}", per_client) : fmt::format("{:.2g}", per_client));
  if (matched == 0 && kod == 0) {
    out.push_back(fmt::format("no reply at all: nothing answers NTP at {}, or something drops the "
                              "requests on the way",
                              server_.to_string()));
  } else if (2 * kod > sent) {
    out.push_back(fmt::format("most requests were answered with KoD RATE: the server's rate "
                              "limiter is at work, not failing; {}. For a throughput test use "
                              "more --clients or a lower --rate, or turn the limiter off in "
                              "the server's config ([ratelimit] enabled = false)",
                              pace));
  } else if (2 * matched < sent) {
    out.push_back(fmt::format("most requests got no reply: most likely the server's rate limiter "
                              "(stratad answers what is over the limit with at most one KoD per 8 s "
                              "per address and drops the rest: `strata stats` counts them as "
                              "\"rate limited\"), else its receive queues overflowed; {}. For a "
                              "throughput test use more --clients or a lower --rate, or turn the "
                              "limiter off in the server's config ([ratelimit] enabled = false)",
                              pace));
  }
  return out;
}

void LoadRun::print_text(const nlohmann::json& r) const {
  fmt::print("server {}  clients {}  sockets {}  {}  {:.2f} s\n", r["server"].get<std::string>(),
             opt_.clients, opt_.sockets,
             opt_.max ? fmt::format("closed loop, window {}", window())
                      : fmt::format("open loop at {:.0f}/s", *opt_.rate),
             r["duration"].get<double>());
  fmt::print("sent        {:>12}  ({:.0f}/s)\n", r["sent"].get<uint64_t>(), r["rate"].get<double>());
  fmt::print("received    {:>12}  ({:.0f}/s)\n", r["received"].get<uint64_t>(),
             r["reply_rate"].get<double>());
  fmt::print("valid       {:>12}\n", r["valid"].get<uint64_t>());
  if (opt_.interleaved)
    fmt::print("interleaved {:>12}  (of the valid replies)\n", r["interleaved"].get<uint64_t>());
  fmt::print("KoD         {:>12}\n", r["kod"].get<uint64_t>());
  fmt::print("invalid     {:>12}\n", r["invalid"].get<uint64_t>());
  fmt::print("unmatched   {:>12}  (unknown origin, duplicate or late)\n", r["unmatched"].get<uint64_t>());
  fmt::print("response    {:>11.3f}%\n", 100 * r["response_ratio"].get<double>());
  const auto& l = r["latency_us"];
  fmt::print("latency     p50 {:.1f} us  p99 {:.1f} us  p99.9 {:.1f} us\n", l["p50"].get<double>(),
             l["p99"].get<double>(), l["p999"].get<double>());
  const auto& s = r["server_time_us"];
  fmt::print("server time p50 {:.1f} us  p99 {:.1f} us  p99.9 {:.1f} us  (reply T3 - T2)\n",
             s["p50"].get<double>(), s["p99"].get<double>(), s["p999"].get<double>());
  if (const auto& n = r["nts"]; !n.is_null())
    fmt::print("nts         KE {:.3f} s, {} cookies; {} NAKs, {} not authentic; {:.0f} octets per "
               "request, {:.0f} per reply; {} cookies received\n",
               n["ke_seconds"].get<double>(), n["ke_cookies"].get<size_t>(), n["naks"].get<uint64_t>(),
               n["bad_auth"].get<uint64_t>(), n["request_octets"].get<double>(), n["reply_octets"].get<double>(),
               n["cookies_received"].get<uint64_t>());
  for (const auto& w : r["warnings"]) fmt::print("note: {}\n", w.get<std::string>());
}

}  // namespace

// `--ke-only`: `sockets` threads, each running NTS-KE exchanges back to back for `duration`.
int run_ke_load(const LoadOptions& opt, const nts::KeClientOptions& ko) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, failed{0};
  std::vector<stats::Histogram> latency(opt.sockets);
  std::vector<std::string> errors(opt.sockets);
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 0; i < opt.sockets; ++i)
    threads.emplace_back([&, i] {
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = std::chrono::steady_clock::now();
        const nts::KeClientResult r = nts::ke_exchange(ko);
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
        if (r.error.empty() && !r.cookies.empty()) {
          done.fetch_add(1, std::memory_order_relaxed);
          latency[i].add(static_cast<uint64_t>(ns));
        } else {
          failed.fetch_add(1, std::memory_order_relaxed);
          errors[i] = r.error;
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.duration));
  stop.store(true);
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats::HistogramCounts all;
  for (const auto& h : latency) h.add_to(all);
  std::string last_error;
  for (const auto& e : errors)
    if (!e.empty()) last_error = e;
  const nlohmann::json r = {{"server", fmt::format("{}:{}", ko.host, ko.port)},
                            {"concurrency", opt.sockets},
                            {"duration", secs},
                            {"completed", done.load()},
                            {"failed", failed.load()},
                            {"rate", static_cast<double>(done.load()) / secs},
                            {"latency_us", {{"p50", all.quantile(0.5) / 1e3}, {"p99", all.quantile(0.99) / 1e3}}},
                            {"last_error", last_error}};
  if (opt.json) {
    fmt::print("{}\n", control::json_text(r, 2));
  } else {
    fmt::print("NTS-KE {}  {} at once  {:.2f} s\ncompleted   {:>10}  ({:.0f}/s)\nfailed      {:>10}{}\n"
               "latency     p50 {:.0f} us  p99 {:.0f} us\n",
               r["server"].get<std::string>(), opt.sockets, secs, done.load(), r["rate"].get<double>(), failed.load(),
               last_error.empty() ? "" : "  (last: " + last_error + ")", all.quantile(0.5) / 1e3, all.quantile(0.99) / 1e3);
  }
  return done.load() > 0 ? 0 : 1;
}

int run_load(const LoadOptions& opt) {
  std::unique_ptr<NtsSession> nts_session;
  std::string target = opt.server;
  if (opt.ke_only && opt.nts.empty()) {
    fmt::print(stderr, "strata load: --ke-only needs --nts HOST[:PORT]\n");
    return 2;
  }
  if (!opt.nts.empty()) {
    nts::KeClientOptions ko;
    try {
      std::tie(ko.host, ko.port) = split_host_port(opt.nts, 4460);
    } catch (const std::exception& e) {
      fmt::print(stderr, "strata load: --nts {}\n", e.what());
      return 2;
    }
    ko.ca_file = opt.ca;
    if (opt.ke_only) return run_ke_load(opt, ko);
    const nts::KeClientResult r = nts::ke_exchange(ko);
    if (!r.error.empty()) {
      fmt::print(stderr, "strata load: NTS-KE with {}: {}\n", opt.nts, r.error);
      return 1;
    }
    nts_session = std::make_unique<NtsSession>();
    nts_session->c2s.set_key(r.keys.c2s);
    nts_session->s2c.set_key(r.keys.s2c);
    nts_session->random.fill(nts_session->uid_salt);
    nts_session->ke_seconds = r.seconds;
    nts_session->ke_cookies = r.cookies.size();
    for (const auto& c : r.cookies) {
      nts::ClientCookie cc;
      if (c.size() > cc.bytes.size()) continue;
      std::copy(c.begin(), c.end(), cc.bytes.begin());
      cc.length = c.size();
      nts_session->pool.push_back(cc);
    }
    if (target.empty())
      target = fmt::format("{}:{}", r.ntp_server.find(':') != std::string::npos ? "[" + r.ntp_server + "]" : r.ntp_server,
                           r.ntp_port);
  }
  if (target.empty()) {
    fmt::print(stderr, "strata load: --server is required (or --nts)\n");
    return 2;
  }
  std::vector<base::Endpoint> servers;
  try {
    servers = resolve(target, 123, FamilyFilter::kAny);
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata load: {}\n", e.what());
    return 2;
  }
  const base::Endpoint server = servers.front();
  SourceRange sources;
  sources.first = base::IpAddress{server.address.family, {}};
  std::string prefix = opt.source_prefix;
  if (prefix.empty() && opt.clients > 1) {
    if (server.address.family == base::Family::kV4 && server.address.is_loopback()) {
      prefix = "127.0.0.0/8";
    } else if (server.address.is_loopback()) {
      fmt::print(stderr, "strata load: --clients > 1 needs that many source addresses: IPv6 "
                         "loopback is the one address ::1 (IPv4's is 127.0.0.0/8); give "
                         "--source-prefix with addresses configured on this host, e.g. in a "
                         "network namespace, or use --clients 1\n");
      return 2;
    } else {
      fmt::print(stderr, "strata load: --clients > 1 needs a loopback server or --source-prefix\n");
      return 2;
    }
  }
  if (!prefix.empty()) {
    const auto range = parse_prefix(prefix);
    if (!range || range->first.family != server.address.family) {
      fmt::print(stderr, "strata load: --source-prefix {}: expected a CIDR of the server's family\n",
                 prefix);
      return 2;
    }
    if (opt.clients > range->size) {
      fmt::print(stderr, "strata load: {} clients do not fit in {}\n", opt.clients, prefix);
      return 2;
    }
    sources = *range;
  }
  LoadRun run(opt, server, sources, nts_session.get());
  if (const std::string e = run.open_sockets(); !e.empty()) {
    fmt::print(stderr, "strata load: {}\n", e);
    return 2;
  }
  ::prctl(PR_SET_TIMERSLACK, 1UL);  // precise pacing sleeps
  if (const std::string e = run.run(); !e.empty()) {
    fmt::print(stderr, "strata load: {}\n", e);
    return 2;
  }
  const nlohmann::json r = run.report();
  if (opt.json)
    fmt::print("{}\n", control::json_text(r, 2));
  else
    run.print_text(r);
  return r["valid"].get<uint64_t>() + r["kod"].get<uint64_t>() > 0 ? 0 : 1;
}

}  // namespace strata::cli
