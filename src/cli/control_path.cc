// Finding stratad's control socket for the strata commands (see commands.h).
#include <fmt/format.h>
#include <toml++/toml.h>

#include <cstdlib>

#include "cli/commands.h"
#include "config/config.h"

namespace strata::cli {

std::string control_path(const std::string& flag, const std::string& config_file, std::string& error) {
  if (!flag.empty()) return flag;
  if (!config_file.empty()) {
    // Only [server] control is read: the rest (keys, rules) may be unreadable for an operator
    // who may still use the socket.
    try {
      const toml::table t = toml::parse_file(config_file);
      const auto control = t["server"]["control"].value<std::string>();
      if (!control) return config::kDefaultControlPath;
      if (control->empty()) {
        error = config_file + ": [server] control = \"\": that stratad has no control socket";
        return "";
      }
      return *control;
    } catch (const toml::parse_error& e) {
      error = fmt::format("{}: {}", config_file, e.description());
      return "";
    }
  }
  if (const char* env = std::getenv("STRATA_CONTROL"); env != nullptr && *env != '\0') return env;
  return config::kDefaultControlPath;
}

}  // namespace strata::cli
