// Unit tests of the analysis page's charts: axis labels in the operator's numbers.
#include "cli/analyze_html.h"

#include <gtest/gtest.h>

#include <regex>

namespace strata::cli {
namespace {

TEST(AnalyzeHtml, AxisLabelsHaveNoExponents) {
  // A linear axis up to 450 has ticks at 112.5 and 337.5 ("1.1e+02" once); a log axis up to
  // 10^7 has 100, 1000, ... 10M.
  const std::regex exponent(">[0-9.]+e[+-][0-9]+<");
  const std::string linear = svg_bars("t", Series{{"a", "b"}, {450, 3}}, false, "requests");
  EXPECT_FALSE(std::regex_search(linear, exponent)) << linear;
  EXPECT_NE(linear.find(">112<"), std::string::npos) << linear;
  const std::string log = svg_bars("t", Series{{"a", "b"}, {1e7, 0.5}}, true, "requests");
  EXPECT_FALSE(std::regex_search(log, exponent)) << log;
  EXPECT_NE(log.find(">100<"), std::string::npos);
  const std::string line = svg_line("t", {1, 150, 1e5}, {0.1, 0.5, 1}, true, "x", "y");
  EXPECT_FALSE(std::regex_search(line, exponent)) << line;
}

}  // namespace
}  // namespace strata::cli
