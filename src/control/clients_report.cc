// "clients" control command (see clients_report.h).
#include "control/clients_report.h"
#include "control/json_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace strata::control {

namespace {

std::string flags_text(uint8_t f) {
  std::string s;
  if (f & clients::kFlagLimited) s += 'L';
  if (f & clients::kFlagKod) s += 'K';
  if (f & clients::kFlagLeaked) s += 'P';  // passed by the leak
  if (f & clients::kFlagNts) s += 'N';     // NTS
  if (f & clients::kFlagBlocked) s += 'B';  // a dynamic block
  return s;
}

bool address_less(const base::IpAddress& a, const base::IpAddress& b) {
  if (a.family != b.family) return a.family < b.family;
  return a.bytes < b.bytes;
}

}  // namespace

double average_interval_s(const clients::ClientSnapshot& c) {
  if (c.count < 2) return 0;
  return static_cast<double>(c.last_ns - c.first_ns) * 1e-9 / (c.count - 1);
}

const std::vector<std::string>& client_columns() {
  static const std::vector<std::string> kColumns = {
      "address", "local", "first", "last", "lstint", "avgint", "count",
      "mode",    "version", "drops", "kods", "flags"};
  return kColumns;
}

ClientQuery parse_client_query(const nlohmann::json& r) {
  ClientQuery q;
  if (r.contains("sort")) {
    std::string s = r["sort"].get<std::string>();
    if (!s.empty() && s.front() == '-') {
      q.reverse = true;
      s.erase(0, 1);
    }
    if (s == "lstint") q.sort = ClientSort::kLstint;
    else if (s == "count") q.sort = ClientSort::kCount;
    else if (s == "avgint") q.sort = ClientSort::kAvgint;
    else if (s == "addr") q.sort = ClientSort::kAddr;
    else throw std::invalid_argument("sort must be [-]lstint, [-]count, [-]avgint or [-]addr, not '" + s + "'");
  }
  if (r.contains("limit")) q.limit = r["limit"].get<size_t>();
  if (r.contains("mincount")) q.mincount = r["mincount"].get<uint32_t>();
  q.limited = r.value("limited", false);
  q.kod = r.value("kod", false);
  if (r.contains("prefix")) {
    const std::string text = r["prefix"].get<std::string>();
    q.prefix = base::Cidr::parse(text);
    if (!q.prefix) throw std::invalid_argument("prefix '" + text + "' is not an address/length");
  }
  if (r.contains("laddr")) {
    const std::string text = r["laddr"].get<std::string>();
    q.laddr = base::IpAddress::parse(text);
    if (!q.laddr) throw std::invalid_argument("laddr '" + text + "' is not an address");
  }
  return q;
}

