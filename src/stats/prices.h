// Providers' tiered prices for traffic (data/prices.toml, built in, or an operator's file) and
// the money a month of traffic costs under them. Used by `strata cost`, `strata analyze` and
// stratad's history (the cost series, [cost]).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::stats {

inline constexpr double kMonthSeconds = 30.436875 * 86400;  // a mean Gregorian month
inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

struct Tier {
  double up_to_gib = 0;  // cumulative band end (inf for the last)
  double usd_per_gib = 0;
};

struct Provider {
  std::string name;
  std::string title;
  std::string source;
  std::string billed = "out";  // "out", "in" or "both"
  double free_gib = 0;
  std::vector<Tier> tiers;
};

struct Prices {
  std::string date;
  std::vector<Provider> providers;
};

// Parses a prices file; errors name the file and say what is wrong.
std::optional<Prices> parse_prices(std::string_view text, const std::string& name,
                                   std::vector<std::string>& errors);
// The prices shipped in data/prices.toml (built in).
std::string_view builtin_prices();

// Money for `gib` of billed traffic in a month: the free allowance first, then band by band.
struct CostLine {
  double gib = 0;
  double usd_per_gib = 0;
  double usd = 0;
};
struct Cost {
  double billed_gib = 0;
  double free_gib = 0;
  std::vector<CostLine> lines;  // per band with traffic in it
  double usd = 0;
};
Cost tiered_cost(const Provider& p, double gib);

// Parses `[cost]`-style choices into one provider: `provider` names one of `prices` (the
// built-in file when `prices_file` is empty), or `flat_usd_per_gib` >= 0 prices every GiB sent
// the same. nullopt with `error` set when the file cannot be read or parsed or has no such provider.
std::optional<Provider> choose_provider(const std::string& provider, const std::string& prices_file,
                                        double flat_usd_per_gib, std::string& error);

}  // namespace strata::stats
