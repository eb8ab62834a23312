// Command-line parsing with our exit statuses (stratad's and strata's mains): CLI11 parses,
// but its own exit codes (105-109 for a validation or extra argument) are not what the man
// pages promise, so errors are printed here and mapped to `usage_status`. Main thread only.
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>

namespace strata::base {

// Shows every option's default in --help ("[8]"), for options that have one. Call before the
// options are added.
inline void show_defaults(CLI::App& app) { app.option_defaults()->always_capture_default(); }

// Parses argv. Returns nullopt when the program should go on, or the status to exit with: 0
// after --help or --version, `usage_status` after a usage error (printed to stderr with a
// hint to --help). An unknown first word where a subcommand is required is named as such
// ("unknown command 'x'"), not as CLI11's "A subcommand is required".
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, int usage_status) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string name = app.get_name();
    std::string message = e.what();
    if (argc > 1 && !app.get_subcommands({}).empty()) {
      const std::string_view first = argv[1];
      bool known = first.starts_with("-");
      for (const CLI::App* sub : app.get_subcommands({}))
        if (sub->get_name() == first) known = true;
      if (!known) {
        std::string commands;
        for (const CLI::App* sub : app.get_subcommands({}))
          commands += (commands.empty() ? "" : ", ") + sub->get_name();
        message = fmt::format("unknown command '{}' (commands: {})", first, commands);
      }
    }
    fmt::print(stderr, "{}: {}\nRun with --help for more information.\n", name, message);
    return usage_status;
  }
}

}  // namespace strata::base
