// `strata load`: a load generator in the spirit of ntpperf over ordinary sockets. A sender
// thread paces batches of requests (open loop at --rate, or closed loop with a window for
// --max) from many source addresses (IP_PKTINFO picks the source per datagram, so one socket
// speaks for millions of 127.x.y.z clients); a receiver thread validates every reply against
// the request it answers (found through the origin timestamp) and records latencies.
// Always bounded: it stops after --duration plus --timeout.
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
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/resolve.h"
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
  if (slash == std::string::npos) return std::nullopt;
  const auto addr = base::IpAddress::parse(cidr.substr(0, slash));
  if (!addr) return std::nullopt;
  int len = -1;
  try {
    len = std::stoi(cidr.substr(slash + 1));
  } catch (...) {
    return std::nullopt;
  }
  const int bits = addr->family == base::Family::kV4 ? 32 : 128;
  if (len < 0 || len > bits) return std::nullopt;
  SourceRange r;
  r.first = *addr;
  for (int b = len; b < bits; ++b) r.first.bytes[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
  const int host_bits = std::min(bits - len, 40);  // 2^40 sources is plenty
  const uint64_t span = uint64_t{1} << host_bits;
  if (span <= 2) {
    r.size = 1;
    r.first = *addr;
  } else {
    r.first = r.at(1);
    r.size = span - 2;
  }
  r.pktinfo = true;
  return r;
}

struct Slot {
  std::atomic<uint64_t> seq{~uint64_t{0}};
  std::atomic<int64_t> sent_ns{0};  // monotonic; 0 once answered
};

struct Results {
  std::atomic<uint64_t> received{0};   // datagrams
  std::atomic<uint64_t> matched{0};    // answered one of our outstanding requests
  std::atomic<uint64_t> valid{0};
  std::atomic<uint64_t> kod{0};
  std::atomic<uint64_t> invalid{0};    // matched but wrong mode/version/timestamps
  std::atomic<uint64_t> unmatched{0};  // unknown origin, duplicate, or too late
  stats::Histogram latency_ns;
  stats::Histogram processing_ns;
};

class LoadRun {
 public:
  LoadRun(const LoadOptions& opt, const base::Endpoint& server, const SourceRange& sources)
      : opt_(opt), server_(server), sources_(sources) {
    std::random_device rd;
    key_ = (uint64_t{rd()} << 32) ^ rd();
    const double in_flight = opt.max ? 4.0 * window() : (*opt.rate) * (opt.timeout + 1.0) * 2;
    const uint64_t want = std::bit_ceil(static_cast<uint64_t>(std::max(65536.0, in_flight)));
    ring_ = std::vector<Slot>(std::min<uint64_t>(want, uint64_t{1} << 22));
    mask_ = ring_.size() - 1;
  }

  unsigned window() const { return opt_.window ? opt_.window : 64 * opt_.sockets; }

  std::string open_sockets() {
    const bool v4 = server_.address.family == base::Family::kV4;
    for (unsigned i = 0; i < opt_.sockets; ++i) {
      const int fd = ::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return std::string("socket: ") + std::strerror(errno);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
      base::Endpoint any{base::IpAddress{server_.address.family, {}}, 0};
      sockaddr_storage ss{};
      const socklen_t len = any.to_sockaddr(ss);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0)
        return std::string("bind: ") + std::strerror(errno);
      fds_.push_back(fd);
    }
    return "";
  }

  ~LoadRun() {
    for (int fd : fds_) ::close(fd);
  }

  // Runs sender and receiver; returns an error text if sending failed outright.
  std::string run() {
    ::prctl(PR_SET_TIMERSLACK, 1UL);  // precise pacing sleeps
    start_ = base::now_mono();
    std::thread receiver([this] { receive_loop(); });
    const std::string error = send_loop();
    send_end_ = base::now_mono();
    sending_done_.store(true);
    receiver.join();
    return error;
  }

  nlohmann::json report() const;
  void print_text(const nlohmann::json& r) const;

 private:
  std::string send_loop();
  void receive_loop();
  void handle_reply(const uint8_t* data, size_t len, int64_t now_mono, base::RealTime now_real);

  const LoadOptions& opt_;
  base::Endpoint server_;
  SourceRange sources_;
  uint64_t key_ = 0;
  std::vector<Slot> ring_;
  uint64_t mask_ = 0;
  std::vector<int> fds_;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> send_errors_{0};
  std::atomic<bool> sending_done_{false};
  Nanos start_{}, send_end_{};
  Results results_;
};

