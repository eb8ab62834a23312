// The analysis as an HTML page (see analyze_html.h).
#include "cli/analyze_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace strata::cli {

namespace {

constexpr double kWidth = 720, kHeight = 300;
constexpr double kLeft = 70, kRight = 20, kTop = 36, kBottom = 60;

// Axis and tooltip numbers, never in exponent form ("1e+02" is no label for an operator).
std::string num(double v) {
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.0f}k", v / 1e3);
  if (v >= 100 || std::fabs(v - std::round(v)) < 1e-9) return fmt::format("{:.0f}", v);
  if (v >= 1) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

std::string pct(double share) { return fmt::format("{:.2f}%", 100 * share); }

// y position of `v` on a linear or log10 axis from 0 (or 1) to `max`.
double y_of(double v, double max, bool log_y) {
  const double plot = kHeight - kTop - kBottom;
  double f = 0;
  if (log_y) {
    const double top = std::log10(std::max(10.0, max));
    f = v <= 1 ? (v > 0 ? 0.02 : 0) : std::log10(v) / top;
  } else {
    f = max > 0 ? v / max : 0;
  }
  return kHeight - kBottom - f * plot;
}

std::string frame(const std::string& title, const std::string& body) {
  return fmt::format(R"~(<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{0}" height="{1}" viewBox="0 0 {0} {1}" role="img" aria-label="{2}">
<title>{2}</title><rect x="0" y="0" width="{0}" height="{1}" fill="#fff"/>
<text x="{3}" y="22" class="title">{2}</text>
{4}</svg>
)~",
                     kWidth, kHeight, html_escape(title), kLeft, body);
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_bars(const std::string& title, const Series& s, bool log_y, const std::string& y_label) {
  std::string body;
  const double max = s.values.empty() ? 1 : std::max(1.0, *std::max_element(s.values.begin(), s.values.end()));
  const double plot_w = kWidth - kLeft - kRight;
  // Axis and gridlines: powers of ten on a log axis, five steps on a linear one.
  std::vector<double> ticks;
  if (log_y) {
    for (double t = 1; t <= max * 1.0001; t *= 10) ticks.push_back(t);
  } else {
    for (int i = 0; i <= 4; ++i) ticks.push_back(max * i / 4);
  }
  for (double t : ticks) {
    const double y = y_of(t, max, log_y);
    body += fmt::format(R"~(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" class="grid"/><text x="{}" y="{:.1f}" class="tick" text-anchor="end">{}</text>
)~",
                        kLeft, kWidth - kRight, y, y, kLeft - 6, y + 4, num(t));
  }
  const size_t n = s.values.size();
  const double slot = n ? plot_w / static_cast<double>(n) : plot_w;
  for (size_t i = 0; i < n; ++i) {
    const double x = kLeft + slot * static_cast<double>(i) + slot * 0.1;
    const double y = y_of(s.values[i], max, log_y);
    body += fmt::format(R"~(<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"><title>{}: {}</title></rect>
<text x="{:.1f}" y="{}" class="tick" text-anchor="middle">{}</text>
)~",
                        x, y, slot * 0.8, kHeight - kBottom - y, html_escape(s.labels[i]), num(s.values[i]),
                        x + slot * 0.4, kHeight - kBottom + 16, html_escape(s.labels[i]));
  }
  body += fmt::format(R"~(<text x="14" y="{}" class="axis" transform="rotate(-90 14 {})" text-anchor="middle">{}{}</text>
)~",
                      kHeight / 2, kHeight / 2, html_escape(y_label), log_y ? " (log scale)" : "");
  return frame(title, body);
}

