// One HTTP GET as the console's routes see it, and their answer: plain structs between the
// HTTP server (control/metrics_server, libmicrohttpd) and the routes (web/api), so neither
// knows the other's library.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace strata::web {

struct Request {
  std::string path;                          // without the query
  std::map<std::string, std::string> query;  // decoded ?a=b&c=d
  std::string api_key;                       // X-API-Key or Authorization: Bearer
  bool loopback = false;                     // from 127.0.0.0/8 or ::1 (or mapped)
};

struct Reply {
  unsigned status = 200;
  std::string type = "application/json";
  std::string body;
  bool cacheable = false;  // assets: may be cached for an hour; the API: never
};

// The headers every answer carries, /metrics too: the page may load only its own files
// (Content-Security-Policy: default-src 'self'), no sniffing, no framing, no referrer.
inline const std::vector<std::pair<std::string, std::string>>& security_headers() {
  static const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
  };
  return headers;
}

}  // namespace strata::web