std::string LoadRun::send_loop() {
  sockaddr_storage server_addr{};
  const socklen_t server_len = server_.to_sockaddr(server_addr);
  const bool v4 = server_.address.family == base::Family::kV4;
  std::vector<std::array<uint8_t, wire::kHeaderSize>> bufs(kBatch);
  std::vector<iovec> iovs(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  struct Control {
    alignas(cmsghdr) uint8_t bytes[CMSG_SPACE(sizeof(in6_pktinfo))];
  };
  std::vector<Control> controls(kBatch);
  const Nanos duration =
      std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(opt_.duration));
  const double rate = opt_.rate.value_or(0);
  uint64_t sent = 0, lost = 0, last_matched = 0;
  Nanos last_progress = start_;
  size_t socket = 0;
  for (;;) {
    const Nanos now = base::now_mono();
    const Nanos elapsed = now - start_;
    if (elapsed >= duration) break;
    uint64_t allowed;
    if (!opt_.max) {
      const double secs = std::chrono::duration<double>(elapsed).count();
      const auto due = static_cast<uint64_t>(rate * secs) + 1;
      if (due <= sent) {
        const double next = static_cast<double>(sent) / rate;  // when request `sent` is due
        const auto wait = std::chrono::duration<double>(next - secs);
        if (wait.count() > 0) std::this_thread::sleep_for(wait);
        continue;
      }
      allowed = due - sent;
    } else {
      const uint64_t matched = results_.matched.load(std::memory_order_relaxed);
      if (matched != last_matched) {
        last_matched = matched;
        last_progress = now;
      }
      const uint64_t in_flight = sent - matched - lost;
      if (in_flight >= window()) {
        if (now - last_progress > kStall) {  // replies stopped: count the window as lost
          lost += in_flight;
          last_progress = now;
        } else {
          std::this_thread::sleep_for(std::chrono::microseconds(10));
        }
        continue;
      }
      allowed = window() - in_flight;
    }
    const size_t n = std::min<uint64_t>(allowed, kBatch);
    const int64_t stamp = now.count();
    for (size_t i = 0; i < n; ++i) {
      const uint64_t seq = sent + i;
      Slot& slot = ring_[seq & mask_];
      slot.sent_ns.store(stamp, std::memory_order_relaxed);
      slot.seq.store(seq, std::memory_order_release);
      wire::build_client_request(static_cast<uint8_t>(opt_.version), 6,
                                 base::NtpTimestamp{seq ^ key_}, bufs[i]);
      iovs[i] = {bufs[i].data(), wire::kHeaderSize};
      msghdr& h = msgs[i].msg_hdr;
      h = msghdr{};
      h.msg_name = &server_addr;
      h.msg_namelen = server_len;
      h.msg_iov = &iovs[i];
      h.msg_iovlen = 1;
      if (!sources_.pktinfo) continue;
      const base::IpAddress src = sources_.at(seq % opt_.clients);
      std::memset(controls[i].bytes, 0, sizeof controls[i].bytes);
      cmsghdr* c = reinterpret_cast<cmsghdr*>(controls[i].bytes);
      h.msg_control = controls[i].bytes;
      if (v4) {
        in_pktinfo info{};
        std::memcpy(&info.ipi_spec_dst, src.bytes.data(), 4);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
        h.msg_controllen = CMSG_SPACE(sizeof info);
      } else {
        in6_pktinfo info{};
        std::memcpy(&info.ipi6_addr, src.bytes.data(), 16);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
        h.msg_controllen = CMSG_SPACE(sizeof info);
      }
    }
    // Published before sending: a reply can come back before sendmmsg returns.
    sent_.store(sent + n, std::memory_order_release);
    size_t done = 0;
    while (done < n) {
      const int r = ::sendmmsg(fds_[socket], msgs.data() + done, static_cast<unsigned>(n - done), 0);
      if (r > 0) {
        done += static_cast<size_t>(r);
        continue;
      }
      if (errno == EINTR) continue;
      if (sent == 0 && done == 0)
        return fmt::format("cannot send to {}: {}{}", server_.to_string(), std::strerror(errno),
                           sources_.pktinfo ? " (are the source addresses local to this host?)" : "");
      send_errors_.fetch_add(1, std::memory_order_relaxed);
      ++done;
    }
    sent += n;
    socket = (socket + 1) % fds_.size();
  }
  return "";
}

