// Time sources (see sources.h).
#include "clock/sources.h"

#include <poll.h>
#include <sys/timex.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "base/net.h"

namespace strata::clock {

using base::NtpTimestamp;
using base::RealTime;

std::optional<uint32_t> parse_reference_id(const std::string& text) {
  if (const auto ip = base::IpAddress::parse(text); ip && ip->family == base::Family::kV4)
    return ip->v4_host_order();
  if (text.empty() || text.size() > 4) return std::nullopt;
  uint32_t id = 0;
  for (size_t i = 0; i < 4; ++i) {
    uint8_t c = 0;
    if (i < text.size()) {
      c = static_cast<uint8_t>(text[i]);
      if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')))
        return std::nullopt;
    }
    id = (id << 8) | c;
  }
  return id;
}

std::string format_reference_id(uint32_t refid, uint8_t stratum) {
  if (stratum <= 1) {  // kiss code or clock name: ASCII
    std::string s;
    for (int shift = 24; shift >= 0; shift -= 8) {
      const char c = static_cast<char>((refid >> shift) & 0xFF);
      if (c == 0) break;
      s.push_back(c >= 32 && c < 127 ? c : '.');
    }
    return s;
  }
  return base::IpAddress::v4(refid).to_string();
}

int8_t measure_precision() {
  // 1000 reads take ~20-50 us; keep the smallest step between distinct readings.
  constexpr int kReads = 1000;
  int64_t best = 1'000'000'000;
  RealTime last = base::now_real();
  for (int i = 0; i < kReads; ++i) {
    const RealTime t = base::now_real();
    const int64_t d = (t - last).count();
    if (d > 0 && d < best) best = d;
    last = t;
  }
  const int p = static_cast<int>(std::ceil(std::log2(static_cast<double>(best) * 1e-9)));
  return static_cast<int8_t>(std::clamp(p, -30, 0));
}

TimeState state_from_kernel(const KernelStatus& k, const Options& opt, int8_t precision,
                            NtpTimestamp reference, RealTime now) {
  TimeState s;
  s.source = Source::kKernel;
  s.precision = precision;
  s.stratum = opt.stratum;
  s.reference_id = opt.reference_id;
  s.reference = reference;
  s.root_delay = opt.root_delay;
  const double maxerror = static_cast<double>(k.maxerror_us) * 1e-6;
  s.root_dispersion = maxerror + opt.root_dispersion;
  s.dispersion_rate = kKernelMaxErrorRate;
  s.as_of = now;
  s.synchronised =
      (k.status & STA_UNSYNC) == 0 && k.state != TIME_ERROR && maxerror < kKernelMaxErrorLimit;
  if (k.status & STA_INS)
    s.leap = wire::Leap::kInsert;
  else if (k.status & STA_DEL)
    s.leap = wire::Leap::kDelete;
  else
    s.leap = wire::Leap::kNone;
  return s;
}

TimeState state_from_local(const Options& opt, int8_t precision, RealTime now) {
  TimeState s;
  s.source = Source::kLocal;
  s.synchronised = true;
  s.leap = wire::Leap::kNone;
  s.precision = precision;
  s.stratum = opt.stratum;
  s.reference_id = opt.reference_id;
  // Like chrony's local reference: the reference time follows the clock.
  s.reference = base::to_ntp(now);
  s.root_delay = opt.root_delay;
  s.root_dispersion = opt.root_dispersion;
  s.dispersion_rate = 0;
  s.as_of = now;
  return s;
}

TimeState state_from_mirror(const NtpSample& m, int8_t precision) {
  const wire::Header& r = m.reply;
  TimeState s;
  s.source = Source::kMirror;
  s.precision = precision;
  s.leap = r.leap;
  s.stratum = r.stratum;
  s.reference_id = r.reference_id;
  s.reference = r.reference;
  s.as_of = m.received;
  s.dispersion_rate = kPhi;
  const OffsetDelay od = offset_delay(m);
  s.root_delay = r.root_delay.to_seconds();
  s.root_dispersion = r.root_dispersion.to_seconds() + std::fabs(od.offset) + od.delay / 2;
  s.synchronised = r.leap != wire::Leap::kUnsynchronised && r.stratum >= 1 && r.stratum <= 15 &&
                   s.root_delay / 2 + s.root_dispersion < kMaxRootDistance;
  // Never more than the 16.16 field holds (a system clock days away from the server's).
  s.root_dispersion = std::min(s.root_dispersion, kMaxRootDistance * 2);
  return s;
}

std::string mirror_reply_problem(const NtpSample& m) {
  const wire::Header& r = m.reply;
  if (r.stratum == 0) {
    std::string code;
    for (int shift = 24; shift >= 0; shift -= 8) {
      const char c = static_cast<char>((r.reference_id >> shift) & 0xFF);
      code += (c >= 0x20 && c < 0x7F) ? c : '?';
    }
    return "kiss-o'-death " + code;
  }
  if (r.version < wire::kMinVersion || r.version > wire::kMaxVersion) return fmt::format("reply of version {}", r.version);
  if (r.receive.raw == 0 || r.transmit.raw == 0) return "reply with a zero timestamp";
  if (base::ntp_diff_seconds(r.transmit, r.receive) < 0) return "reply sent before it was received";
  if (r.root_delay.to_seconds() >= kMaxRootDistance || r.root_dispersion.to_seconds() >= kMaxRootDistance)
    return fmt::format("root delay {:.3f} s, root dispersion {:.3f} s", r.root_delay.to_seconds(),
                       r.root_dispersion.to_seconds());
  return {};
}

OffsetDelay offset_delay(const NtpSample& m) {
  const NtpTimestamp t1 = base::to_ntp(m.sent);
  const NtpTimestamp t4 = base::to_ntp(m.received);
  OffsetDelay od;
  od.offset = (base::ntp_diff_seconds(m.reply.receive, t1) +
               base::ntp_diff_seconds(m.reply.transmit, t4)) / 2;
  od.delay = std::max(0.0, base::ntp_diff_seconds(t4, t1) -
                               base::ntp_diff_seconds(m.reply.transmit, m.reply.receive));
  return od;
}

KernelStatus read_kernel_status() {
  timex tx{};
  tx.modes = 0;  // read only
  KernelStatus k;
  k.state = adjtimex(&tx);
  k.status = tx.status;
  k.maxerror_us = tx.maxerror;
  k.esterror_us = tx.esterror;
  return k;
}

std::string_view reply_auth_name(ReplyAuth a) {
  switch (a) {
    case ReplyAuth::kNotAsked: return "none";
    case ReplyAuth::kOk: return "ok";
    case ReplyAuth::kBad: return "bad MAC";
    case ReplyAuth::kCryptoNak: return "crypto-NAK";
    case ReplyAuth::kMissing: return "no MAC";
  }
  return "?";
}

NtpClient::NtpClient(const base::Endpoint& server, uint8_t version, const auth::Key* key)
    : server_(server), version_(version), key_(key) {
  fd_ = ::socket(server.address.family == base::Family::kV4 ? AF_INET : AF_INET6,
                 SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) {
    last_error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  sockaddr_storage ss{};
  const socklen_t len = server.to_sockaddr(ss);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0)
    last_error_ = std::string("connect: ") + std::strerror(errno);
}

NtpClient::~NtpClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<NtpSample> NtpClient::poll(base::Nanos timeout) {
  if (fd_ < 0) return std::nullopt;
  // Drain stale replies from earlier polls.
  uint8_t buf[1024];
  while (::recv(fd_, buf, sizeof buf, 0) > 0) {
  }
  // A random transmit timestamp (as chrony's client sends): only an on-path attacker can match.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const NtpTimestamp cookie{rng()};
  uint8_t req[wire::kHeaderSize + auth::kMaxMac];
  size_t req_length = wire::build_client_request(version_, 0, cookie, req);
  if (key_ != nullptr)
    req_length += auth::sign(*key_, {req, req_length}, {req + req_length, auth::kMaxMac});
  NtpSample sample;
  sample.sent = base::now_real();
  if (::send(fd_, req, req_length, 0) != static_cast<ssize_t>(req_length)) {
    last_error_ = std::string("send: ") + std::strerror(errno);
    return std::nullopt;
  }
  const base::Nanos deadline = base::now_mono() + timeout;
  uint64_t unmatched = 0;  // datagrams that came but do not answer this request
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                            base::now_mono());
    if (left.count() <= 0) {
      last_error_ = unmatched == 0 ? std::string("no reply")
                                   : fmt::format("no reply to our request ({} datagram{} that "
                                                 "{} not answer it)",
                                                 unmatched, unmatched == 1 ? "" : "s",
                                                 unmatched == 1 ? "does" : "do");
      return std::nullopt;
    }
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    sample.received = base::now_real();
    if (n < 0) {
      // ECONNREFUSED: nothing listens there (ICMP port unreachable).
      if (errno != EAGAIN && errno != EINTR) {
        last_error_ = std::strerror(errno);
        return std::nullopt;
      }
      continue;
    }
    if (static_cast<size_t>(n) < wire::kHeaderSize) {
      ++unmatched;
      continue;
    }
    const wire::Header h = wire::decode_header({buf, static_cast<size_t>(n)});
    if (h.origin != cookie || h.mode != wire::Mode::kServer) {
      ++unmatched;
      continue;
    }
    sample.reply = h;
    sample.length = static_cast<size_t>(n);
    if (key_ != nullptr) {
      const std::span<const uint8_t> mac{buf + wire::kHeaderSize, sample.length - wire::kHeaderSize};
      if (mac.empty()) sample.auth = ReplyAuth::kMissing;
      else if (mac.size() == wire::kCryptoNakSize && auth::key_id_of(mac) == 0) sample.auth = ReplyAuth::kCryptoNak;
      else if (auth::key_id_of(mac) == key_->id && auth::verify(*key_, {buf, wire::kHeaderSize}, mac))
        sample.auth = ReplyAuth::kOk;
      else sample.auth = ReplyAuth::kBad;
    }
    last_error_.clear();
    return sample;
  }
}

}  // namespace strata::clock
