// `strata analyze --html FILE`: the analysis as one self-contained page (no scripts, no
// external files): tables and inline SVG charts, on log scales where values span orders of
// magnitude. Rendered from the same JSON document `--json` prints, so the two never disagree.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace strata::cli {

std::string render_html(const nlohmann::json& report);

// SVG building blocks (exposed for tests).
struct Series {
  std::vector<std::string> labels;
  std::vector<double> values;
};
std::string svg_bars(const std::string& title, const Series& s, bool log_y, const std::string& y_label);
std::string svg_line(const std::string& title, const std::vector<double>& xs, const std::vector<double>& ys,
                     bool log_x, const std::string& x_label, const std::string& y_label);
std::string html_escape(const std::string& s);

}  // namespace strata::cli
