// `strata query`: asks an NTP server for the time, like sntp, and shows everything an operator
// checks in a reply, including the server's processing time (its T3 - T2). A new socket (a
// new source port, RFC 9109) per request.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <thread>

#include "control/json_text.h"
#include "base/text.h"
#include "clock/sources.h"
#include "cli/commands.h"
#include "cli/resolve.h"
#include "nts/ke_client.h"
#include "nts/packet.h"
#include "wire/packet.h"

namespace strata::cli {

namespace {

const char* leap_text(wire::Leap l) {
  switch (l) {
    case wire::Leap::kNone: return "none";
    case wire::Leap::kInsert: return "insert";
    case wire::Leap::kDelete: return "delete";
    case wire::Leap::kUnsynchronised: return "unsynchronised";
  }
  return "?";
}

struct Outcome {
  bool valid = false;
  nlohmann::json json;
  std::string text;
};

Outcome describe(const base::Endpoint& server, const clock::NtpSample& s, int version,
                 const auth::Key* key) {
  const wire::Header& h = s.reply;
  Outcome o;
  const std::string who = server.to_string();
  if (wire::is_kod(h)) {
    const std::string code = clock::format_reference_id(h.reference_id, 0);
    o.text = fmt::format("{}  KoD {} (kiss-o'-death: the server asks us to {})", who, code,
                         code == "RATE" ? "poll less often" : "stop");
    o.json = {{"server", who}, {"kod", code}};
    return o;
  }
  const clock::OffsetDelay od = clock::offset_delay(s);
  const double processing = base::ntp_diff_seconds(h.transmit, h.receive);
  const bool synced = h.leap != wire::Leap::kUnsynchronised && h.stratum >= 1 && h.stratum <= 15;
  const bool sane = h.version == version && !h.receive.is_zero() && !h.transmit.is_zero() &&
                    processing >= 0;
  const bool authentic = key == nullptr || s.auth == clock::ReplyAuth::kOk;
  o.valid = synced && sane && authentic;
  const std::string auth_text =
      key == nullptr ? ""
                     : fmt::format("  auth {} (key {} {})", clock::reply_auth_name(s.auth), key->id,
                                   auth::algorithm_name(key->algorithm));
  o.text = fmt::format(
      "{}  stratum {}  refid {}  leap {}  offset {:+.6f} s  delay {:.6f} s  root-delay {:.6f} s  "
      "root-disp {:.6f} s  server-time {:.6f} s{}{}",
      who, h.stratum, clock::format_reference_id(h.reference_id, h.stratum), leap_text(h.leap),
      od.offset, od.delay, h.root_delay.to_seconds(), h.root_dispersion.to_seconds(), processing,
      auth_text,
      !synced ? "  (server unsynchronised)" : !sane ? "  (invalid reply)"
                                           : !authentic ? "  (not authentic)" : "");
  o.json = {{"server", who},
            {"version", h.version},
            {"stratum", h.stratum},
            {"refid", clock::format_reference_id(h.reference_id, h.stratum)},
            {"leap", static_cast<int>(h.leap)},
            {"precision", h.precision},
            {"poll", h.poll},
            {"offset", od.offset},
            {"delay", od.delay},
            {"root_delay", h.root_delay.to_seconds()},
            {"root_dispersion", h.root_dispersion.to_seconds()},
            {"server_time", processing},
            {"length", s.length},
            {"valid", o.valid}};
  if (key != nullptr) o.json["auth"] = clock::reply_auth_name(s.auth);
  return o;
}

std::string utc_date(int64_t unix_s) {
  const time_t t = static_cast<time_t>(unix_s);
  tm utc{};
  char buf[32] = "?";
  if (gmtime_r(&t, &utc) != nullptr) std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return buf;
}

// One NTS exchange over UDP with the session's cookies; the reply's check as text.
struct NtsReply {
  std::optional<clock::NtpSample> sample;
  std::string error;          // no reply
  nts::ReplyCheck check = nts::ReplyCheck::kMalformed;
  size_t cookies = 0;         // received in it
  size_t request_length = 0;
};

NtsReply nts_exchange(const base::Endpoint& server, std::span<const uint8_t> cookie, unsigned placeholders,
                      const nts::Siv& c2s, const nts::Siv& s2c, nts::Random& random, base::Nanos timeout,
                      std::deque<std::vector<uint8_t>>& jar) {
  NtsReply out;
  const int fd = ::socket(server.address.family == base::Family::kV6 ? AF_INET6 : AF_INET,
                          SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_storage ss{};
  const socklen_t len = server.to_sockaddr(ss);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    out.error = std::string("socket: ") + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return out;
  }
  std::array<uint8_t, 32> uid{};
  random.fill(uid);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const base::NtpTimestamp transmit{rng()};  // random, as chrony's client sends
  std::vector<uint8_t> req(2048);
  wire::build_client_request(4, 0, transmit, req);
  req.resize(nts::append_client_fields(req, uid, cookie, placeholders, c2s, random));
  out.request_length = req.size();
  clock::NtpSample sample;
  sample.sent = base::now_real();
  if (::send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
    out.error = std::string("send: ") + std::strerror(errno);
    ::close(fd);
    return out;
  }
  const base::Nanos deadline = base::now_mono() + timeout;
  std::vector<uint8_t> buf(4096);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - base::now_mono());
    if (left.count() <= 0) {
      out.error = "no reply";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    sample.received = base::now_real();
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      out.error = std::strerror(errno);
      break;
    }
    if (static_cast<size_t>(n) < wire::kHeaderSize) continue;
    const std::span<const uint8_t> reply(buf.data(), static_cast<size_t>(n));
    const wire::Header h = wire::decode_header(reply);
    // A NAK has no origin of ours to match (its timestamps are ours, as any KoD's): the UID
    // is what ties it to the request.
    if (h.origin != transmit && !(h.stratum == 0 && h.transmit == transmit)) continue;
    std::array<nts::ClientCookie, 8> got{};
    out.check = nts::check_reply(reply, uid, s2c, got, out.cookies);
    if (out.check == nts::ReplyCheck::kNoUid) continue;  // not an answer to this request
    for (size_t i = 0; i < out.cookies; ++i) jar.emplace_back(got[i].view().begin(), got[i].view().end());
    sample.reply = h;
    sample.length = static_cast<size_t>(n);
    out.sample = sample;
    break;
  }
  ::close(fd);
  return out;
}