std::string svg_line(const std::string& title, const std::vector<double>& xs, const std::vector<double>& ys,
                     bool log_x, const std::string& x_label, const std::string& y_label) {
  std::string body;
  const double plot_w = kWidth - kLeft - kRight;
  const double x_max = xs.empty() ? 1 : std::max(1.0, xs.back());
  const auto x_of = [&](double x) {
    const double f = log_x ? std::log10(std::max(1.0, x)) / std::max(1e-9, std::log10(std::max(10.0, x_max)))
                           : x / x_max;
    return kLeft + f * plot_w;
  };
  for (int i = 0; i <= 4; ++i) {
    const double y = y_of(0.25 * i, 1.0, false);
    body += fmt::format(R"~(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" class="grid"/><text x="{}" y="{:.1f}" class="tick" text-anchor="end">{}%</text>
)~",
                        kLeft, kWidth - kRight, y, y, kLeft - 6, y + 4, 25 * i);
  }
  if (log_x) {
    for (double t = 1; t <= x_max * 1.0001; t *= 10)
      body += fmt::format(R"~(<text x="{:.1f}" y="{}" class="tick" text-anchor="middle">{}</text>
)~",
                          x_of(t), kHeight - kBottom + 16, num(t));
  }
  std::string points;
  for (size_t i = 0; i < xs.size() && i < ys.size(); ++i)
    points += fmt::format("{:.1f},{:.1f} ", x_of(xs[i]), y_of(ys[i], 1.0, false));
  body += fmt::format(R"~(<polyline class="line" points="{}"/>
)~",
                      points);
  for (size_t i = 0; i < xs.size() && i < ys.size(); ++i)
    body += fmt::format(R"~(<circle class="dot" cx="{:.1f}" cy="{:.1f}" r="3"><title>{}: {}</title></circle>
)~",
                        x_of(xs[i]), y_of(ys[i], 1.0, false), num(xs[i]), pct(ys[i]));
  body += fmt::format(R"~(<text x="{}" y="{}" class="axis" text-anchor="middle">{}{}</text>
<text x="14" y="{}" class="axis" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>
)~",
                      kLeft + plot_w / 2, kHeight - 14, html_escape(x_label), log_x ? " (log scale)" : "",
                      kHeight / 2, kHeight / 2, html_escape(y_label));
  return frame(title, body);
}

