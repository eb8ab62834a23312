// Prices and tiered costs (see prices.h).
#include "stats/prices.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace strata::stats {

namespace {

// data/prices.toml as bytes, generated at configure time (CMakeLists.txt).
constexpr unsigned char kBuiltinPrices[] = {
#include "prices_toml.inc"
    0};

}  // namespace

std::string_view builtin_prices() {
  return {reinterpret_cast<const char*>(kBuiltinPrices), sizeof kBuiltinPrices - 1};
}

std::optional<Prices> parse_prices(std::string_view text, const std::string& name,
                                   std::vector<std::string>& errors) {
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    errors.push_back(fmt::format("{}:{}: {}", name, e.source().begin.line, e.description()));
    return std::nullopt;
  }
  Prices p;
  p.date = root["date"].value_or(std::string());
  const toml::table* providers = root["providers"].as_table();
  if (providers == nullptr) {
    errors.push_back(name + ": no [providers.NAME] tables");
    return std::nullopt;
  }
  for (auto&& [key, node] : *providers) {
    const toml::table* t = node.as_table();
    const int line = static_cast<int>(node.source().begin.line);
    const std::string provider_name(key.str());  // (clang 14 lambdas cannot capture bindings)
    auto fail = [&](const std::string& why) {
      errors.push_back(fmt::format("{}:{}: providers.{}: {}", name, line, provider_name, why));
    };
    if (t == nullptr) {
      fail("not a table");
      continue;
    }
    Provider pr;
    pr.name = std::string(key.str());
    pr.title = (*t)["title"].value_or(std::string());
    pr.source = (*t)["source"].value_or(std::string());
    pr.billed = (*t)["billed"].value_or(std::string("out"));
    if (pr.billed != "out" && pr.billed != "in" && pr.billed != "both") fail("billed must be out, in or both");
    pr.free_gib = (*t)["free_gib"].value_or(0.0);
    if (pr.free_gib < 0) fail("free_gib must be >= 0");
    const toml::array* tiers = (*t)["tiers"].as_array();
    if (tiers == nullptr || tiers->empty()) {
      fail("tiers must be a list of [up to GiB, USD per GiB]");
      continue;
    }
    double previous = 0;
    for (const toml::node& item : *tiers) {
      const toml::array* pair = item.as_array();
      if (pair == nullptr || pair->size() != 2) {
        fail("each tier is [up to GiB, USD per GiB]");
        break;
      }
      const auto number = [](const toml::node* n) -> std::optional<double> {
        if (n == nullptr) return std::nullopt;
        if (auto v = n->value<double>()) return *v;
        return std::nullopt;
      };
      const auto up = number(pair->get(0)), usd = number(pair->get(1));
      if (!up || !usd || *usd < 0 || *up <= previous) {
        fail("tier bands must grow and prices be >= 0");
        break;
      }
      pr.tiers.push_back({*up, *usd});
      previous = *up;
    }
    if (!pr.tiers.empty() && !std::isinf(pr.tiers.back().up_to_gib)) fail("the last tier must be up to inf");
    p.providers.push_back(std::move(pr));
  }
  if (!errors.empty()) return std::nullopt;
  return p;
}

Cost tiered_cost(const Provider& p, double gib) {
  Cost c;
  c.free_gib = std::min(gib, p.free_gib);
  c.billed_gib = gib - c.free_gib;
  double start = 0;
  for (const Tier& t : p.tiers) {
    const double in_band = std::max(0.0, std::min(c.billed_gib, t.up_to_gib) - start);
    if (in_band > 0) {
      c.lines.push_back({in_band, t.usd_per_gib, in_band * t.usd_per_gib});
      c.usd += in_band * t.usd_per_gib;
    }
    start = t.up_to_gib;
    if (start >= c.billed_gib) break;
  }
  return c;
}

std::optional<Provider> choose_provider(const std::string& provider, const std::string& prices_file,
                                        double flat_usd_per_gib, std::string& error) {
  if (flat_usd_per_gib >= 0) {
    Provider p;
    p.name = "flat";
    p.title = fmt::format("${}/GiB sent", flat_usd_per_gib);
    p.tiers.push_back({std::numeric_limits<double>::infinity(), flat_usd_per_gib});
    return p;
  }
  std::string text;
  std::string name = "built-in data/prices.toml";
  if (prices_file.empty()) {
    text = std::string(builtin_prices());
  } else {
    std::ifstream in(prices_file);
    if (!in) {
      error = fmt::format("cannot read {}", prices_file);
      return std::nullopt;
    }
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
    name = prices_file;
  }
  std::vector<std::string> errors;
  const auto prices = parse_prices(text, name, errors);
  if (!prices) {
    error = errors.empty() ? name + ": cannot be parsed" : errors.front();
    return std::nullopt;
  }
  std::string names;
  for (const Provider& p : prices->providers) {
    if (p.name == provider) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  error = fmt::format("{} has no provider '{}' (it has {})", name, provider, names);
  return std::nullopt;
}

}  // namespace strata::stats