int run_query_nts(const QueryOptions& opt) {
  std::pair<std::string, uint16_t> ke_host;
  try {
    ke_host = split_host_port(opt.server, 4460);
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata query: {}\n", e.what());
    return 2;
  }
  nts::KeClientOptions ko;
  ko.host = ke_host.first;
  ko.port = ke_host.second;
  ko.ca_file = opt.ca;
  ko.timeout_s = std::max(opt.timeout, 2.0);
  const nts::KeClientResult ke = nts::ke_exchange(ko);
  const std::string ke_where = fmt::format("{}:{}", ke_host.first.find(':') != std::string::npos
                                                        ? "[" + ke_host.first + "]" : ke_host.first, ke_host.second);
  nlohmann::json doc;
  if (!ke.error.empty()) {
    if (opt.json) {
      doc = {{"nts_ke", {{"server", ke_where}, {"error", ke.error}}}};
      fmt::print("{}\n", control::json_text(doc, 2));
    } else {
      fmt::print("{}  NTS-KE failed: {}\n", ke_where, ke.error);
    }
    return 1;
  }
  const size_t cookie_length = ke.cookies.front().size();
  doc["nts_ke"] = {{"server", ke_where},         {"tls", ke.tls},
                   {"subject", ke.subject},       {"expires", utc_date(ke.expires_unix)},
                   {"aead", ke.aead},             {"cookies", ke.cookies.size()},
                   {"cookie_length", cookie_length}, {"ntp_server", ke.ntp_server},
                   {"ntp_port", ke.ntp_port},     {"seconds", ke.seconds}};
  if (!opt.json)
    fmt::print("{}  NTS-KE ok in {:.3f} s  {}  certificate {} (expires {})\n"
               "  AEAD {} (AES-SIV-CMAC-256)  {} cookies of {} octets  NTP server {} port {}\n",
               ke_where, ke.seconds, ke.tls, ke.subject, utc_date(ke.expires_unix), ke.aead, ke.cookies.size(),
               cookie_length, ke.ntp_server, ke.ntp_port);
  const FamilyFilter filter = opt.ipv4 ? FamilyFilter::kV4 : opt.ipv6 ? FamilyFilter::kV6 : FamilyFilter::kAny;
  std::vector<base::Endpoint> servers;
  try {
    const std::string ntp = ke.ntp_server.find(':') != std::string::npos ? "[" + ke.ntp_server + "]" : ke.ntp_server;
    servers = resolve(fmt::format("{}:{}", ntp, ke.ntp_port), ke.ntp_port, filter);
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata query: the NTP server of the KE response: {}\n", e.what());
    return 1;
  }
  const base::Endpoint server = servers.front();
  const nts::Siv c2s(ke.keys.c2s), s2c(ke.keys.s2c);
  nts::Random random;
  std::deque<std::vector<uint8_t>> jar(ke.cookies.begin(), ke.cookies.end());
  const auto timeout = std::chrono::duration_cast<base::Nanos>(std::chrono::duration<double>(opt.timeout));
  int valid = 0;
  nlohmann::json replies = nlohmann::json::array();
  for (int i = 0; i < opt.count; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::duration<double>(opt.interval));
    if (jar.empty()) {
      fmt::print(stderr, "strata query: no cookie left (the server sent none back)\n");
      break;
    }
    const std::vector<uint8_t> cookie = std::move(jar.front());
    jar.pop_front();
    // Placeholders ask for enough cookies to keep 8 (at most 7 of them).
    const unsigned placeholders = static_cast<unsigned>(std::min<size_t>(7, 8 - std::min<size_t>(8, jar.size() + 1)));
    const NtsReply r = nts_exchange(server, cookie, placeholders, c2s, s2c, random, timeout, jar);
    if (!r.sample) {
      if (opt.json) replies.push_back({{"server", server.to_string()}, {"error", r.error}});
      else fmt::print("{}  {}\n", server.to_string(), r.error);
      continue;
    }
    const char* verdict = r.check == nts::ReplyCheck::kOk    ? "nts ok"
                          : r.check == nts::ReplyCheck::kNak ? "NTSN"
                          : r.check == nts::ReplyCheck::kBadAuthenticator ? "bad auth" : "malformed";
    Outcome o;
    if (r.check == nts::ReplyCheck::kOk) {
      o = describe(server, *r.sample, 4, nullptr);
    } else {
      o.text = fmt::format("{}  {}", server.to_string(),
                           r.check == nts::ReplyCheck::kNak ? "KoD NTSN (the server cannot open our cookie: run NTS-KE again)"
                                                            : "reply not authentic");
      o.json = {{"server", server.to_string()}};
    }
    o.valid = o.valid && r.check == nts::ReplyCheck::kOk;
    valid += o.valid ? 1 : 0;
    o.json["nts"] = verdict;
    o.json["cookies"] = r.cookies;
    o.json["request_length"] = r.request_length;
    o.json["valid"] = o.valid;
    if (opt.json)
      replies.push_back(o.json);
    else
      fmt::print("{}  {}  cookies {}  {} octets each way\n", o.text, verdict, r.cookies, r.request_length);
    std::fflush(stdout);
  }
  if (opt.json) {
    doc["replies"] = replies;
    fmt::print("{}\n", control::json_text(doc, 2));
  }
  return valid > 0 ? 0 : 1;
}

}  // namespace