std::string render_html(const nlohmann::json& r) {
  std::string h;
  const auto cell = [](const std::string& s) { return "<td>" + html_escape(s) + "</td>"; };
  const auto ncell = [](const std::string& s) { return "<td class=\"n\">" + html_escape(s) + "</td>"; };
  h += R"~(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>strata analyze</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.chart .title{font-weight:600;font-size:14px}.chart .tick{font-size:11px;fill:#555}.chart .axis{font-size:12px;fill:#333}
.chart .grid{stroke:#e5e5e5}.chart .bar{fill:#3b73b9}.chart .line{fill:none;stroke:#c0392b;stroke-width:2}.chart .dot{fill:#c0392b}
.note{color:#555;font-size:.9em}
</style></head><body>
<h1>NTP traffic in the capture</h1>
)~";
  // Summary.
  h += "<table id=\"summary\">";
  for (const auto& f : r["files"])
    h += "<tr><th>capture</th>" + cell(f["file"].get<std::string>() + " (" + f["link"].get<std::string>() + ", " +
                                       std::to_string(f["frames"].get<uint64_t>()) + " frames)" +
                                       (f["warning"].get<std::string>().empty() ? "" : " WARNING: " + f["warning"].get<std::string>())) +
         "</tr>";
  h += "<tr><th>duration</th>" + cell(fmt::format("{:.1f} s", r["duration_s"].get<double>())) + "</tr>";
  h += "<tr><th>requests</th>" + cell(fmt::format("{} (IPv4 {}, IPv6 {}), {} bytes at the IP level",
                                                   r["requests"]["total"].get<uint64_t>(), r["requests"]["v4"].get<uint64_t>(),
                                                   r["requests"]["v6"].get<uint64_t>(), r["requests"]["bytes"].get<uint64_t>())) +
       "</tr>";
  h += "<tr><th>replies</th>" + cell(fmt::format("{} ({} bytes), KoD {}", r["replies"]["total"].get<uint64_t>(),
                                                  r["replies"]["bytes"].get<uint64_t>(), r["replies"]["kod"].get<uint64_t>())) +
       "</tr>";
  h += "<tr><th>unique clients</th>" + cell(fmt::format("{} (IPv4 {}, IPv6 {})", r["clients"]["unique"].get<uint64_t>(),
                                                         r["clients"]["v4"].get<uint64_t>(), r["clients"]["v6"].get<uint64_t>())) +
       "</tr>";
  h += "<tr><th>other frames</th>" +
       cell(fmt::format("other UDP {}, other IP {}, not IP {}, fragments {}, truncated {}",
                        r["frames"]["other_udp"].get<uint64_t>(), r["frames"]["other_ip"].get<uint64_t>(),
                        r["frames"]["not_ip"].get<uint64_t>(), r["frames"]["fragments"].get<uint64_t>(),
                        r["frames"]["truncated"].get<uint64_t>())) +
       "</tr></table>\n";

  // Requests per client.
  Series dist;
  for (const auto& b : r["requests_per_client"]) {
    const auto lo = b["min"].get<uint32_t>(), hi = b["max"].get<uint32_t>();
    dist.labels.push_back(lo == hi ? std::to_string(lo) : fmt::format("{}-{}", lo, hi));
    dist.values.push_back(b["clients"].get<double>());
  }
  h += "<h2>Requests per client</h2>\n" + svg_bars("Clients by their number of requests", dist, true, "clients");

  // Cumulative share.
  std::vector<double> xs, ys;
  for (const auto& t : r["thresholds"]) {
    xs.push_back(t["n"].get<double>());
    ys.push_back(t["request_share_at_most"].get<double>());
  }
  h += "<h2>Share of traffic by client activity</h2>\n" +
       svg_line("Share of requests from clients with at most N requests", xs, ys, true, "N requests in the capture",
                "share of requests");

  // Blocking.
  h += fmt::format("<h2>Blocking the busiest clients</h2>\n<p class=\"note\">Replies now: {:.2f} GiB a month, "
                   "${:.2f} a year at {} prices (the capture's reply bytes scaled to a month).</p>\n",
                   r["reply_gib_per_month"].get<double>(), r["usd_per_year"].get<double>(),
                   html_escape(r["provider"].get<std::string>()));
  h += "<table id=\"thresholds\"><tr><th class=\"n\">block clients with more than N</th><th class=\"n\">clients blocked</th>"
       "<th class=\"n\">requests cut</th><th class=\"n\">share cut</th><th class=\"n\">saved per year</th></tr>\n";
  for (const auto& t : r["thresholds"])
    h += "<tr>" + ncell(std::to_string(t["n"].get<uint32_t>())) + ncell(std::to_string(t["clients_blocked"].get<uint64_t>())) +
         ncell(std::to_string(t["requests_cut"].get<uint64_t>())) + ncell(pct(t["request_share_cut"].get<double>())) +
         ncell(fmt::format("${:.2f}", t["usd_per_year_saved"].get<double>())) + "</tr>\n";
  h += "</table>\n";

  // Top talkers.
  h += "<h2>Top talkers</h2>\n<table id=\"top\"><tr><th class=\"n\">rank</th><th>address</th><th class=\"n\">requests</th>"
       "<th class=\"n\">share</th></tr>\n";
  int rank = 0;
  for (const auto& t : r["top"])
    h += "<tr>" + ncell(std::to_string(++rank)) + cell(t["address"].get<std::string>()) +
         ncell(std::to_string(t["requests"].get<uint64_t>())) + ncell(pct(t["share"].get<double>())) + "</tr>\n";
  h += "</table>\n";

  // Poll intervals.
  Series polls;
  for (const auto& p : r["poll_intervals"]) {
    polls.labels.push_back(fmt::format("{} s", p["seconds"].get<uint32_t>()));
    polls.values.push_back(p["clients"].get<double>());
  }
  h += "<h2>Poll intervals</h2>\n" +
       svg_bars("Clients by the median gap between their requests", polls, true, "clients");
  h += fmt::format("<p>Clients polling faster than every 64 s: {}.</p>\n",
                   r["fast_pollers"]["clients"].get<uint64_t>());

  // Software.
  Series sw;
  h += "<h2>Client software</h2>\n<table id=\"software\"><tr><th>class</th><th class=\"n\">clients</th>"
       "<th class=\"n\">traffic</th><th>what it is</th></tr>\n";
  for (const auto& c : r["software"]) {
    sw.labels.push_back(c["class"].get<std::string>());
    sw.values.push_back(100 * c["request_share"].get<double>());
    h += "<tr>" + cell(c["class"].get<std::string>()) + ncell(std::to_string(c["clients"].get<uint64_t>())) +
         ncell(pct(c["request_share"].get<double>())) + cell(c["explanation"].get<std::string>()) + "</tr>\n";
  }
  h += "</table>\n" + svg_bars("Share of requests by client software (%)", sw, false, "% of requests");

  // Networks (--networks): top networks and countries, with their share of the bill.
  if (r.contains("networks")) {
    for (const auto& [title, key] : {std::pair{"Top networks", "by_network"}, std::pair{"Top countries", "by_country"}}) {
      h += fmt::format("<h2>{}</h2>\n<p>{}</p>\n<table id=\"{}\"><tr><th>{}</th><th class=\"n\">clients</th>"
                       "<th class=\"n\">requests</th><th class=\"n\">share</th><th class=\"n\">cost per year</th></tr>\n",
                       title, html_escape(r["networks"]["databases"].get<std::string>()), key,
                       std::string(key) == "by_network" ? "network" : "country");
      for (const auto& n : r["networks"][key])
        h += "<tr>" + cell(n["name"].get<std::string>()) + ncell(std::to_string(n["clients"].get<uint64_t>())) +
             ncell(std::to_string(n["requests"].get<uint64_t>())) + ncell(pct(n["request_share"].get<double>())) +
             ncell(fmt::format("${:.2f}", n["usd_per_year"].get<double>())) + "</tr>\n";
      h += "</table>\n";
    }
  }

  // Servers.
  if (!r["servers"].empty()) {
    h += "<h2>Replies by server</h2>\n<table id=\"servers\"><tr><th>server</th><th class=\"n\">replies</th>"
         "<th class=\"n\">KoD</th><th class=\"n\">p50</th><th class=\"n\">p99</th><th class=\"n\">p99.9</th></tr>\n";
    for (const auto& s : r["servers"]) {
      const auto& p = s["processing_ns"];
      const bool any = p["count"].get<uint64_t>() > 0;
      const auto us = [&](const char* q) { return any ? fmt::format("{:.1f} us", p[q].get<double>() / 1e3) : "-"; };
      h += "<tr>" + cell(s["address"].get<std::string>()) + ncell(std::to_string(s["replies"].get<uint64_t>())) +
           ncell(std::to_string(s["kod"].get<uint64_t>())) + ncell(us("p50")) + ncell(us("p99")) + ncell(us("p999")) +
           "</tr>\n";
    }
    h += "</table>\n";
  }

  // What-if.
  if (r.contains("what_if")) {
    const auto& w = r["what_if"];
    h += fmt::format(
        "<h2>What if {} had been in force</h2>\n<table id=\"whatif\">"
        "<tr><th>answered</th><td class=\"n\">{}</td></tr><tr><th>KoD</th><td class=\"n\">{}</td></tr>"
        "<tr><th>dropped</th><td class=\"n\">{}</td></tr><tr><th>saved per year</th><td class=\"n\">${:.2f}</td></tr>"
        "<tr><th>clients touched</th><td class=\"n\">{}</td></tr>"
        "<tr><th>of them polling every 64 s or slower</th><td class=\"n\">{}</td></tr></table>\n",
        html_escape(w["policy"].get<std::string>()), w["answered"].get<uint64_t>(), w["kod"].get<uint64_t>(),
        w["dropped"].get<uint64_t>(), w["usd_per_year_saved"].get<double>(), w["clients_touched"].get<uint64_t>(),
        w["clients_touched_polling_64s_or_slower"].get<uint64_t>());
  }
  h += "<p class=\"note\">Written by strata analyze.</p>\n</body></html>\n";
  return h;
}

}  // namespace strata::cli
