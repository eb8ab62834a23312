// JSON to text for everything strata writes (control replies, --json output, state files):
// invalid UTF-8 in a string (a file name, a rejected config line) is replaced with U+FFFD
// instead of throwing, which would abort the writer. Any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace strata::control {

inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace strata::control
