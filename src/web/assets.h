// The dashboard's files, embedded in stratad at build time (no CDN, nothing read from disk at
// run time): our page, script and style (src/web/assets/) and Debian's dygraphs
// (libjs-dygraphs: /usr/share/javascript/dygraphs), the chart library.
#pragma once

#include <string_view>

namespace strata::web {

struct Asset {
  std::string_view path;  // "/index.html"
  std::string_view type;  // its Content-Type
  std::string_view body;
};

// nullptr when there is no such file.
const Asset* find_asset(std::string_view path);

}  // namespace strata::web