int run_query(const QueryOptions& opt) {
  if (opt.nts) return run_query_nts(opt);
  const FamilyFilter filter = opt.ipv4 ? FamilyFilter::kV4 : opt.ipv6 ? FamilyFilter::kV6
                                                                      : FamilyFilter::kAny;
  std::vector<base::Endpoint> servers;
  try {
    servers = resolve(opt.server, 123, filter);
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata query: {}\n", e.what());
    return 2;
  }
  const base::Endpoint server = servers.front();
  std::optional<auth::Key> key;
  if (!opt.keys.empty()) {
    const auto text = base::read_file(opt.keys);
    if (!text) {
      fmt::print(stderr, "strata query: cannot open {}\n", opt.keys);
      return 2;
    }
    const auth::ParsedKeys parsed = auth::parse_keys_text(*text, opt.keys);
    for (const auto& e : parsed.errors) fmt::print(stderr, "strata query: {}\n", e.to_string());
    if (!parsed.errors.empty()) return 2;
    if (opt.key_id == 0) {
      fmt::print(stderr, "strata query: --keys needs --auth KEYID\n");
      return 2;
    }
    for (const auth::Key& k : parsed.keys)
      if (k.id == opt.key_id) key = k;
    if (!key) {
      fmt::print(stderr, "strata query: key {} is not in {}\n", opt.key_id, opt.keys);
      return 2;
    }
  }
  const auto timeout = std::chrono::duration_cast<base::Nanos>(std::chrono::duration<double>(opt.timeout));
  int valid = 0;
  nlohmann::json replies = nlohmann::json::array();
  for (int i = 0; i < opt.count; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::duration<double>(opt.interval));
    clock::NtpClient client(server, static_cast<uint8_t>(opt.version), key ? &*key : nullptr);
    const auto sample = client.poll(timeout);
    if (!sample) {
      if (opt.json)
        replies.push_back({{"server", server.to_string()}, {"error", client.last_error()}});
      else
        fmt::print("{}  {}\n", server.to_string(), client.last_error());
      continue;
    }
    const Outcome o = describe(server, *sample, opt.version, key ? &*key : nullptr);
    valid += o.valid ? 1 : 0;
    if (opt.json)
      replies.push_back(o.json);
    else
      fmt::print("{}\n", o.text);
    std::fflush(stdout);
  }
  if (opt.json) fmt::print("{}\n", control::json_text(replies, 2));
  return valid > 0 ? 0 : 1;
}

}  // namespace strata::cli
