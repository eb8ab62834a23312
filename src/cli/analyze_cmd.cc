// `strata analyze`: NTP traffic in packet captures (see analyze/analysis.h), read with libpcap
// (pcap and pcapng), reported as text tables or JSON, with what blocking the busiest clients
// would save under a provider's prices (cli/cost.h).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pcap/pcap.h>
#include <stdio_ext.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <cmath>

#include "control/json_text.h"
#include "analyze/analysis.h"
#include "analyze/replay.h"
#include "config/rules.h"
#include "cli/analyze_html.h"
#include "cli/captures.h"
#include "cli/commands.h"
#include "policy/networks.h"
#include "cli/cost.h"

namespace strata::cli {

namespace {

std::string grouped(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string pct(double share) { return fmt::format("{:.2f}%", 100 * share); }

std::string utc(double s) {
  const auto t = static_cast<time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

CaptureRead read_captures(const std::vector<std::string>& paths, analyze::Analysis& analysis,
                          analyze::Replay* replay, const char* who) {
  CaptureRead out;
  for (const std::string& path : paths) {
    char err[PCAP_ERRBUF_SIZE] = {};
    // Our own FILE with a 1 MiB buffer: libpcap reads each record with two small freads.
    FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
      fmt::print(stderr, "{}: {}: {}\n", who, path, std::strerror(errno));
      out.status = 1;
      continue;
    }
    std::setvbuf(file, nullptr, _IOFBF, 1 << 20);
    // Only this thread reads it: no lock per fread. Locked, each of libpcap's two freads per
    // frame is two atomic instructions, and each of those waits for the memory accesses
    // before it, the client table's prefetches included.
    __fsetlocking(file, FSETLOCKING_BYCALLER);
    pcap_t* pc = pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, err);
    if (pc == nullptr) {  // libpcap closed nothing: the file is ours to close
      std::fclose(file);
      fmt::print(stderr, "{}: {}: {}\n", who, path, err);
      out.status = 1;
      continue;
    }
    CaptureFile fr;
    fr.name = path;
    const int link = pcap_datalink(pc);
    const char* link_name = pcap_datalink_val_to_name(link);
    fr.link = link_name ? link_name : std::to_string(link);
    if (!analyze::link_supported(link)) {
      fmt::print(stderr, "{}: {}: link type {} is not supported (Ethernet, Linux SLL/SLL2, raw IP, "
                         "BSD loopback are)\n", who, path, fr.link);
      pcap_close(pc);
      out.status = 1;
      continue;
    }
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    analyze::Analysis::Pipeline pipeline(analysis);
    analyze::Decoded d;
    for (;;) {
      const int r = pcap_next_ex(pc, &h, &data);
      if (r == 1) {
        ++fr.frames;
        const double ts = static_cast<double>(h->ts.tv_sec) + static_cast<double>(h->ts.tv_usec) * 1e-9;
        analyze::decode(link, {data, h->caplen}, d);
        analyze::Analysis::Prepared& p = pipeline.push(ts, d);
        if (replay && p.ntp && p.direction == analyze::Direction::kRequest) {
          const auto outcome = replay->request(ts, {d.source, d.source_port}, d.destination, d.payload, d.ip_length);
          p.replay = outcome == analyze::ReplayOutcome::kKod       ? analyze::kReplayKod
                     : outcome == analyze::ReplayOutcome::kDropped ? analyze::kReplayDropped
                                                                   : 0;
        }
        continue;
      }
      pipeline.flush();
      if (r == PCAP_ERROR) {
        fr.warning = fmt::format("read up to frame {}, then: {}; the rest of the file is skipped",
                                 grouped(fr.frames), pcap_geterr(pc));
        fmt::print(stderr, "{}: warning: {}: {}\n", who, path, fr.warning);
      }
      break;
    }
    pcap_close(pc);
    out.files.push_back(fr);
  }
  // Silent zeros help nobody: NTP on another port (a lab server, a mirror) is said so.
  const analyze::Totals& t = analysis.totals();
  if (t.requests + t.replies + t.unknown == 0 && t.other_udp > 0) {
    if (const auto busiest = analysis.busiest_other_udp_port()) {
      out.port_hint = fmt::format("no NTP on UDP port {}; the busiest UDP port was {} ({} of {} UDP "
                                  "datagrams): try --port {}",
                                  analysis.options().port, busiest->first, grouped(busiest->second),
                                  grouped(t.other_udp), busiest->first);
      fmt::print(stderr, "{}: {}\n", who, out.port_hint);
    }
  }
  return out;
}

int run_analyze(const AnalyzeOptions& opt) {
  analyze::Options options;
  options.port = opt.port;
  if (!opt.server.empty()) {
    options.server = base::IpAddress::parse(opt.server);
    if (!options.server) {
      fmt::print(stderr, "strata analyze: --server {}: not an IP address\n", opt.server);
      return 2;
    }
  }
  // Prices for the money columns: the built-in file's provider, or a flat price.
  std::string price_error;
  const std::optional<Provider> chosen = stats::choose_provider(opt.provider, "", opt.price, price_error);
  if (!chosen) {
    fmt::print(stderr, "strata analyze: {}\n", price_error);
    return 2;
  }
  const Provider& provider = *chosen;

  std::unique_ptr<analyze::Replay> replay;
  if (!opt.policy.empty()) {
    const config::LoadResult loaded = config::load_config(opt.policy);
    if (!loaded.config) {
      for (const auto& e : loaded.errors) fmt::print(stderr, "strata analyze: {}\n", e.to_string());
      return 2;
    }
    replay = std::make_unique<analyze::Replay>(config::make_rules(*loaded.config), loaded.config->clients.memory,
                                               loaded.config->blocks);
  }

  std::shared_ptr<const policy::NetworkDb> networks;
  if (!opt.networks.empty()) {
    if (opt.networks.size() > 2) {
      fmt::print(stderr, "strata analyze: --networks takes an ASN and a country database at most\n");
      return 2;
    }
    // One file may hold both fields (IPinfo Lite); a lookup of a field a file lacks finds nothing.
    std::string error;
    networks = policy::NetworkDb::open(opt.networks[0], opt.networks.back(), error);
    if (!networks) {
      fmt::print(stderr, "strata analyze: --networks: {}\n", error);
      return 2;
    }
  }

  analyze::Analysis analysis(options);
  const auto started = std::chrono::steady_clock::now();
  CaptureRead read = read_captures(opt.files, analysis, replay.get(), "strata analyze");
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::vector<CaptureFile>& files = read.files;
  int status = read.status;
  if (files.empty()) return status ? status : 1;

  const analyze::Totals& t = analysis.totals();
  const std::span<const analyze::ClientRecord> clients = analysis.clients();
  uint64_t v4 = 0, v6 = 0, requesting = 0;
  uint32_t busiest = 0;
  for (const auto& c : clients) {
    if (c.requests == 0) continue;
    ++requesting;
    (c.key.is_v4() ? v4 : v6) += 1;
    busiest = std::max(busiest, c.requests);
  }
  const auto dist = analyze::distribution(clients);
  const auto top = analyze::top_talkers(clients, opt.top);
  const auto rows = analyze::thresholds(clients, analyze::default_thresholds(busiest));
  const auto polls = analyze::intervals(clients);
  const auto software = analyze::classes(clients);
  uint64_t fast_total = 0;
  const auto fast = analyze::fast_pollers(clients, 64, opt.top, fast_total);
  uint64_t with_interval = 0;
  for (const auto& p : polls) with_interval += p.clients;
  // What-if: the clients the policy would have touched, and those of them polling at 64 s or
  // slower (a good policy touches none).
  uint64_t touched = 0, touched_slow = 0;
  std::vector<std::pair<base::IpAddress, double>> slow_examples;
  for (const auto& c : clients) {
    if (c.replay == 0) continue;
    ++touched;
    const int bin = c.median_gap_bin();
    if (bin >= analyze::gap_bin(64)) {
      ++touched_slow;
      if (slow_examples.size() < 10) slow_examples.emplace_back(c.key.address(), c.median_interval_s());
    }
  }
  const double duration = t.duration();
  // Money: the replies' bytes per month, and what blocking saves of them.
  const double month_factor = duration > 0 ? kMonthSeconds / duration : 0;
  const double reply_gib_month = static_cast<double>(t.reply_bytes) * month_factor / kGiB;
  const double cost_now = tiered_cost(provider, reply_gib_month).usd;
  // What-if baseline: every request answered with a reply of its own size.
  const double all_answered_gib = static_cast<double>(t.request_bytes) * month_factor / kGiB;
  const double cost_all = tiered_cost(provider, all_answered_gib).usd;
  // GiB a month of replies a threshold row cuts, and the money per year that saves.
  const auto cut_gib = [&](const analyze::ThresholdRow& r) {
    return static_cast<double>(r.reply_bytes_cut) * month_factor / kGiB;
  };
  const auto threshold_saving = [&](const analyze::ThresholdRow& r) {
    return 12 * (cost_now - tiered_cost(provider, reply_gib_month - cut_gib(r)).usd);
  };
  const auto unanswered = [](const analyze::Analysis::ServerStats& srv) {
    return srv.requests ? 1 - std::min(1.0, static_cast<double>(srv.replies) / static_cast<double>(srv.requests))
                        : 0.0;
  };
  const auto what_if_saving = [&](double saved_gib) {
    return 12 * (cost_all - tiered_cost(provider, std::max(0.0, all_answered_gib - saved_gib)).usd);
  };

  if (!opt.csv_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt.csv_dir, ec);
    const auto open = [&](const char* name) {
      auto f = std::make_unique<std::ofstream>(std::filesystem::path(opt.csv_dir) / name);
      if (!*f) {
        fmt::print(stderr, "strata analyze: cannot write {}/{}\n", opt.csv_dir, name);
        return std::unique_ptr<std::ofstream>();
      }
      return f;
    };
    if (auto f = open("clients.csv")) {
      *f << "address,requests,replies,request_bytes,reply_bytes,software,median_interval_s\n";
      for (const auto& c : clients)
        if (c.requests != 0 || c.replies != 0)
          *f << c.key.address().to_string() << ',' << c.requests << ',' << c.replies << ',' << c.request_bytes
             << ',' << c.reply_bytes << ',' << analyze::class_name(c.software) << ','
             << (c.median_interval_s() < 0 ? std::string() : fmt::format("{:g}", c.median_interval_s())) << '\n';
    } else {
      return 1;
    }
    if (auto f = open("distribution.csv")) {
      *f << "min_requests,max_requests,clients,requests\n";
      for (const auto& b : dist.buckets) *f << b.min << ',' << b.max << ',' << b.clients << ',' << b.requests << '\n';
    }
    if (auto f = open("intervals.csv")) {
      *f << "interval_s,clients,requests\n";
      for (const auto& p : polls) *f << (1u << p.bin) << ',' << p.clients << ',' << p.requests << '\n';
    }
    if (auto f = open("thresholds.csv")) {
      *f << "n,clients_at_most,request_share_at_most,clients_blocked,requests_cut,request_share_cut,"
            "usd_per_year_saved\n";
      for (const auto& r : rows)
        *f << r.n << ',' << r.clients_at_most << ',' << r.request_share_at_most << ',' << r.clients_blocked << ','
           << r.requests_cut << ',' << r.request_share_cut << ',' << threshold_saving(r) << '\n';
    }
  }
  // One document for --json and --html alike.
  nlohmann::json j;
  {
    nlohmann::json jf = nlohmann::json::array();
    for (const auto& f : files)
      jf.push_back({{"file", f.name}, {"link", f.link}, {"frames", f.frames}, {"warning", f.warning}});
    j["files"] = jf;
    j["duration_s"] = duration;
    j["first"] = t.first_s;
    j["last"] = t.last_s;
    j["frames"] = {{"total", t.frames}, {"not_ip", t.not_ip}, {"other_ip", t.other_ip},
                   {"fragments", t.fragments}, {"truncated", t.truncated}, {"other_udp", t.other_udp},
                   {"unknown_direction", t.unknown}};
    if (!read.port_hint.empty()) j["port_hint"] = read.port_hint;
    j["requests"] = {{"total", t.requests}, {"v4", t.requests_v4}, {"v6", t.requests_v6}, {"bytes", t.request_bytes}};
    j["replies"] = {{"total", t.replies}, {"v4", t.replies_v4}, {"v6", t.replies_v6}, {"bytes", t.reply_bytes},
                    {"kod", t.kod_replies}};
    const auto share = [](uint64_t part, uint64_t whole) {
      return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
    };
    j["nts"] = {{"requests", t.nts_requests},
                {"replies", t.nts_replies},
                {"request_share", share(t.nts_requests, t.requests)},
                {"request_bytes", t.nts_request_bytes},
                {"reply_bytes", t.nts_reply_bytes},
                {"byte_share", share(t.nts_request_bytes + t.nts_reply_bytes, t.request_bytes + t.reply_bytes)},
                {"naks", t.nts_naks}};
    j["clients"] = {{"unique", requesting}, {"v4", v4}, {"v6", v6}, {"table_bytes", analysis.memory_bytes()}};
    nlohmann::json jd = nlohmann::json::array();
    for (const auto& b : dist.buckets)
      jd.push_back({{"min", b.min}, {"max", b.max}, {"clients", b.clients}, {"requests", b.requests}});
    j["requests_per_client"] = jd;
    nlohmann::json jt = nlohmann::json::array();
    for (const auto& x : top)
      jt.push_back({{"address", x.address.to_string()}, {"requests", x.requests},
                    {"share", t.requests ? static_cast<double>(x.requests) / static_cast<double>(t.requests) : 0}});
    j["top"] = jt;
    nlohmann::json jr = nlohmann::json::array();
    for (const auto& r : rows)
      jr.push_back({{"n", r.n}, {"clients_at_most", r.clients_at_most},
                    {"request_share_at_most", r.request_share_at_most}, {"clients_blocked", r.clients_blocked},
                    {"requests_cut", r.requests_cut}, {"request_share_cut", r.request_share_cut},
                    {"reply_gib_per_month_cut", cut_gib(r)}, {"usd_per_year_saved", threshold_saving(r)}});
    j["thresholds"] = jr;
    nlohmann::json jp = nlohmann::json::array();
    for (const auto& p : polls)
      if (p.clients > 0) jp.push_back({{"seconds", 1u << p.bin}, {"clients", p.clients}, {"requests", p.requests}});
    j["poll_intervals"] = jp;
    nlohmann::json js = nlohmann::json::array();
    for (const auto& [key, srv] : analysis.servers())
      js.push_back({{"address", key.address().to_string()}, {"requests", srv.requests}, {"replies", srv.replies},
                    {"kod", srv.kod},
                    {"unanswered_share", unanswered(srv)},
                    {"processing_ns",
                     {{"count", srv.processing_ns.total()}, {"p50", srv.processing_ns.quantile(0.5)},
                      {"p99", srv.processing_ns.quantile(0.99)}, {"p999", srv.processing_ns.quantile(0.999)}}}});
    j["servers"] = js;
    nlohmann::json jc = nlohmann::json::array();
    for (const auto& c : software)
      if (c.clients > 0)
        jc.push_back({{"class", analyze::class_name(c.software)}, {"clients", c.clients}, {"requests", c.requests},
                      {"request_share", t.requests ? static_cast<double>(c.requests) / static_cast<double>(t.requests) : 0},
                      {"explanation", analyze::class_explanation(c.software)}});
    j["software"] = jc;
    nlohmann::json jfast = nlohmann::json::array();
    for (const auto& f : fast)
      jfast.push_back({{"address", f.address.to_string()}, {"requests", f.requests}, {"median_interval_s", f.interval_s}});
    j["fast_pollers"] = {{"below_s", 64}, {"clients", fast_total}, {"busiest", jfast}};
    j["provider"] = provider.name;
    j["reply_gib_per_month"] = reply_gib_month;
    j["usd_per_year"] = 12 * cost_now;
    j["seconds_to_read"] = elapsed;
    j["seconds_for_reports"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() - elapsed;
    if (networks) {
      // Every client looked up (exact: the capture has every address), grouped by its AS and
      // by its country; money: its share of the replies' bytes of the month's bill.
      struct Group {
        uint64_t clients = 0, requests = 0, replies = 0, request_bytes = 0, reply_bytes = 0;
        uint32_t asn = 0;
      };
      std::map<std::string, Group> by_network, by_country;
      for (const auto& c : clients) {
        if (c.requests == 0 && c.replies == 0) continue;
        const policy::NetworkInfo info = networks->lookup(c.key.address());
        for (auto* g : {&by_network[policy::network_name(info)],
                        &by_country[policy::country_name(info)]}) {
          g->clients += c.requests != 0;
          g->requests += c.requests;
          g->replies += c.replies;
          g->request_bytes += c.request_bytes;
          g->reply_bytes += c.reply_bytes;
          g->asn = info.asn;
        }
      }
      const auto ranked = [&](const std::map<std::string, Group>& groups, bool asn) {
        std::vector<std::pair<std::string, Group>> v(groups.begin(), groups.end());
        std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
          return a.second.requests != b.second.requests ? a.second.requests > b.second.requests : a.first < b.first;
        });
        nlohmann::json out = nlohmann::json::array();
        for (size_t i = 0; i < v.size() && i < std::max<size_t>(opt.top, 1); ++i) {
          const auto& [name, g] = v[i];
          const double reply_share = share(g.reply_bytes, t.reply_bytes);
          nlohmann::json row{{"name", name}, {"clients", g.clients}, {"requests", g.requests},
                             {"request_share", share(g.requests, t.requests)}, {"replies", g.replies},
                             {"request_bytes", g.request_bytes}, {"reply_bytes", g.reply_bytes},
                             {"reply_byte_share", reply_share}, {"usd_per_year", 12 * cost_now * reply_share}};
          if (asn) row["asn"] = g.asn;
          out.push_back(std::move(row));
        }
        return out;
      };
      j["networks"] = {{"databases", networks->describe()},
                       {"by_network", ranked(by_network, true)},
                       {"by_country", ranked(by_country, false)}};
    }
    const auto placed_json = [&] {
      nlohmann::json list = nlohmann::json::array();
      for (const policy::Block& b : replay->blocks_placed())
        list.push_back({{"prefix", b.prefix.to_string()}, {"action", policy::block_action_name(b.action)},
                        {"rule", b.rule}, {"reason", b.reason}, {"since", b.since_s}, {"expires", b.expires_s},
                        {"offence", b.offence}, {"hits", b.total_hits()}});
      return list;
    };
    if (replay) {
      const auto& r = replay->totals();
      const double saved_gib = static_cast<double>(r.bytes_saved) * month_factor / kGiB;
      nlohmann::json slow = nlohmann::json::array();
      for (const auto& [a, seconds] : slow_examples) slow.push_back({{"address", a.to_string()}, {"median_interval_s", seconds}});
      j["what_if"] = {{"policy", opt.policy}, {"requests", r.requests}, {"answered", r.answered},
                      {"kod", r.kod}, {"dropped", r.dropped}, {"dropped_limited", r.dropped_limited},
                      {"dropped_denied", r.dropped_denied}, {"dropped_other", r.dropped_other},
                      {"blocked", r.blocked}, {"dropped_blocked", r.dropped_blocked}, {"blocks", placed_json()},
                      {"reply_bytes_saved", r.bytes_saved}, {"reply_gib_per_month_saved", saved_gib},
                      {"usd_per_year_saved", what_if_saving(saved_gib)},
                      {"clients_touched", touched}, {"clients_touched_polling_64s_or_slower", touched_slow},
                      {"examples_polling_64s_or_slower", slow}};
    }
  }
  if (!opt.html.empty()) {
    std::ofstream out(opt.html, std::ios::trunc);
    out << render_html(j);
    if (!out) {
      fmt::print(stderr, "strata analyze: cannot write {}\n", opt.html);
      return 1;
    }
  }
  if (opt.json) {
    fmt::print("{}\n", control::json_text(j, 2));
    return status;
  }

