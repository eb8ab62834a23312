// The console's routes (see api.h).
#include "web/api.h"

#include <nettle/memops.h>
#include <nettle/sha2.h>

#include <charconv>
#include <stdexcept>

#include "control/json_text.h"
#include "web/assets.h"

namespace strata::web {

namespace {

Reply json_reply(unsigned status, const nlohmann::json& doc) {
  return {status, "application/json", control::json_text(doc) + "\n", false};
}

Reply error(unsigned status, const std::string& why) {
  return json_reply(status, {{"ok", false}, {"error", why}});
}

// A query value as the control API's JSON field: numbers as numbers, booleans as booleans.
nlohmann::json number_field(const std::string& name, const std::string& v) {
  double d = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || end != v.data() + v.size())
    throw std::invalid_argument(name + " must be a number, not '" + v + "'");
  if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  return d;
}

nlohmann::json bool_field(const std::string& name, const std::string& v) {
  if (v == "1" || v == "true" || v == "yes" || v.empty()) return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw std::invalid_argument(name + " must be true or false, not '" + v + "'");
}

nlohmann::json request_from(const Request& r, std::initializer_list<const char*> strings,
                            std::initializer_list<const char*> numbers, std::initializer_list<const char*> bools) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : r.query) {
    bool known = false;
    for (const char* s : strings)
      if (key == s) out[key] = value, known = true;
    for (const char* n : numbers)
      if (key == n) out[key] = number_field(key, value), known = true;
    for (const char* b : bools)
      if (key == b) out[key] = bool_field(key, value), known = true;
    if (!known) throw std::invalid_argument("unknown parameter '" + key + "'");
  }
  return out;
}

bool allowed(const Request& r, const Access& a) {
  if (r.loopback) return true;
  if (!a.key_sha256 || r.api_key.empty()) return false;
  const auto digest = sha256(r.api_key);
  return nettle_memeql_sec(digest.data(), a.key_sha256->data(), digest.size()) != 0;
}

}  // namespace

std::array<uint8_t, 32> sha256(std::string_view data) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data.size(), reinterpret_cast<const uint8_t*>(data.data()));
  std::array<uint8_t, 32> out{};
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

std::optional<std::array<uint8_t, 32>> parse_key_hash(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.substr(0, kPrefix.size()) != kPrefix || text.size() != kPrefix.size() + 64) return std::nullopt;
  std::array<uint8_t, 32> out{};
  for (size_t i = 0; i < 32; ++i) {
    const auto hex = text.substr(kPrefix.size() + 2 * i, 2);
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(hex.data(), hex.data() + 2, v, 16);
    if (ec != std::errc() || end != hex.data() + 2) return std::nullopt;
    out[i] = static_cast<uint8_t>(v);
  }
  return out;
}

Reply route(const Request& r, const Sources& sources, const Access& access) {
  const std::string& path = r.path;
  if (path.rfind("/api/", 0) != 0) {
    const Asset* asset = find_asset(path == "/" ? "/index.html" : path);
    if (asset == nullptr) return {404, "text/plain; charset=utf-8", "no such page\n", false};
    return {200, std::string(asset->type), std::string(asset->body), true};
  }
  if (!allowed(r, access))
    return error(access.key_sha256 ? 401 : 403,
                 access.key_sha256 ? "an API key is needed (X-API-Key or Authorization: Bearer) from "
                                     "outside loopback"
                                   : "the API answers loopback only ([metrics] api_key opens it to others)");
  try {
    if (path == "/api/v1/stats") {
      if (!r.query.empty()) throw std::invalid_argument("stats takes no parameters");
      return json_reply(200, sources.stats());
    }
    if (path == "/api/v1/history")
      return json_reply(200, sources.history(request_from(r, {"series"}, {"since", "until", "step"}, {})));
    if (path == "/api/v1/top")
      return json_reply(200, sources.top(request_from(r, {"window", "by", "group"}, {"limit"}, {"prefix", "previous"})));
    if (path == "/api/v1/networks") {  // top networks (or countries: group=country) of the hour
      nlohmann::json q = request_from(r, {"window", "group"}, {"limit"}, {"previous"});
      if (!q.contains("group")) q["group"] = "network";
      if (!q.contains("window")) q["window"] = "1h";
      return json_reply(200, sources.top(q));
    }
    if (path == "/api/v1/blocks") {
      if (!r.query.empty()) throw std::invalid_argument("blocks takes no parameters");
      if (!sources.blocks) return error(404, "no dynamic blocks here");
      return json_reply(200, sources.blocks());
    }
    if (path == "/api/v1/clients")
      return json_reply(200, sources.clients(request_from(r, {"sort", "prefix", "laddr"}, {"limit", "offset", "mincount"},
                                                          {"limited", "kod"})));
  } catch (const std::invalid_argument& e) {
    return error(400, e.what());
  } catch (const nlohmann::json::exception& e) {  // a field of the wrong type or range
    return error(400, e.what());
  } catch (const std::exception& e) {  // never out of the HTTP thread
    return error(500, e.what());
  }
  return error(404, "no such endpoint (there are /api/v1/stats, history, top, networks, clients and blocks)");
}

}  // namespace strata::web
