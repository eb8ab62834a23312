// Unit tests of the console's routes: who may read the API (loopback, the key by its hash),
// the query's fields as the control API's, refusals, and the embedded page.
#include "web/api.h"

#include <gtest/gtest.h>

#include "web/assets.h"

namespace strata::web {
namespace {

Sources fake(nlohmann::json* seen) {
  Sources s;
  s.stats = [] { return nlohmann::json{{"ok", true}, {"uptime", 1.5}}; };
  s.history = [seen](const nlohmann::json& r) {
    *seen = r;
    if (r.contains("series") && r["series"] == "nope") throw std::invalid_argument("no series 'nope'");
    return nlohmann::json{{"ok", true}};
  };
  s.top = [seen](const nlohmann::json& r) {
    *seen = r;
    return nlohmann::json{{"ok", true}, {"limit", r["limit"]}};
  };
  s.clients = [seen](const nlohmann::json& r) {
    *seen = r;
    return nlohmann::json{{"ok", true}, {"x", r.at("limit").get<size_t>()}};  // throws when absent
  };
  return s;
}

Request get(std::string path, std::map<std::string, std::string> query = {}, bool loopback = true,
            std::string key = "") {
  return {std::move(path), std::move(query), std::move(key), loopback};
}

TEST(WebApi, LoopbackReadsEverySourceWithTheQueryAsFields) {
  nlohmann::json seen;
  const Sources s = fake(&seen);
  const Access open;
  EXPECT_EQ(route(get("/api/v1/stats"), s, open).status, 200u);
  Reply r = route(get("/api/v1/history", {{"series", "requests,kod"}, {"since", "-60"}, {"step", "1"}}), s, open);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(seen, (nlohmann::json{{"series", "requests,kod"}, {"since", -60}, {"step", 1}}));
  EXPECT_FALSE(r.cacheable);
  route(get("/api/v1/top", {{"window", "1h"}, {"limit", "5"}, {"prefix", "true"}}), s, open);
  EXPECT_EQ(seen, (nlohmann::json{{"window", "1h"}, {"limit", 5}, {"prefix", true}}));
  EXPECT_EQ(route(get("/api/v1/history", {{"series", "nope"}}), s, open).status, 400u);
  r = route(get("/api/v1/top", {{"limit", "ten"}}), s, open);
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("limit must be a number"), std::string::npos) << r.body;
  EXPECT_EQ(route(get("/api/v1/top", {{"what", "1"}}), s, open).status, 400u);
  EXPECT_EQ(route(get("/api/v1/stats", {{"x", "1"}}), s, open).status, 400u);
  // A source's own type errors are a 400 too, never an exception out of the HTTP thread.
  EXPECT_EQ(route(get("/api/v1/clients"), s, open).status, 400u);
  EXPECT_EQ(route(get("/api/v1/other"), s, open).status, 404u);
}

TEST(WebApi, OthersNeedTheKeyWhoseHashIsConfigured) {
  nlohmann::json seen;
  const Sources s = fake(&seen);
  EXPECT_EQ(route(get("/api/v1/stats", {}, false), s, Access{}).status, 403u);
  const std::string key = "f3a1c09e5b7d4e2a8c6b0d9e1f2a3b4c";
  const auto digest = sha256(key);
  std::string hex;
  for (uint8_t b : digest) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
  const auto parsed = parse_key_hash("sha256:" + hex);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, digest);
  const Access locked{parsed};
  EXPECT_EQ(route(get("/api/v1/stats", {}, false), s, locked).status, 401u);
  EXPECT_EQ(route(get("/api/v1/stats", {}, false, "wrong"), s, locked).status, 401u);
  EXPECT_EQ(route(get("/api/v1/stats", {}, false, key), s, locked).status, 200u);
  EXPECT_EQ(route(get("/api/v1/stats", {}, true), s, locked).status, 200u);
  // The page itself holds no data: it loads for anyone who reaches the listener.
  EXPECT_EQ(route(get("/", {}, false), s, locked).status, 200u);
  // sha256 of "abc" (FIPS 180-2's example).
  const auto abc = sha256("abc");
  EXPECT_EQ(abc[0], 0xba);
  EXPECT_EQ(abc[31], 0xad);
  for (const char* bad : {"", "abc", "sha256:", "sha256:zz", "md5:0123"}) EXPECT_FALSE(parse_key_hash(bad)) << bad;
  EXPECT_FALSE(parse_key_hash("sha256:" + hex.substr(0, 63) + "g"));
}

TEST(WebApi, ThePageAndItsFilesAreEmbedded) {
  nlohmann::json seen;
  const Sources s = fake(&seen);
  const Reply page = route(get("/"), s, Access{});
  EXPECT_EQ(page.status, 200u);
  EXPECT_EQ(page.type, "text/html; charset=utf-8");
  EXPECT_TRUE(page.cacheable);
  EXPECT_NE(page.body.find("<script src=\"/app.js\""), std::string::npos);
  EXPECT_EQ(page.body.find("<script>"), std::string::npos) << "no inline script: CSP default-src 'self'";
  for (const char* path : {"/app.js", "/style.css", "/dygraph.min.js", "/dygraph.min.css"}) {
    const Asset* a = find_asset(path);
    ASSERT_NE(a, nullptr) << path;
    EXPECT_GT(a->body.size(), 500u) << path;
  }
  EXPECT_NE(find_asset("/dygraph.min.js")->body.find("Dygraph"), std::string_view::npos);
  EXPECT_EQ(route(get("/nope.html"), s, Access{}).status, 404u);
}

}  // namespace
}  // namespace strata::web
