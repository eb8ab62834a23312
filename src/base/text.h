// Small text helpers shared by the line-oriented file parsers (access rules, keys) and the
// commands that read files.
#pragma once

#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

namespace strata::base {

// Calls f(line_number, line) for every line of `text` that says something: a '#' starts a
// comment, surrounding blanks (spaces, tabs, a CR) are removed, and empty lines are skipped.
// Line numbers count from 1 over every line, so errors can name them.
template <class F>
void for_each_content_line(std::string_view text, F f) {
  int number = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
      line.remove_suffix(1);
    if (!line.empty()) f(number, line);
    if (end == text.size()) break;
  }
}

// `text` for a message: as it is up to 2 * keep characters; longer, its first and last
// `keep` characters around "...[N characters]..." (a 100 MB value quoted in an error made a
// 100 MB log line).
inline std::string shorten(std::string_view text, size_t keep = 200) {
  if (text.size() <= 2 * keep) return std::string(text);
  return std::string(text.substr(0, keep)) + "...[" + std::to_string(text.size() - 2 * keep) +
         " characters]..." + std::string(text.substr(text.size() - keep));
}

// A whole file, or nullopt when it cannot be opened (errno says why).
inline std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace strata::base
