// `strata query`: asks an NTP server for the time, like sntp, and shows everything an operator
// checks in a reply, including the server's processing time (its T3 - T2). A new socket (a
// new source port, RFC 9109) per request.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <thread>

#include "control/json_text.h"
#include "base/text.h"
#include "clock/sources.h"
#include "cli/commands.h"
#include "cli/resolve.h"
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

}  // namespace

int run_query(const QueryOptions& opt) {
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