  for (const auto& f : files)
    fmt::print("Capture      {} ({}), {} frames{}\n", f.name, f.link, grouped(f.frames),
               f.warning.empty() ? "" : "  WARNING: " + f.warning);
  if (t.any)
    fmt::print("Time         {} to {} ({:.1f} s)\n", utc(t.first_s), utc(t.last_s), duration);
  if (!read.port_hint.empty()) fmt::print("NOTE         {}\n", read.port_hint);
  fmt::print("Frames       {}: NTP requests {}, replies {}, direction unknown {}; other UDP {}, other IP {}, "
             "not IP {}, fragments {}, truncated {}\n",
             grouped(t.frames), grouped(t.requests), grouped(t.replies), grouped(t.unknown), grouped(t.other_udp),
             grouped(t.other_ip), grouped(t.not_ip), grouped(t.fragments), grouped(t.truncated));
  fmt::print("Requests     IPv4 {}, IPv6 {}; {} bytes at the IP level{}\n", grouped(t.requests_v4),
             grouped(t.requests_v6), grouped(t.request_bytes),
             duration > 0 ? fmt::format("; {:.1f}/s", static_cast<double>(t.requests) / duration) : "");
  fmt::print("Replies      IPv4 {}, IPv6 {}; {} bytes; KoD {}\n", grouped(t.replies_v4), grouped(t.replies_v6),
             grouped(t.reply_bytes), grouped(t.kod_replies));
  if (t.nts_requests + t.nts_replies > 0) {
    const uint64_t all = t.request_bytes + t.reply_bytes;
    fmt::print("NTS          requests {} ({} of requests), replies {}, KoD NTSN {}; {} bytes in, {} out "
               "({} of all bytes; {:.0f} per NTS request, {:.0f} per NTS reply)\n",
               grouped(t.nts_requests), pct(t.requests ? static_cast<double>(t.nts_requests) / static_cast<double>(t.requests) : 0),
               grouped(t.nts_replies), grouped(t.nts_naks), grouped(t.nts_request_bytes), grouped(t.nts_reply_bytes),
               pct(all ? static_cast<double>(t.nts_request_bytes + t.nts_reply_bytes) / static_cast<double>(all) : 0),
               t.nts_requests ? static_cast<double>(t.nts_request_bytes) / static_cast<double>(t.nts_requests) : 0.0,
               t.nts_replies ? static_cast<double>(t.nts_reply_bytes) / static_cast<double>(t.nts_replies) : 0.0);
  }
  fmt::print("Clients      {} unique: IPv4 {}, IPv6 {}\n", grouped(requesting), grouped(v4), grouped(v6));
  fmt::print("\nRequests per client\n  {:>13} {:>10} {:>9} {:>12} {:>9}\n", "requests", "clients", "share",
             "requests", "share");
  for (const auto& b : dist.buckets) {
    if (b.clients == 0) continue;
    fmt::print("  {:>13} {:>10} {:>9} {:>12} {:>9}\n",
               b.min == b.max ? std::to_string(b.min) : fmt::format("{}-{}", b.min, b.max), grouped(b.clients),
               pct(requesting ? static_cast<double>(b.clients) / static_cast<double>(requesting) : 0),
               grouped(b.requests), pct(t.requests ? static_cast<double>(b.requests) / static_cast<double>(t.requests) : 0));
  }
  fmt::print("\nTop talkers\n  {:>4} {:<40} {:>10} {:>9}\n", "rank", "address", "requests", "share");
  for (size_t i = 0; i < top.size(); ++i)
    fmt::print("  {:>4} {:<40} {:>10} {:>9}\n", i + 1, top[i].address.to_string(), grouped(top[i].requests),
               pct(t.requests ? static_cast<double>(top[i].requests) / static_cast<double>(t.requests) : 0));
  if (j.contains("networks")) {
    for (const auto& [title, key] : {std::pair{"Top networks", "by_network"}, std::pair{"Top countries", "by_country"}}) {
      fmt::print("\n{} ({})\n  {:>4} {:<40} {:>9} {:>10} {:>9} {:>10} {:>12}\n", title,
                 j["networks"]["databases"].get<std::string>(), "rank", key == std::string("by_network") ? "network" : "country",
                 "clients", "requests", "share", "replies", "cost/year");
      int rank = 0;
      for (const auto& row : j["networks"][key])
        fmt::print("  {:>4} {:<40} {:>9} {:>10} {:>9} {:>10} {:>12}\n", ++rank, row["name"].get<std::string>(),
                   grouped(row["clients"].get<uint64_t>()), grouped(row["requests"].get<uint64_t>()),
                   pct(row["request_share"].get<double>()), grouped(row["replies"].get<uint64_t>()),
                   fmt::format("${:.2f}", row["usd_per_year"].get<double>()));
    }
  }
  fmt::print("\nShare of requests from clients with at most N requests, and blocking those with more\n");
  fmt::print("(money: the replies' bytes scaled from {:.1f} s to a month, {} prices; now {:.1f} GiB/month, {}/year)\n",
             duration, provider.name, reply_gib_month, fmt::format("${:.2f}", 12 * cost_now));
  fmt::print("  {:>8} {:>10} {:>9} {:>10} {:>12} {:>9} {:>14}\n", "N", "clients<=N", "share", "blocked",
             "requests cut", "share", "saved per year");
  for (const auto& r : rows)
    fmt::print("  {:>8} {:>10} {:>9} {:>10} {:>12} {:>9} {:>14}\n", grouped(r.n), grouped(r.clients_at_most),
               pct(r.request_share_at_most), grouped(r.clients_blocked), grouped(r.requests_cut),
               pct(r.request_share_cut), fmt::format("${:.2f}", threshold_saving(r)));
  if (!analysis.servers().empty()) {
    fmt::print("\nBy server: requests to it, its replies, the share left unanswered (dropped: rate limiting and "
               "the like), the KoD share of its replies, and the processing time (transmit - receive timestamp) of "
               "its time replies\n");
    fmt::print("  {:<40} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10}\n", "server", "requests", "replies",
               "unanswered", "KoD", "p50", "p99", "p99.9");
    for (const auto& [key, srv] : analysis.servers()) {
      const auto& times = srv.processing_ns;  // (clang 14 lambdas cannot capture bindings)
      const auto us = [&](double q) {
        return times.total() ? fmt::format("{:.1f} us", times.quantile(q) / 1e3) : std::string("-");
      };
      fmt::print("  {:<40} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10}\n", key.address().to_string(),
                 grouped(srv.requests), grouped(srv.replies), pct(unanswered(srv)),
                 pct(srv.replies ? static_cast<double>(srv.kod) / static_cast<double>(srv.replies) : 0), us(0.5),
                 us(0.99), us(0.999));
    }
  }
  fmt::print("\nClient software, from the header fields of each client's last request\n  {:<14} {:>10} {:>9} {:>9}   {}\n",
             "class", "clients", "share", "traffic", "what it is");
  for (const auto& c : software) {
    if (c.clients == 0) continue;
    fmt::print("  {:<14} {:>10} {:>9} {:>9}   {}\n", analyze::class_name(c.software), grouped(c.clients),
               pct(requesting ? static_cast<double>(c.clients) / static_cast<double>(requesting) : 0),
               pct(t.requests ? static_cast<double>(c.requests) / static_cast<double>(t.requests) : 0),
               analyze::class_explanation(c.software));
  }
  fmt::print("\nPoll intervals: clients with two requests or more ({}), by the median gap between their "
             "requests\n  {:>9} {:>10} {:>9} {:>12}\n", grouped(with_interval), "interval", "clients", "share",
             "requests");
  for (const auto& p : polls) {
    if (p.clients == 0) continue;
    const std::string label = p.bin == 0 ? "<= 1 s"
                              : p.bin == analyze::kGapBins - 1 ? fmt::format(">= {} s", 1u << p.bin)
                                                               : fmt::format("{} s", 1u << p.bin);
    fmt::print("  {:>9} {:>10} {:>9} {:>12}\n", label, grouped(p.clients),
               pct(with_interval ? static_cast<double>(p.clients) / static_cast<double>(with_interval) : 0),
               grouped(p.requests));
  }
  fmt::print("\nClients polling faster than every 64 s: {}\n", grouped(fast_total));
  for (const auto& f : fast)
    fmt::print("  {:<40} {:>10} requests, about every {}\n", f.address.to_string(), grouped(f.requests),
               fmt::format("{:g} s", f.interval_s));
  if (replay) {
    const auto& r = replay->totals();
    const double saved_gib = static_cast<double>(r.bytes_saved) * month_factor / kGiB;
    const auto share = [&](uint64_t x) { return pct(r.requests ? static_cast<double>(x) / static_cast<double>(r.requests) : 0); };
    fmt::print("\nWhat if {} had been in force (stratad's rules and rate limiter, at the capture's times)\n", opt.policy);
    fmt::print("  requests      {}\n  answered      {} ({})\n  KoD           {} ({})\n"
               "  dropped       {} ({}): rate limit {}, deny/ignore rules {}, dynamic blocks {}, malformed or declined {}\n",
               grouped(r.requests), grouped(r.answered), share(r.answered), grouped(r.kod), share(r.kod),
               grouped(r.dropped), share(r.dropped), grouped(r.dropped_limited), grouped(r.dropped_denied),
               grouped(r.dropped_blocked), grouped(r.dropped_other));
    const auto& placed = replay->blocks_placed();
    fmt::print("  dynamic blocks placed by the rules: {}; requests that met one: {}\n", grouped(placed.size()),
               grouped(r.blocked));
    for (size_t i = 0; i < placed.size() && i < 20; ++i) {
      const policy::Block& b = placed[i];
      fmt::print("    {:<24} {:<5} rule \"{}\" at {} for {} s{}: {}; {} requests refused\n", b.prefix.to_string(),
                 policy::block_action_name(b.action), b.rule, utc_text(b.since_s), b.expires_s - b.since_s,
                 b.offence > 1 ? fmt::format(" (offence {})", b.offence) : "", b.reason, grouped(b.total_hits()));
    }
    if (placed.size() > 20) fmt::print("    ... and {} more (--json lists them all)\n", placed.size() - 20);
    fmt::print("  saved, compared with answering every request: {} bytes of replies, {:.2f} of {:.2f} GiB/month, "
               "{} a year at {} prices\n", grouped(r.bytes_saved), saved_gib, all_answered_gib,
               fmt::format("${:.2f}", what_if_saving(saved_gib)), provider.name);
    fmt::print("  clients touched {}; of them polling every 64 s or slower: {}{}\n", grouped(touched), grouped(touched_slow),
               touched_slow == 0 ? " (none: good)" : "  <- the policy hurts well-behaved clients");
    for (const auto& [a, seconds] : slow_examples) fmt::print("    {} (about every {:g} s)\n", a.to_string(), seconds);
  }
  fmt::print("\nRead in {:.2f} s ({:.1f} million frames/s), reports in {:.2f} s; client table {:.1f} MiB\n", elapsed,
             elapsed > 0 ? static_cast<double>(t.frames) / elapsed / 1e6 : 0,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() - elapsed,
             static_cast<double>(analysis.memory_bytes()) / (1 << 20));
  return status;
}

}  // namespace strata::cli
