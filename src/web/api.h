// The console's HTTP side, apart from the HTTP server (control/metrics_server: libmicrohttpd):
// which path answers what, who may ask, and the headers every answer carries. GET / and the
// page's assets (embedded at build time, web/assets.h), and read-only JSON under /api/v1/:
// stats, history, top, networks (top grouped by network or country), clients (paged). Loopback clients need nothing; any other client
// needs [metrics] api_key (sent as "X-API-Key: KEY" or "Authorization: Bearer KEY", compared
// by its SHA-256, which is all the configuration keeps). Runs on the metrics thread.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "web/http.h"

namespace strata::web {

// What the API reads: each returns the control API's reply for a request object made from
// the query (the same fields and refusals: std::invalid_argument becomes 400).
struct Sources {
  std::function<nlohmann::json()> stats;
  std::function<nlohmann::json(const nlohmann::json&)> history;
  std::function<nlohmann::json(const nlohmann::json&)> top;
  std::function<nlohmann::json(const nlohmann::json&)> clients;  // rows already paged
  std::function<nlohmann::json()> blocks;  // the control API's "blocks" list (read-only here)
};

// "sha256:HEX" (64 hex digits) -> the digest; nullopt when it is not that.
std::optional<std::array<uint8_t, 32>> parse_key_hash(std::string_view text);
std::array<uint8_t, 32> sha256(std::string_view data);

struct Access {
  std::optional<std::array<uint8_t, 32>> key_sha256;  // none: loopback only
};

// The answer for one GET.
Reply route(const Request& request, const Sources& sources, const Access& access);

}  // namespace strata::web
