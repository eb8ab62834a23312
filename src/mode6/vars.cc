// System variables for READVAR (see vars.h).
#include "mode6/vars.h"

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <unordered_map>

#include "clock/sources.h"

namespace strata::mode6 {

namespace {

using stats::Counter;
using Getter = std::function<std::string(const SystemView&)>;

std::string quoted(std::string_view s) { return fmt::format("\"{}\"", s); }
std::string lfp(base::NtpTimestamp t) {
  return fmt::format("0x{:08x}.{:08x}", static_cast<uint32_t>(t.raw >> 32), static_cast<uint32_t>(t.raw));
}
std::string ms3(double seconds) { return fmt::format("{:.3f}", seconds * 1e3); }
std::string ms6(double seconds) { return fmt::format("{:.6f}", seconds * 1e3); }
std::string u64(uint64_t v) { return fmt::format("{}", v); }
uint64_t seconds(double s) { return static_cast<uint64_t>(std::max(0.0, std::floor(s))); }
// Seconds since a reset: ntpq divides counts by it for rates, so never 0.
uint64_t period(double s) { return std::max<uint64_t>(1, seconds(s)); }

uint8_t leap_of(const SystemView& v) {
  return v.time.synchronised ? static_cast<uint8_t>(v.time.leap) : 3;
}
uint8_t stratum_of(const SystemView& v) {
  return v.time.synchronised ? v.time.stratum : wire::kStratumUnsynchronised;
}
double root_dispersion(const SystemView& v) {
  const double age = base::ntp_diff_seconds(v.now, base::to_ntp(v.time.as_of));
  return v.time.root_dispersion + v.time.dispersion_rate * std::max(0.0, age);
}
uint64_t counter(const SystemView& v, Counter c) { return v.counters[stats::index(c)]; }

// ntpd's sysstats: ss_X since the last statistics reset, ss_X_r since start. stratad never
// resets them, so the pairs are equal and ss_reset is the uptime.
struct Stat {
  std::string_view name;
  std::function<uint64_t(const SystemView&)> get;
};
const std::vector<Stat>& sysstats() {
  static const std::vector<Stat> s = {
      {"ss_reset", [](const SystemView& v) { return period(v.uptime_s); }},
      {"ss_received", [](const SystemView& v) { return counter(v, Counter::received); }},
      {"ss_thisver", [](const SystemView& v) { return counter(v, Counter::current_version); }},
      {"ss_oldver", [](const SystemView& v) { return counter(v, Counter::older_version); }},
      {"ss_ver1", [](const SystemView& v) { return counter(v, Counter::requests_v1); }},
      {"ss_ver1client", [](const SystemView& v) { return counter(v, Counter::requests_v1_mode3); }},
      {"ss_ver1zero", [](const SystemView& v) { return counter(v, Counter::requests_mode0); }},
      {"ss_ver1symm", [](const SystemView& v) { return counter(v, Counter::requests_v1_mode1); }},
      {"ss_badformat", [](const SystemView& v) { return counter(v, Counter::bad_format); }},
      {"ss_badauth", [](const SystemView& v) { return counter(v, Counter::auth_failed); }},
      {"ss_declined", [](const SystemView& v) { return counter(v, Counter::declined); }},
      {"ss_restricted", [](const SystemView& v) { return counter(v, Counter::restricted); }},
      {"ss_limited", [](const SystemView& v) { return counter(v, Counter::rate_limited); }},
      {"ss_kodsent", [](const SystemView& v) { return counter(v, Counter::kod_sent); }},
      {"ss_processed", [](const SystemView& v) { return counter(v, Counter::processed); }},
  };
  return s;
}

const std::unordered_map<std::string_view, Getter>& table() {
  static const std::unordered_map<std::string_view, Getter> t = [] {
    std::unordered_map<std::string_view, Getter> m = {
        // rv
        {"version", [](const SystemView& v) { return quoted(v.version); }},
        {"processor", [](const SystemView& v) { return quoted(v.processor); }},
        {"system", [](const SystemView& v) { return quoted(v.system); }},
        {"leap", [](const SystemView& v) { return u64(leap_of(v)); }},
        {"stratum", [](const SystemView& v) { return u64(stratum_of(v)); }},
        {"precision", [](const SystemView& v) { return fmt::format("{}", v.time.precision); }},
        {"rootdelay", [](const SystemView& v) { return ms3(v.time.root_delay); }},
        {"rootdisp", [](const SystemView& v) { return ms3(root_dispersion(v)); }},
        {"rootdist",
         [](const SystemView& v) { return ms3(v.time.root_delay / 2 + root_dispersion(v)); }},
        {"refid",
         [](const SystemView& v) {
           return clock::format_reference_id(v.time.reference_id, stratum_of(v));
         }},
        {"reftime", [](const SystemView& v) { return lfp(v.time.reference); }},
        {"clock", [](const SystemView& v) { return lfp(v.now); }},
        {"peer", [](const SystemView&) { return std::string("0"); }},
        {"tc", [](const SystemView& v) { return u64(static_cast<uint64_t>(v.poll_exponent)); }},
        {"mintc", [](const SystemView& v) { return u64(static_cast<uint64_t>(v.poll_exponent)); }},
        // stratad serves the system clock and disciplines nothing: no offset, no frequency
        // correction and no jitter of its own to report.
        {"offset", [](const SystemView&) { return ms6(0); }},
        {"frequency", [](const SystemView&) { return std::string("0.000"); }},
        {"sys_jitter", [](const SystemView&) { return ms6(0); }},
        {"clk_jitter", [](const SystemView&) { return ms6(0); }},
        {"clk_wander", [](const SystemView&) { return std::string("0.000000"); }},
        {"tai", [](const SystemView& v) { return fmt::format("{}", v.tai_offset); }},
        // sysinfo
        {"peeradr", [](const SystemView& v) { return v.peer_address; }},  // unquoted, as ntpd
        {"peermode", [](const SystemView& v) { return u64(v.peer_mode); }},
        {"bcastdelay", [](const SystemView&) { return ms3(0); }},
        {"authdelay", [](const SystemView&) { return ms3(0); }},
        // sysstats
        {"ss_uptime", [](const SystemView& v) { return u64(period(v.uptime_s)); }},
        {"ss_numctlreq", [](const SystemView& v) { return u64(v.control_requests); }},
        // monstats: the client tables are ntpd's MRU list
        {"mru_enabled", [](const SystemView&) { return std::string("1"); }},
        {"mru_hashslots", [](const SystemView& v) { return u64(v.mru_capacity); }},
        {"mru_depth", [](const SystemView& v) { return u64(v.mru_depth); }},
        {"mru_deepest", [](const SystemView& v) { return u64(v.mru_depth); }},  // never shrinks
        {"mru_maxdepth", [](const SystemView& v) { return u64(v.mru_capacity); }},
        {"mru_mindepth", [](const SystemView& v) { return u64(v.mru_mindepth); }},
        {"mru_maxage", [](const SystemView& v) { return u64(seconds(v.mru_maxage_s)); }},
        {"mru_minage", [](const SystemView& v) { return u64(seconds(v.mru_maxage_s)); }},
        {"mru_mem", [](const SystemView& v) { return u64((v.mru_memory_bytes + 1023) / 1024); }},
        {"mru_maxmem", [](const SystemView& v) { return u64((v.mru_max_memory_bytes + 1023) / 1024); }},
        {"mru_exists",
         [](const SystemView& v) {
           const uint64_t seen = counter(v, Counter::requests_v1) + counter(v, Counter::requests_v2) +
                                 counter(v, Counter::requests_v3) + counter(v, Counter::requests_v4);
           const uint64_t other = counter(v, Counter::clients_new) + counter(v, Counter::clients_untracked);
           return u64(seen > other ? seen - other : 0);
         }},
        {"mru_new", [](const SystemView& v) { return u64(counter(v, Counter::clients_new)); }},
        {"mru_recycleold", [](const SystemView& v) { return u64(counter(v, Counter::clients_evicted)); }},
        {"mru_recyclefull", [](const SystemView&) { return std::string("0"); }},
        {"mru_none", [](const SystemView& v) { return u64(counter(v, Counter::clients_untracked)); }},
        {"mru_oldest_age",
         [](const SystemView& v) {
           return u64(v.mru_oldest_age_s ? seconds(v.mru_oldest_age_s() + 0.5) : 0);
         }},
        // iostats: one receive buffer per batch slot, handed back at once
        {"iostats_reset", [](const SystemView& v) { return u64(period(v.uptime_s)); }},
        {"total_rbuf", [](const SystemView& v) { return u64(v.receive_buffers); }},
        {"free_rbuf", [](const SystemView& v) { return u64(v.receive_buffers); }},
        {"used_rbuf", [](const SystemView&) { return std::string("0"); }},
        {"rbuf_lowater", [](const SystemView&) { return std::string("0"); }},
        {"io_dropped", [](const SystemView& v) { return u64(counter(v, Counter::rx_queue_drops)); }},
        {"io_ignored", [](const SystemView&) { return std::string("0"); }},
        {"io_received", [](const SystemView& v) { return u64(counter(v, Counter::received)); }},
        {"io_sent",
         [](const SystemView& v) {
           return u64(counter(v, Counter::responses_sent) + counter(v, Counter::control_responses));
         }},
        {"io_sendfailed", [](const SystemView& v) { return u64(counter(v, Counter::send_errors)); }},
        {"io_wakeups", [](const SystemView& v) { return u64(counter(v, Counter::receive_calls)); }},
        {"io_goodwakeups", [](const SystemView& v) { return u64(counter(v, Counter::receive_batches)); }},
        // authinfo
        {"authreset", [](const SystemView& v) { return u64(period(v.uptime_s)); }},
        {"authkeys", [](const SystemView& v) { return u64(v.keys); }},
        {"authfreek", [](const SystemView&) { return std::string("0"); }},
        {"authklookups",
         [](const SystemView& v) {
           return u64(counter(v, Counter::authenticated_replies) + counter(v, Counter::drop_bad_mac) +
                      counter(v, Counter::drop_mac));
         }},
        {"authknotfound", [](const SystemView& v) { return u64(counter(v, Counter::drop_mac)); }},
        {"authkuncached", [](const SystemView&) { return std::string("0"); }},
        {"authkexpired", [](const SystemView&) { return std::string("0"); }},
        // Replies signed (encrypts) and requests checked (decrypts), by kind of key.
        {"authencrypts", [](const SystemView& v) { return u64(counter(v, Counter::authenticated_replies)); }},
        {"authdigestencrypts",
         [](const SystemView& v) {
           return u64(counter(v, Counter::authenticated_replies) - counter(v, Counter::authenticated_cmac));
         }},
        {"authcmacencrypts", [](const SystemView& v) { return u64(counter(v, Counter::authenticated_cmac)); }},
        {"authdecrypts",
         [](const SystemView& v) {
           return u64(counter(v, Counter::authenticated_replies) + counter(v, Counter::drop_bad_mac));
         }},
        {"authdigestdecrypts",
         [](const SystemView& v) {
           return u64(counter(v, Counter::authenticated_replies) - counter(v, Counter::authenticated_cmac) +
                      counter(v, Counter::drop_bad_mac) - counter(v, Counter::auth_failed_cmac));
         }},
        {"authdigestfails",
         [](const SystemView& v) {
           return u64(counter(v, Counter::drop_bad_mac) - counter(v, Counter::auth_failed_cmac));
         }},
        {"authcmacdecrypts",
         [](const SystemView& v) {
           return u64(counter(v, Counter::authenticated_cmac) + counter(v, Counter::auth_failed_cmac));
         }},
        {"authcmacfails", [](const SystemView& v) { return u64(counter(v, Counter::auth_failed_cmac)); }},
        // timerstats: stratad sends nothing on a timer
        {"timerstats_reset", [](const SystemView& v) { return u64(period(v.uptime_s)); }},
        {"timer_overruns", [](const SystemView&) { return std::string("0"); }},
        {"timer_xmts", [](const SystemView&) { return std::string("0"); }},
    };
    for (const Stat& s : sysstats()) {
      const auto get = s.get;
      m.emplace(s.name, [get](const SystemView& v) { return u64(get(v)); });
    }
    return m;
  }();
  return t;
}

// "ss_X_r" names: the same values (totals since start).
const std::unordered_map<std::string, Getter>& totals() {
  static const std::unordered_map<std::string, Getter> t = [] {
    std::unordered_map<std::string, Getter> m;
    for (const Stat& s : sysstats()) {
      const auto get = s.get;
      m.emplace(std::string(s.name) + "_r", [get](const SystemView& v) { return u64(get(v)); });
    }
    return m;
  }();
  return t;
}

}  // namespace

std::optional<std::string> variable(std::string_view name, const SystemView& view) {
  if (const auto it = table().find(name); it != table().end()) return it->second(view);
  if (const auto it = totals().find(std::string(name)); it != totals().end()) return it->second(view);
  return std::nullopt;
}

const std::vector<std::string_view>& default_variables() {
  static const std::vector<std::string_view> names = {
      "version", "processor", "system", "leap", "stratum", "precision", "rootdelay",
      "rootdisp", "refid", "reftime", "clock", "peer", "tc", "mintc", "offset", "frequency",
      "sys_jitter", "clk_jitter", "clk_wander", "tai"};
  return names;
}

std::vector<std::string_view> split_names(std::string_view data) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i <= data.size()) {
    size_t j = data.find(',', i);
    if (j == std::string_view::npos) j = data.size();
    std::string_view name = data.substr(i, j - i);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) name.remove_prefix(1);
    while (!name.empty() && (std::isspace(static_cast<unsigned char>(name.back())) || name.back() == '\0'))
      name.remove_suffix(1);
    if (!name.empty()) out.push_back(name);
    i = j + 1;
  }
  return out;
}

}  // namespace strata::mode6
