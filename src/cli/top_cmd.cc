// `strata top`: stratad's top talkers for a window, with their share of all traffic and a
// "rest" line; --watch refreshes like top(1).
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "control/json_text.h"
#include "cli/commands.h"
#include "control/control_server.h"

namespace strata::cli {

namespace {

void print_groups(const nlohmann::json& r) {
  const bool network = r.value("group", "") == "network";
  fmt::print("top {} by requests, {} window {} - {} UTC{}: {} requests in all\n", network ? "networks" : "countries",
             r.value("window", ""), utc_text(r.value("start", int64_t{0})), utc_text(r.value("end", int64_t{0})),
             r.value("complete", false) ? "" : " (so far)", r.value("total", uint64_t{0}));
  fmt::print("{:>4}  {:<43} {:>14} {:>8} {:>9}\n", "#", network ? "network" : "country", "requests", "share", "prefixes");
  int rank = 0;
  for (const auto& row : r["rows"])
    fmt::print("{:>4}  {:<43} {:>14} {:>7.2f}% {:>9}\n", ++rank, row.value("key", ""), row.value("count", uint64_t{0}),
               100 * row.value("share", 0.0), row.value("prefixes", size_t{0}));
  fmt::print("{:>4}  {:<43} {:>14} {:>7.2f}%\n", "", "(rest: prefixes too light to be counted apart)",
             r["rest"].value("count", uint64_t{0}), 100 * r["rest"].value("share", 0.0));
}

void print(const nlohmann::json& r) {
  if (r.contains("group")) return print_groups(r);
  const bool bytes = r.value("by", "") == "bytes";
  const std::string what = bytes ? "bytes" : "requests";
  fmt::print("top {}{} by {}, {} window {} - {} UTC{}: {} {} in all\n", r.value("ke", false) ? "NTS-KE " : "",
             r.value("prefix", false) ? "prefixes" : "clients", what, r.value("window", ""),
             utc_text(r.value("start", int64_t{0})), utc_text(r.value("end", int64_t{0})),
             r.value("complete", false) ? "" : " (so far)", r.value("total", uint64_t{0}), what);
  fmt::print("{:>4}  {:<43} {:>14} {:>8} {:>12}\n", "#", r.value("prefix", false) ? "prefix" : "address",
             what, "share", "+- error");
  int rank = 0;
  for (const auto& row : r["rows"])
    fmt::print("{:>4}  {:<43} {:>14} {:>7.2f}% {:>12}\n", ++rank, row.value("key", ""),
               row.value("count", uint64_t{0}), 100 * row.value("share", 0.0),
               row.value("error", uint64_t{0}));
  fmt::print("{:>4}  {:<43} {:>14} {:>7.2f}%\n", "", "(rest)", r["rest"].value("count", uint64_t{0}),
             100 * r["rest"].value("share", 0.0));
}

}  // namespace

int run_top(const TopOptions& opt) {
  nlohmann::json request{{"command", "top"},       {"by", opt.by},
                         {"window", opt.window},   {"prefix", opt.prefix},
                         {"previous", opt.previous}, {"limit", opt.limit}, {"ke", opt.ke}};
  if (opt.by == "network" || opt.by == "country") {  // the heaviest prefixes, grouped
    request["group"] = opt.by;
    request.erase("by");
    request.erase("prefix");
  }
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  uint64_t rounds = 0;
  for (;;) {
    nlohmann::json reply;
    try {
      reply = control::request(opt.control, request);
    } catch (const std::exception& e) {
      fmt::print(stderr, "strata top: {}\n", e.what());
      return 2;
    }
    // On a terminal: home and clear, like top(1). Into a pipe or file (a log, `tee`): no
    // escapes, each round after a line with its UTC time; --json stays one object a line.
    if (opt.watch && !opt.json) {
      if (tty)
        fmt::print("\x1b[H\x1b[2J");
      else
        fmt::print("{}# {:%Y-%m-%dT%H:%M:%S}Z\n", rounds++ ? "\n" : "",
                   fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
    }
    if (opt.json) {
      reply.erase("ok");
      reply.erase("version");
      fmt::print("{}\n", control::json_text(reply));
    } else {
      print(reply);
    }
    std::fflush(stdout);
    if (!opt.watch) return 0;
    std::this_thread::sleep_for(std::chrono::duration<double>(*opt.watch));
  }
}

}  // namespace strata::cli