void LoadRun::receive_loop() {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < fds_.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fds_[i], &ev);
  }
  std::vector<std::array<uint8_t, 512>> bufs(kBatch);
  std::vector<iovec> iovs(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  const Nanos linger = std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(opt_.timeout));
  for (;;) {
    if (sending_done_.load(std::memory_order_acquire)) {
      const uint64_t answered = results_.matched.load(std::memory_order_relaxed);
      if (answered >= sent_.load() || base::now_mono() - send_end_ >= linger) break;
    }
    epoll_event events[16];
    const int n = ::epoll_wait(ep, events, 16, 5);
    for (int e = 0; e < n; ++e) {
      const int fd = fds_[events[e].data.u64];
      for (;;) {
        for (size_t i = 0; i < kBatch; ++i) {
          iovs[i] = {bufs[i].data(), bufs[i].size()};
          msgs[i].msg_hdr = msghdr{};
          msgs[i].msg_hdr.msg_iov = &iovs[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int r = ::recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (r <= 0) break;
        const int64_t now_mono = base::now_mono().count();
        const base::RealTime now_real = base::now_real();
        for (int i = 0; i < r; ++i) handle_reply(bufs[i].data(), msgs[i].msg_len, now_mono, now_real);
        if (r < static_cast<int>(kBatch)) break;
      }
    }
  }
  ::close(ep);
}

void LoadRun::handle_reply(const uint8_t* data, size_t len, int64_t now_mono,
                           base::RealTime now_real) {
  auto bump = [](std::atomic<uint64_t>& c) { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); };
  bump(results_.received);
  if (len < wire::kHeaderSize) {
    bump(results_.unmatched);
    return;
  }
  const wire::Header h = wire::decode_header({data, len});
  const uint64_t seq = h.origin.raw ^ key_;
  Slot& slot = ring_[seq & mask_];
  if (seq >= sent_.load(std::memory_order_acquire) ||
      slot.seq.load(std::memory_order_acquire) != seq) {
    bump(results_.unmatched);
    return;
  }
  const int64_t sent_ns = slot.sent_ns.exchange(0, std::memory_order_relaxed);
  if (sent_ns == 0) {  // duplicate
    bump(results_.unmatched);
    return;
  }
  bump(results_.matched);
  results_.latency_ns.add(static_cast<uint64_t>(std::max<int64_t>(0, now_mono - sent_ns)));
  if (h.mode != wire::Mode::kServer || h.version != opt_.version) {
    bump(results_.invalid);
    return;
  }
  if (wire::is_kod(h)) {
    bump(results_.kod);
    return;
  }
  const double processing = base::ntp_diff_seconds(h.transmit, h.receive);
  const double offset = base::ntp_diff_seconds(h.receive, base::to_ntp(now_real));
  if (h.receive.is_zero() || h.transmit.is_zero() || processing < 0 ||
      processing > kMaxProcessing || std::fabs(offset) > kSaneOffset) {
    bump(results_.invalid);
    return;
  }
  bump(results_.valid);
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
  const uint64_t sent = sent_.load();
  const uint64_t matched = results_.matched.load();
  return {{"server", server_.to_string()},
          {"clients", opt_.clients},
          {"sockets", opt_.sockets},
          {"mode", opt_.max ? "max" : "rate"},
          {"target_rate", opt_.rate.value_or(0)},
          {"duration", secs},
          {"sent", sent},
          {"send_errors", send_errors_.load()},
          {"received", results_.received.load()},
          {"valid", results_.valid.load()},
          {"kod", results_.kod.load()},
          {"invalid", results_.invalid.load()},
          {"unmatched", results_.unmatched.load()},
          {"rate", static_cast<double>(sent) / secs},
          {"reply_rate", static_cast<double>(matched) / secs},
          {"response_ratio", sent ? static_cast<double>(matched) / static_cast<double>(sent) : 0.0},
          {"latency_us", quantiles_us(results_.latency_ns)},
          {"server_time_us", quantiles_us(results_.processing_ns)}};
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
}

}  // namespace

int run_load(const LoadOptions& opt) {
  std::vector<base::Endpoint> servers;
  try {
    servers = resolve(opt.server, 123, FamilyFilter::kAny);
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
  LoadRun run(opt, server, sources);
  if (const std::string e = run.open_sockets(); !e.empty()) {
    fmt::print(stderr, "strata load: {}\n", e);
    return 2;
  }
  if (const std::string e = run.run(); !e.empty()) {
    fmt::print(stderr, "strata load: {}\n", e);
    return 2;
  }
  const nlohmann::json r = run.report();
  if (opt.json)
    fmt::print("{}\n", r.dump(2));
  else
    run.print_text(r);
  return r["valid"].get<uint64_t>() + r["kod"].get<uint64_t>() > 0 ? 0 : 1;
}

}  // namespace strata::cli