nlohmann::json stream_clients(const std::vector<const clients::ClientTable*>& tables,
                              const ClientQuery& q, base::RealTime now, Responder& out,
                              const policy::NetworkDb* networks) {
  size_t total = 0, capacity = 0;
  for (const auto* t : tables) {
    total += t->size();
    capacity += t->capacity();
  }
  // The natural order of each key puts what an operator looks for first: most recent,
  // most requests, shortest average interval, lowest address.
  auto less = [&](const clients::ClientSnapshot& a, const clients::ClientSnapshot& b) {
    switch (q.sort) {
      case ClientSort::kLstint: return a.last_ns > b.last_ns;
      case ClientSort::kCount: return a.count > b.count;
      case ClientSort::kAvgint: {
        // Single requests have no interval: they go last.
        const double x = a.count < 2 ? 1e300 : average_interval_s(a);
        const double y = b.count < 2 ? 1e300 : average_interval_s(b);
        return x < y;
      }
      case ClientSort::kAddr: return address_less(a.address, b.address);
    }
    return false;
  };
  auto order = [&](const clients::ClientSnapshot& a, const clients::ClientSnapshot& b) {
    return q.reverse ? less(b, a) : less(a, b);
  };
  // With a limit, only the best `limit` rows are kept as the tables are walked (a heap whose
  // top is the worst kept): `clients --limit 10` on a full table of millions costs one pass
  // and ten rows of memory, not a copy of the table (+33 MB and 1.2 s at 3.4 million).
  std::vector<clients::ClientSnapshot> rows;
  if (q.limit == 0) rows.reserve(total);
  else rows.reserve(std::min(q.limit, total));
  size_t matched = 0;
  for (const auto* t : tables) {
    t->for_each([&](const clients::ClientSnapshot& c) {
      if (c.count < q.mincount) return;
      if (q.limited && !(c.flags & clients::kFlagLimited)) return;
      if (q.kod && c.kods == 0) return;
      if (q.prefix && !q.prefix->contains(c.address)) return;
      if (q.laddr && !(c.local == *q.laddr)) return;
      ++matched;
      if (q.limit == 0 || rows.size() < q.limit) {
        rows.push_back(c);
        if (q.limit != 0) std::push_heap(rows.begin(), rows.end(), order);
      } else if (order(c, rows.front())) {
        std::pop_heap(rows.begin(), rows.end(), order);
        rows.back() = c;
        std::push_heap(rows.begin(), rows.end(), order);
      }
    });
  }
  if (q.limit != 0) std::sort_heap(rows.begin(), rows.end(), order);
  else std::sort(rows.begin(), rows.end(), order);
  const size_t n = rows.size();

  const int64_t now_ns = now.time_since_epoch().count();
  std::vector<std::string> columns = client_columns();
  if (networks != nullptr) columns.insert(columns.end(), {"asn", "org", "country"});
  out.line(json_text(nlohmann::json{{"version", kProtocolVersion},
                          {"ok", true},
                          {"stream", true},
                          {"columns", columns},
                          {"now", static_cast<double>(now_ns) * 1e-9},
                          {"tracked", total},
                          {"capacity", capacity},
                          {"matched", matched},
                          {"rows", n}}));
  fmt::memory_buffer line;
  for (size_t i = 0; i < n && out.ok(); ++i) {
    const auto& c = rows[i];
    line.clear();
    fmt::format_to(std::back_inserter(line),
                   "[\"{}\",\"{}\",{:.6f},{:.6f},{:.3f},{:.3f},{},{},{},{},{},\"{}\"]",
                   c.address.to_string(), c.local.is_unspecified() ? "" : c.local.to_string(),
                   static_cast<double>(c.first_ns) * 1e-9, static_cast<double>(c.last_ns) * 1e-9,
                   std::max(0.0, static_cast<double>(now_ns - c.last_ns) * 1e-9),
                   average_interval_s(c), c.count, c.mode, c.version, c.drops, c.kods,
                   flags_text(c.flags));
    if (networks != nullptr) {
      const policy::NetworkInfo info = networks->lookup(c.address);
      line.resize(line.size() - 1);  // the row's closing bracket
      fmt::format_to(std::back_inserter(line), ",{},{},{}]", info.asn, json_text(nlohmann::json(info.org)),
                     json_text(nlohmann::json(info.country)));
    }
    out.line({line.data(), line.size()});
  }
  return {{"ok", true}, {"end", true}, {"rows", n}};
}

nlohmann::json clients_page_json(const std::vector<const clients::ClientTable*>& tables,
                                 const nlohmann::json& request, base::RealTime now,
                                 const policy::NetworkDb* networks) {
  nlohmann::json r = request;
  const auto bounded = [&](const char* name, int64_t fallback, int64_t lo, int64_t hi) {
    if (!r.contains(name)) return fallback;
    if (!r[name].is_number_integer()) throw std::invalid_argument(std::string(name) + " must be a whole number");
    const int64_t v = r[name].get<int64_t>();
    if (v < lo || v > hi)
      throw std::invalid_argument(std::string(name) + " must be " + std::to_string(lo) + ".." + std::to_string(hi));
    return v;
  };
  const int64_t page = bounded("limit", 50, 1, 1000);
  const int64_t offset = bounded("offset", 0, 0, 100000);
  if (r.contains("mincount") && !r["mincount"].is_number_unsigned())
    throw std::invalid_argument("mincount must be a whole number >= 0");
  for (const char* name : {"sort", "prefix", "laddr"})
    if (r.contains(name) && !r[name].is_string()) throw std::invalid_argument(std::string(name) + " must be text");
  for (const char* name : {"limited", "kod"})
    if (r.contains(name) && !r[name].is_boolean()) throw std::invalid_argument(std::string(name) + " must be true or false");
  r.erase("offset");
  r["limit"] = page + offset;
  const ClientQuery query = parse_client_query(r);
  std::string text;
  {
    Responder out(&text);
    stream_clients(tables, query, now, out, networks);
  }
  nlohmann::json header, rows = nlohmann::json::array();
  size_t at = 0, index = 0;
  while (at < text.size()) {
    const size_t nl = std::min(text.find('\n', at), text.size());
    const std::string_view line(text.data() + at, nl - at);
    at = nl + 1;
    if (index++ == 0) {
      header = nlohmann::json::parse(line);
      continue;
    }
    if (static_cast<int64_t>(index - 2) < offset) continue;
    rows.push_back(nlohmann::json::parse(line));
  }
  return {{"ok", true},
          {"columns", header["columns"]},
          {"now", header.value("now", 0.0)},
          {"tracked", header.value("tracked", size_t{0})},
          {"matched", header.value("matched", size_t{0})},
          {"offset", offset},
          {"limit", page},
          {"rows", rows}};
}

}  // namespace strata::control
