// `strata cost` (see cost.h).
#include "cli/cost.h"
#include "control/json_text.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "base/text.h"
#include "cli/captures.h"
#include "control/control_server.h"

namespace strata::cli {

namespace {

std::string money(double usd) {
  if (usd >= 1000) return fmt::format("${:.0f}", usd);
  return fmt::format("${:.2f}", usd);
}

std::string thousands(double v) {
  const std::string digits = fmt::format("{:.0f}", v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && digits[i - 1] != '-' && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace


namespace {

// A count or a period as ntpq prints them: a finite number, not negative ("nan", "inf" and
// "-5" are no counts).
bool plausible(double v) { return std::isfinite(v) && v >= 0; }

// The input line for bytes measured by a live stratad (its counters or its sysstats).
std::string measured_bytes_line(const Traffic& t, bool l2) {
  return fmt::format("bytes              measured at the IP level: {:.1f} per packet in, {:.1f} out{}",
                     t.in_pps > 0 && t.in_bytes_per_s ? *t.in_bytes_per_s / t.in_pps : 0,
                     t.out_pps > 0 && t.out_bytes_per_s ? *t.out_bytes_per_s / t.out_pps : 0,
                     l2 ? " (+14 Ethernet)" : "");
}

std::optional<double> period_of(std::string_view text) {
  std::string s(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  double days = 0;
  if (const size_t d = s.find_first_of("Dd"); d != std::string::npos) {
    try {
      days = std::stod(s.substr(0, d));
    } catch (...) {
      return std::nullopt;
    }
    s = s.substr(d + 1);
    while (!s.empty() && s.front() == ' ') s.erase(0, 1);
  }
  int h = 0, m = 0, sec = 0;
  char extra = 0;
  // At most 9 digits of hours (more would overflow an int in sscanf: found by fuzz_sysstats).
  if (std::sscanf(s.c_str(), "%9d:%2d:%2d%c", &h, &m, &sec, &extra) == 3) {
    if (h < 0 || m < 0 || m > 59 || sec < 0 || sec > 60) return std::nullopt;
    return days * 86400 + h * 3600.0 + m * 60.0 + sec;  // in double: "2222222222:00:00" fits
  }
  char* end = nullptr;
  const double plain = std::strtod(s.c_str(), &end);
  if (!s.empty() && end == s.c_str() + s.size() && days == 0) return plain;
  return std::nullopt;
}

}  // namespace

std::optional<double> parse_period(std::string_view text) {
  const auto p = period_of(text);
  if (!p || !plausible(*p)) return std::nullopt;
  return p;
}

std::optional<Sysstats> parse_sysstats(std::string_view text, std::string& error) {
  std::map<std::string, std::string> first;  // label -> first value
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string label = line.substr(0, colon);
    while (!label.empty() && label.back() == ' ') label.pop_back();
    std::string rest = line.substr(colon + 1);
    // The value: periods may contain ':' themselves ("1D 02:03:04"); counts are one word.
    std::istringstream words(rest);
    std::string w1, w2;
    words >> w1;
    if (w1.empty()) continue;
    if ((w1.back() == 'D' || w1.back() == 'd') && words >> w2) w1 += " " + w2;
    if (!first.count(label)) first[label] = w1;
  }
  Sysstats s;
  std::optional<double> period;
  if (first.count("sysstats reset")) period = parse_period(first["sysstats reset"]);
  else if (first.count("time since reset")) period = parse_period(first["time since reset"]);
  if (!period && first.count("uptime")) period = parse_period(first["uptime"]);
  if (!period || *period <= 0) {
    error = "no 'sysstats reset:' or 'uptime:' line with a period";
    return std::nullopt;
  }
  s.seconds = *period;
  const auto count = [&](const char* label, double& out, bool required) {
    if (!first.count(label)) {
      if (required) error = fmt::format("no '{}:' line", label);
      return !required;
    }
    try {
      out = std::stod(first[label]);
    } catch (...) {
      error = fmt::format("'{}: {}' is not a count", label, first[label]);
      return false;
    }
    if (!plausible(out)) {
      error = fmt::format("'{}: {}' is not a count", label, first[label]);
      return false;
    }
    return true;
  };
  if (!count("packets received", s.received, true) || !count("bad length or format", s.bad_format, false) ||
      !count("authentication failed", s.auth_failed, false) || !count("declined", s.declined, false) ||
      !count("restricted", s.restricted, false) || !count("rate limited", s.rate_limited, false) ||
      !count("KoD responses", s.kod_sent, false) || !count("processed for time", s.processed, false))
    return std::nullopt;
  const auto optional = [&](const char* label, std::optional<double>& out) {
    double v = 0;
    if (!first.count(label)) return true;
    if (!count(label, v, false)) return false;
    out = v;
    return true;
  };
  std::optional<double> in4, in6, out4, out6;
  if (!optional("responses sent", s.responses_sent) || !optional("control responses", s.control_responses) ||
      !optional("received v4", s.received_v4) || !optional("received v6", s.received_v6) ||
      !optional("bytes in v4", in4) || !optional("bytes in v6", in6) || !optional("bytes out v4", out4) ||
      !optional("bytes out v6", out6))
    return std::nullopt;
  if (in4 && in6) s.bytes_in = *in4 + *in6;
  if (out4 && out6) s.bytes_out = *out4 + *out6;
  return s;
}

double sysstats_replies_without_kod(const Sysstats& s) {
  return std::max(0.0, s.received - s.bad_format - s.auth_failed - s.declined - s.restricted - s.rate_limited);
}

double sysstats_replies(const Sysstats& s) {
  return std::min(s.received, sysstats_replies_without_kod(s) + s.kod_sent);
}

double Traffic::in_bytes_per_packet() const {
  return (1 - v6_share) * kPacketV4 + v6_share * kPacketV6 + nts_share * kNtsExtra + (l2 ? kEthernet : 0);
}

Traffic Traffic::without_nts() const {
  Traffic t = *this;
  t.nts_share = 0;
  const double plain = (1 - v6_share) * kPacketV4 + v6_share * kPacketV6;
  if (t.in_bytes_per_s) *t.in_bytes_per_s += nts_in_pps * plain - nts_in_bytes_per_s;
  if (t.out_bytes_per_s) *t.out_bytes_per_s += nts_out_pps * plain - nts_out_bytes_per_s;
  t.nts_in_pps = t.nts_out_pps = t.nts_in_bytes_per_s = t.nts_out_bytes_per_s = 0;
  return t;
}
double Traffic::out_bytes_per_packet() const { return in_bytes_per_packet(); }
double Traffic::in_gib_per_month() const {
  const double bps = in_bytes_per_s ? *in_bytes_per_s + (l2 ? kEthernet * in_pps : 0)
                                    : in_pps * in_bytes_per_packet();
  return bps * kMonthSeconds / kGiB;
}
double Traffic::out_gib_per_month() const {
  const double bps = out_bytes_per_s ? *out_bytes_per_s + (l2 ? kEthernet * out_pps : 0)
                                     : out_pps * out_bytes_per_packet();
  return bps * kMonthSeconds / kGiB;
}

int run_cost(const CostOptions& opt) {
  // Prices.
  std::string prices_text(builtin_prices());
  std::string prices_name = "built-in data/prices.toml";
  if (!opt.prices.empty()) {
    auto text = base::read_file(opt.prices);
    if (!text) {
      fmt::print(stderr, "strata cost: cannot open {}\n", opt.prices);
      return 2;
    }
    prices_text = std::move(*text);
    prices_name = opt.prices;
  }
  std::vector<std::string> errors;
  auto prices = parse_prices(prices_text, prices_name, errors);
  if (!prices) {
    for (const auto& e : errors) fmt::print(stderr, "strata cost: {}\n", e);
    return 2;
  }
  std::vector<Provider> providers;
  if (opt.price >= 0) {
    providers.push_back({"flat", fmt::format("flat {} USD/GiB", opt.price), "", "out", 0, {{INFINITY, opt.price}}});
  } else {
    for (const auto& p : prices->providers)
      if (opt.provider.empty() || p.name == opt.provider) providers.push_back(p);
    if (providers.empty()) {
      std::string names;
      for (const auto& p : prices->providers) names += (names.empty() ? "" : ", ") + p.name;
      fmt::print(stderr, "strata cost: no provider '{}' (known: {})\n", opt.provider, names);
      return 2;
    }
  }

  // Traffic.
  Traffic t;
  t.l2 = opt.l2;
  nlohmann::json inputs;
  std::vector<std::string> input_lines;
  if (!opt.control.empty()) {
    nlohmann::json reply;
    try {
      reply = control::request(opt.control, {{"command", "stats"}});
    } catch (const std::exception& e) {
      fmt::print(stderr, "strata cost: {}\n", e.what());
      return 1;
    }
    const auto& c = reply["counters"];
    const double secs = std::max(1e-9, reply.value("uptime", 0.0));
    const auto get = [&](const char* k) { return c.value(k, 0.0); };
    t.in_pps = get("received") / secs;
    t.out_pps = (get("responses_sent") + get("control_responses")) / secs;
    const double rx = get("received_v4") + get("received_v6");
    t.v6_share = opt.v6_share >= 0 ? opt.v6_share : rx > 0 ? get("received_v6") / rx : 0;
    t.in_bytes_per_s = (get("bytes_in_v4") + get("bytes_in_v6")) / secs;
    t.out_bytes_per_s = (get("bytes_out_v4") + get("bytes_out_v6")) / secs;
    t.nts_in_pps = get("nts_requests") / secs;
    t.nts_out_pps = (get("nts_authenticated") + get("nts_nak_sent")) / secs;
    t.nts_in_bytes_per_s = get("nts_bytes_in") / secs;
    t.nts_out_bytes_per_s = get("nts_bytes_out") / secs;
    input_lines.push_back(fmt::format("source             stratad at {}, {} s since start", opt.control,
                                      thousands(secs)));
    input_lines.push_back(fmt::format("packets received   {} ({:.1f}/s), IPv6 {:.1f}%", thousands(get("received")),
                                      t.in_pps, 100 * t.v6_share));
    input_lines.push_back(fmt::format("packets sent       {} ({:.1f}/s), as counted", thousands(get("responses_sent") + get("control_responses")), t.out_pps));
    input_lines.push_back(measured_bytes_line(t, opt.l2));
    inputs = {{"source", "control"}, {"seconds", secs}, {"received", get("received")},
              {"sent", get("responses_sent") + get("control_responses")},
              {"in_bytes_per_s", *t.in_bytes_per_s}, {"out_bytes_per_s", *t.out_bytes_per_s}};
  } else if (!opt.sysstats.empty()) {
    std::string text;
    if (opt.sysstats == "-") {
      std::stringstream ss;
      ss << std::cin.rdbuf();
      text = ss.str();
    } else if (auto file = base::read_file(opt.sysstats)) {
      text = std::move(*file);
    } else {
      fmt::print(stderr, "strata cost: cannot open {}\n", opt.sysstats);
      return 2;
    }
    std::string error;
    const auto s = parse_sysstats(text, error);
    if (!s) {
      fmt::print(stderr, "strata cost: {}: {}\n", opt.sysstats, error);
      return 2;
    }
    t.in_pps = s->received / s->seconds;
    double sent = 0;
    if (s->responses_sent) {
      // `strata stats` text: stratad counted its replies (time, KoD, crypto-NAK and mode 6)
      // and their bytes; nothing is inferred.
      sent = *s->responses_sent + s->control_responses.value_or(0);
      t.out_pps = sent / s->seconds;
      const double rx = s->received_v4.value_or(0) + s->received_v6.value_or(0);
      t.v6_share = opt.v6_share >= 0 ? opt.v6_share : rx > 0 ? s->received_v6.value_or(0) / rx : 0;
      if (s->bytes_in && s->bytes_out) {
        t.in_bytes_per_s = *s->bytes_in / s->seconds;
        t.out_bytes_per_s = *s->bytes_out / s->seconds;
      }
      input_lines.push_back(fmt::format("source             strata stats text in {}, {} s since reset",
                                        opt.sysstats, thousands(s->seconds)));
      input_lines.push_back(fmt::format("packets received   {} ({:.1f}/s), IPv6 {:.1f}%", thousands(s->received),
                                        t.in_pps, 100 * t.v6_share));
      input_lines.push_back(fmt::format("packets sent       {} ({:.1f}/s) = responses sent {} + control responses {}, as counted",
                                        thousands(sent), t.out_pps, thousands(*s->responses_sent),
                                        thousands(s->control_responses.value_or(0))));
      if (t.in_bytes_per_s)
        input_lines.push_back(measured_bytes_line(t, opt.l2));
    } else {
      sent = sysstats_replies(*s);
      const double without = sysstats_replies_without_kod(*s);
      t.out_pps = sent / s->seconds;
      t.v6_share = std::max(0.0, opt.v6_share);
      input_lines.push_back(fmt::format("source             ntpq sysstats in {}, {} s since reset", opt.sysstats,
                                        thousands(s->seconds)));
      input_lines.push_back(fmt::format("packets received   {} ({:.1f}/s)", thousands(s->received), t.in_pps));
      input_lines.push_back(fmt::format(
          "packets sent       {} ({:.1f}/s) = received - bad format {} - auth failed {} - declined {} "
          "- restricted {} - rate limited {} + KoD responses {} (a KoD is a reply, billed like any)",
          thousands(sent), t.out_pps, thousands(s->bad_format), thousands(s->auth_failed),
          thousands(s->declined), thousands(s->restricted), thousands(s->rate_limited),
          thousands(s->kod_sent)));
      if (s->kod_sent > 0)
        input_lines.push_back(fmt::format(
            "                   without the KoDs (as often published): {} ({:.1f}/s), {:.1f}% fewer",
            thousands(without), without / s->seconds, sent > 0 ? 100 * (sent - without) / sent : 0));
      inputs["sent_without_kod"] = without;
    }
    inputs["source"] = s->responses_sent ? "strata-stats" : "sysstats";
    inputs["seconds"] = s->seconds;
    inputs["received"] = s->received;
    inputs["sent"] = sent;
    if (t.in_bytes_per_s) {
      inputs["in_bytes_per_s"] = *t.in_bytes_per_s;
      inputs["out_bytes_per_s"] = *t.out_bytes_per_s;
    }
  } else if (!opt.captures.empty()) {
    analyze::Options aopt;
    aopt.port = opt.port;
    analyze::Analysis analysis(aopt);
    const CaptureRead read = read_captures(opt.captures, analysis, nullptr, "strata cost");
    const analyze::Totals& tot = analysis.totals();
    if (read.files.empty() || tot.duration() <= 0) {
      fmt::print(stderr, "strata cost: the captures hold no time span to scale from\n");
      return read.status ? read.status : 1;
    }
    const double secs = tot.duration();
    t.in_pps = static_cast<double>(tot.requests) / secs;
    t.out_pps = static_cast<double>(tot.replies) / secs;
    t.v6_share = opt.v6_share >= 0 ? opt.v6_share
                 : tot.requests  ? static_cast<double>(tot.requests_v6) / static_cast<double>(tot.requests)
                                 : 0;
    t.in_bytes_per_s = static_cast<double>(tot.request_bytes) / secs;
    t.out_bytes_per_s = static_cast<double>(tot.reply_bytes) / secs;
    t.nts_in_pps = static_cast<double>(tot.nts_requests) / secs;
    t.nts_out_pps = static_cast<double>(tot.nts_replies) / secs;
    t.nts_in_bytes_per_s = static_cast<double>(tot.nts_request_bytes) / secs;
    t.nts_out_bytes_per_s = static_cast<double>(tot.nts_reply_bytes) / secs;
    std::string names;
    for (const auto& f : read.files) names += (names.empty() ? "" : ", ") + f.name;
    input_lines.push_back(fmt::format("source             capture {}, {:.1f} s", names, secs));
    input_lines.push_back(fmt::format("packets received   {} requests ({:.1f}/s), IPv6 {:.1f}%", thousands(static_cast<double>(tot.requests)),
                                      t.in_pps, 100 * t.v6_share));
    input_lines.push_back(fmt::format("packets sent       {} replies ({:.1f}/s), as captured", thousands(static_cast<double>(tot.replies)),
                                      t.out_pps));
    input_lines.push_back(fmt::format("bytes              measured at the IP level: {:.1f} per request, {:.1f} per reply{}",
                                      tot.requests ? static_cast<double>(tot.request_bytes) / static_cast<double>(tot.requests) : 0,
                                      tot.replies ? static_cast<double>(tot.reply_bytes) / static_cast<double>(tot.replies) : 0,
                                      opt.l2 ? " (+14 Ethernet)" : ""));
    inputs = {{"source", "capture"}, {"seconds", secs}, {"received", tot.requests}, {"sent", tot.replies},
              {"in_bytes_per_s", *t.in_bytes_per_s}, {"out_bytes_per_s", *t.out_bytes_per_s}};
    if (!read.port_hint.empty()) {
      inputs["port_hint"] = read.port_hint;
      input_lines.push_back("NOTE               " + read.port_hint);
    }
  } else if (opt.rate > 0) {
    t.in_pps = opt.rate;
    t.out_pps = opt.sent_rate >= 0 ? opt.sent_rate : opt.rate;
    t.v6_share = std::max(0.0, opt.v6_share);
    t.nts_share = std::max(0.0, opt.nts_share);
    input_lines.push_back(fmt::format("source             given rates"));
    input_lines.push_back(fmt::format("packets received   {:.1f}/s", t.in_pps));
    input_lines.push_back(fmt::format("packets sent       {:.1f}/s", t.out_pps));
    inputs = {{"source", "rates"}};
  } else {
    fmt::print(stderr, "strata cost: give --control, --sysstats, --capture or --rate\n");
    return 2;
  }
  if (!t.in_bytes_per_s)
    input_lines.push_back(fmt::format("bytes per packet   {:.1f} at the IP level: IPv4 76, IPv6 96 (48 NTP + 8 UDP + "
                                      "20/40 IP), IPv6 share {:.1f}%{}",
                                      t.in_bytes_per_packet(), 100 * t.v6_share, opt.l2 ? ", +14 Ethernet" : ""));
  if (t.has_nts()) {
    if (t.nts_share > 0)
      input_lines.push_back(fmt::format("NTS                {:.1f}% of the packets, {:.0f} octets more each way "
                                        "(UID, one cookie, authenticator)", 100 * t.nts_share, kNtsExtra));
    else
      input_lines.push_back(fmt::format(
          "NTS                {:.1f}% of the requests ({:.1f}/s), {:.1f}% of the bytes out; {:.0f} octets per NTS reply",
          t.in_pps > 0 ? 100 * t.nts_in_pps / t.in_pps : 0, t.nts_in_pps,
          t.out_bytes_per_s && *t.out_bytes_per_s > 0 ? 100 * t.nts_out_bytes_per_s / *t.out_bytes_per_s : 0,
          t.nts_out_pps > 0 ? t.nts_out_bytes_per_s / t.nts_out_pps : 0));
    inputs["nts"] = {{"share", t.nts_share}, {"in_pps", t.nts_in_pps}, {"out_pps", t.nts_out_pps},
                     {"in_bytes_per_s", t.nts_in_bytes_per_s}, {"out_bytes_per_s", t.nts_out_bytes_per_s}};
  }
  input_lines.push_back("month              30.436875 days; GiB = 2^30 bytes");
  const double in_gib = t.in_gib_per_month(), out_gib = t.out_gib_per_month();
  // What the same packets would cost without NTS's fields: the difference is NTS's price.
  const Traffic plain = t.without_nts();
  const double plain_in_gib = plain.in_gib_per_month(), plain_out_gib = plain.out_gib_per_month();
  inputs["in_pps"] = t.in_pps;
  inputs["out_pps"] = t.out_pps;
  inputs["v6_share"] = t.v6_share;
  inputs["l2"] = t.l2;

  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::string> text_rows;
  for (const Provider& p : providers) {
    const double gib = p.billed == "out" ? out_gib : p.billed == "in" ? in_gib : in_gib + out_gib;
    const Cost c = tiered_cost(p, gib);
    const double plain_gib = p.billed == "out" ? plain_out_gib : p.billed == "in" ? plain_in_gib
                                                                                  : plain_in_gib + plain_out_gib;
    const double nts_usd = c.usd - tiered_cost(p, plain_gib).usd;
    nlohmann::json bands = nlohmann::json::array();
    std::string arithmetic;
    for (const auto& l : c.lines) {
      bands.push_back({{"gib", l.gib}, {"usd_per_gib", l.usd_per_gib}, {"usd", l.usd}});
      arithmetic += fmt::format("{}{:.1f} GiB x ${}", arithmetic.empty() ? "" : " + ", l.gib, l.usd_per_gib);
    }
    rows.push_back({{"provider", p.name}, {"title", p.title}, {"billed", p.billed},
                    {"billed_gib_per_month", gib}, {"free_gib", c.free_gib},
                    {"free_allowance_gib", p.free_gib}, {"bands", bands},
                    {"usd_per_month", c.usd}, {"usd_per_year", 12 * c.usd},
                    {"nts_usd_per_month", nts_usd}});
    // The free allowance: the part used of it, and all of it ("86.1 of 100").
    const std::string free = p.free_gib > 0 ? fmt::format("{:.1f} of {:.0f}", c.free_gib, p.free_gib) : "-";
    text_rows.push_back(fmt::format("{:<14} {:>12.1f} {:>16} {:>12} {:>12}{}   {}", p.name, gib, free,
                                    money(c.usd), money(12 * c.usd),
                                    t.has_nts() ? fmt::format(" {:>12}", money(nts_usd)) : "",
                                    arithmetic.empty() ? "within the free allowance" : arithmetic));
  }
  if (opt.json) {
    nlohmann::json out = {{"inputs", inputs},
                          {"prices_date", opt.price >= 0 ? "" : prices->date},
                          {"gib_per_month_in", in_gib},
                          {"gib_per_month_out", out_gib},
                          {"providers", rows}};
    fmt::print("{}\n", control::json_text(out, 2));
    return 0;
  }
  fmt::print("Inputs\n");
  for (const auto& l : input_lines) fmt::print("  {}\n", l);
  fmt::print("\nTraffic\n  in   {:.1f} GiB/month\n  out  {:.1f} GiB/month\n", in_gib, out_gib);
  fmt::print("\nCost{}\n", opt.price >= 0 ? "" : fmt::format(" (prices of {}, {})", prices->date, prices_name));
  fmt::print("  {:<14} {:>12} {:>16} {:>12} {:>12}{}   {}\n", "provider", "billed GiB", "free used GiB", "per month",
             "per year", t.has_nts() ? fmt::format(" {:>12}", "NTS's part") : "",
             "arithmetic (per month, after the free allowance)");
  for (const auto& r : text_rows) fmt::print("  {}\n", r);
  return 0;
}

}  // namespace strata::cli
