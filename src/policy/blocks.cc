// Dynamic blocks (see blocks.h).
#include "policy/blocks.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace strata::policy {

using base::LogLevel;

const char* block_action_name(BlockAction a) {
  switch (a) {
    case BlockAction::kDrop: return "drop";
    case BlockAction::kKod: return "kod";
    case BlockAction::kLeak: return "leak";
  }
  return "drop";
}

std::optional<BlockAction> parse_block_action(std::string_view text) {
  if (text == "drop") return BlockAction::kDrop;
  if (text == "kod") return BlockAction::kKod;
  if (text == "leak") return BlockAction::kLeak;
  return std::nullopt;
}

clients::MeterRule BlockRule::meter() const {
  clients::MeterRule m;
  m.v4_prefix = v4_prefix;
  m.v6_prefix = v6_prefix;
  m.window_ns = static_cast<int64_t>(window_s * 1e9);
  m.trigger = rate * window_s;
  m.warn = warn * window_s;
  return m;
}

std::vector<BlockRule> default_block_rules() {
  // A client polling faster than every 0.5 s on average over 30 s: 60 requests. iburst sends
  // 8 (ntpd) or 4 (chrony) 2 s apart, the pool's monitor 3 every few minutes, an 8 s poller 4
  // in 30 s: none comes near. At 6 per second the level is reached after 10 s. KoD first: a
  // real client (chrony, ntpd, ntpdig) backs off, and the limiter's pacing and flood rule keep
  // a KoD from being reflected at a forged source.
  BlockRule poller;
  poller.name = "fast poller";
  poller.v4_prefix = 32;
  poller.v6_prefix = 64;
  poller.rate = 2;
  poller.window_s = 30;
  poller.warn = 1;
  poller.action = BlockAction::kKod;
  poller.duration_s = 600;
  // A flood from one network: 250 requests/s over 10 s from one /24 (or /48) is more than
  // 256 addresses each polling every second, and 2,000 NATed clients polling every 8 s.
  BlockRule flood;
  flood.name = "network flood";
  flood.v4_prefix = 24;
  flood.v6_prefix = 48;
  flood.rate = 250;
  flood.window_s = 10;
  flood.warn = 100;
  flood.action = BlockAction::kDrop;
  flood.duration_s = 300;
  return {poller, flood};
}

std::vector<base::Cidr> BlocksConfig::default_exclusions() {
  // The machine itself (monitoring, a local chronyd mirror, strata query) is never blocked.
  return {*base::Cidr::parse("127.0.0.0/8"), *base::Cidr::parse("::1/128")};
}

int BlocksConfig::shortest_v4(int family_default) const {
  int bits = family_default;
  for (const BlockRule& r : rules) bits = std::min(bits, r.v4_prefix);
  return bits;
}

int BlocksConfig::shortest_v6(int family_default) const {
  int bits = family_default;
  for (const BlockRule& r : rules) bits = std::min(bits, r.v6_prefix);
  return bits;
}

namespace {

clients::AddressKey key_of(const base::Cidr& c) {
  return clients::AddressKey::from(c.address).prefix(c.bits, c.bits);
}

bool overlaps(const base::Cidr& a, const base::Cidr& b) {
  if (a.address.family != b.address.family) return false;
  return a.bits <= b.bits ? a.contains(b.address) : b.contains(a.address);
}

}  // namespace

BlockSet::BlockSet(std::vector<Block> blocks, const BlocksConfig& config, uint32_t epoch)
    : blocks_(std::move(blocks)), enabled_(config.enabled), epoch_(epoch) {
  for (size_t r = 0; r < config.rules.size() && r < clients::kMaxBlockRules; ++r) {
    meter_.push_back(config.rules[r].meter());
    std::vector<base::Cidr> ex = config.rules[r].exclude;
    ex.insert(ex.end(), config.exclude.begin(), config.exclude.end());
    exclude_.push_back(std::move(ex));
  }
  // Groups by family and length, longest first, each sorted by key.
  std::vector<std::pair<std::pair<int, int>, uint32_t>> order;  // ((-bits, v4), index)
  for (uint32_t i = 0; i < blocks_.size(); ++i) {
    const bool v4 = blocks_[i].prefix.address.family == base::Family::kV4;
    order.push_back({{-blocks_[i].prefix.bits, v4 ? 1 : 0}, i});
  }
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return key_of(blocks_[a.second].prefix) < key_of(blocks_[b.second].prefix);
  });
  for (const auto& [group, i] : order) {
    const bool v4 = group.second == 1;
    const int bits = -group.first;
    if (groups_.empty() || groups_.back().v4 != v4 || groups_.back().bits != bits)
      groups_.push_back({v4, bits, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(keys_.size())});
    keys_.push_back({key_of(blocks_[i].prefix), i});
    groups_.back().end = static_cast<uint32_t>(keys_.size());
  }
  if (!keys_.empty()) {
    filter_.assign(kFilterBits / 64, 0);
    for (size_t g = 0; g < groups_.size(); ++g)
      for (uint32_t j = groups_[g].begin; j < groups_[g].end; ++j) {
        const uint32_t bit = filter_bit(keys_[j].first, g);
        filter_[bit / 64] |= uint64_t{1} << (bit % 64);
      }
  }
}

const Block* BlockSet::find(const clients::AddressKey& key) const {
  const bool v4 = key.is_v4();
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const Group& g = groups_[gi];
    if (g.v4 != v4) continue;
    const clients::AddressKey k = key.prefix(g.bits, g.bits);
    const uint32_t bit = filter_bit(k, gi);
    if ((filter_[bit / 64] >> (bit % 64) & 1) == 0) continue;
    const auto begin = keys_.begin() + g.begin, end = keys_.begin() + g.end;
    const auto it = std::lower_bound(begin, end, k, [](const auto& e, const clients::AddressKey& x) { return e.first < x; });
    if (it != end && it->first == k) return &blocks_[it->second];
  }
  return nullptr;
}

bool BlockSet::excluded(size_t r, const base::Cidr& prefix) const {
  if (r >= exclude_.size()) return true;
  return std::any_of(exclude_[r].begin(), exclude_[r].end(), [&](const base::Cidr& c) { return overlaps(c, prefix); });
}

base::Cidr event_prefix(const clients::BlockEvent& e, const BlockRule& rule) {
  base::Cidr c;
  c.address = e.prefix.address();
  c.bits = c.address.family == base::Family::kV4 ? rule.v4_prefix : rule.v6_prefix;
  return c;
}

// --- BlockBook ---

void BlockBook::configure(const BlocksConfig& config) {
  std::lock_guard lock(mutex_);
  if (config.rules != config_.rules || config.exclude != config_.exclude || config.enabled != config_.enabled) ++epoch_;
  config_ = config;
  changed_ = true;
}

std::string BlockBook::describe(const Block& b) const {
  return fmt::format("{} ({}{}{})", b.prefix.to_string(), block_action_name(b.action),
                     b.rule.empty() ? ", by hand" : ", rule \"" + b.rule + "\"",
                     b.offence > 1 ? fmt::format(", offence {}", b.offence) : std::string());
}

void BlockBook::place(Block b) {
  b.hits = std::make_shared<BlockHits>(workers_);
  if (logging_)
    base::log(LogLevel::kWarning, "blocks: placed {} for {} s: {}", describe(b), b.expires_s - b.since_s, b.reason);
  blocks_.push_back(std::move(b));
  ++placed_;
  changed_ = true;
  state_dirty_ = true;
}

void BlockBook::event(const clients::BlockEvent& e, int64_t now_s) {
  static base::LogLimiter warn_log(10), cap_log(1);
  std::lock_guard lock(mutex_);
  if (e.rule >= config_.rules.size() || !config_.enabled) return;
  const BlockRule& rule = config_.rules[e.rule];
  const base::Cidr prefix = event_prefix(e, rule);
  const double rate = e.requests / rule.window_s;
  const auto excluded = [&] {
    const auto hit = [&](const base::Cidr& c) { return overlaps(c, prefix); };
    return std::any_of(rule.exclude.begin(), rule.exclude.end(), hit) ||
           std::any_of(config_.exclude.begin(), config_.exclude.end(), hit);
  };
  if (excluded()) return;
  if (e.warning) {
    warnings_.insert(warnings_.begin(), Warning{prefix, rule.name, rate, now_s});
    if (warnings_.size() > 64) warnings_.pop_back();
    if (logging_) warn_log.log(LogLevel::kInfo, "blocks: warning: {} at {:.1f} requests/s over {} s (rule \"{}\": warn {}/s, block {}/s)",
                 prefix.to_string(), rate, rule.window_s, rule.name, rule.warn, rule.rate);
    return;
  }
  for (const Block& b : blocks_)
    if (b.prefix.address.family == prefix.address.family && b.prefix.bits <= prefix.bits && b.prefix.contains(prefix.address))
      return;  // already blocked (by this prefix or a wider one)
  if (blocks_.size() >= config_.max_active) {
    ++refused_cap_;
    if (logging_) cap_log.log(LogLevel::kWarning, "blocks: {} active, the cap ([blocks] max_active): {} not blocked (rule \"{}\")",
                blocks_.size(), prefix.to_string(), rule.name);
    return;
  }
  uint32_t offences = 1;
  for (auto& [p, o] : offenders_)
    if (p == prefix && o.until_s > now_s) offences = o.offences + 1;
  const double duration =
      std::min(rule.max_duration_s, rule.duration_s * std::pow(std::max(1.0, rule.growth), offences - 1.0));
  Block b;
  b.prefix = prefix;
  b.action = rule.action;
  b.rule = rule.name;
  b.reason = fmt::format("{:.0f} requests in {} s: over {}/s", e.requests, rule.window_s, rule.rate);
  b.since_s = now_s;
  b.expires_s = now_s + std::max<int64_t>(1, std::llround(duration));
  b.offence = offences;
  std::erase_if(offenders_, [&](const auto& e2) { return e2.first == prefix || e2.second.until_s <= now_s; });
  offenders_.push_back({prefix, {b.expires_s + static_cast<int64_t>(rule.max_duration_s), offences}});
  const size_t keep = size_t{4} * std::max<uint32_t>(config_.max_active, 1);  // a bound, oldest out
  if (offenders_.size() > keep) offenders_.erase(offenders_.begin(), offenders_.end() - static_cast<std::ptrdiff_t>(keep));
  place(std::move(b));
}

std::string BlockBook::add(const base::Cidr& prefix, BlockAction action, double for_s, std::string reason,
                           int64_t now_s) {
  if (!(for_s >= 1 && for_s <= 400.0 * 86400)) return "the duration must be 1 s to 400 days";
  std::lock_guard lock(mutex_);
  for (Block& b : blocks_) {
    if (b.prefix == prefix) {  // placed again by hand: the hand's terms replace the old ones
      b.action = action;
      b.reason = std::move(reason);
      b.rule.clear();
      b.expires_s = now_s + std::llround(for_s);
      base::log(LogLevel::kWarning, "blocks: placed {} for {} s: {}", describe(b), b.expires_s - now_s, b.reason);
      changed_ = state_dirty_ = true;
      return "";
    }
  }
  if (blocks_.size() >= config_.max_active)
    return fmt::format("{} blocks are active, the cap ([blocks] max_active)", blocks_.size());
  Block b;
  b.prefix = prefix;
  b.action = action;
  b.reason = std::move(reason);
  b.since_s = now_s;
  b.expires_s = now_s + std::llround(for_s);
  place(std::move(b));
  return "";
}

bool BlockBook::remove(const base::Cidr& prefix, int64_t now_s) {
  std::lock_guard lock(mutex_);
  const auto it = std::find_if(blocks_.begin(), blocks_.end(), [&](const Block& b) { return b.prefix == prefix; });
  if (it == blocks_.end()) return false;
  base::log(LogLevel::kWarning, "blocks: removed {} after {} s by hand, {} requests refused", describe(*it),
            now_s - it->since_s, it->total_hits());
  // Removed by hand: the operator forgave it, so its offences are forgotten too.
  std::erase_if(offenders_, [&](const auto& e) { return e.first == prefix; });
  blocks_.erase(it);
  ++removed_;
  changed_ = state_dirty_ = true;
  return true;
}

void BlockBook::expire(int64_t now_s) {
  std::lock_guard lock(mutex_);
  const size_t before = blocks_.size();
  std::erase_if(blocks_, [&](const Block& b) {
    if (b.expires_s > now_s) return false;
    if (logging_)
      base::log(LogLevel::kWarning, "blocks: expired {} after {} s, {} requests refused", describe(b),
                b.expires_s - b.since_s, b.total_hits());
    return true;
  });
  if (blocks_.size() != before) {
    expired_ += before - blocks_.size();
    changed_ = state_dirty_ = true;
  }
}

std::unique_ptr<const BlockSet> BlockBook::take_set() {
  std::lock_guard lock(mutex_);
  if (!changed_) return nullptr;
  changed_ = false;
  return std::make_unique<const BlockSet>(blocks_, config_, epoch_);
}

std::unique_ptr<const BlockSet> BlockBook::build_set() const {
  std::lock_guard lock(mutex_);
  return std::make_unique<const BlockSet>(blocks_, config_, epoch_);
}

BlockBook::View BlockBook::view() const {
  std::lock_guard lock(mutex_);
  View v;
  v.blocks = blocks_;
  v.warnings = warnings_;
  v.placed = placed_;
  v.expired = expired_;
  v.removed = removed_;
  v.refused_cap = refused_cap_;
  v.max_active = config_.max_active;
  v.enabled = config_.enabled;
  v.rules = config_.rules;
  return v;
}

std::optional<Block> BlockBook::find(const base::Cidr& prefix) const {
  std::lock_guard lock(mutex_);
  for (const Block& b : blocks_)
    if (b.prefix == prefix) return b;
  return std::nullopt;
}

BlockBook::Counts BlockBook::counts() const {
  std::lock_guard lock(mutex_);
  return {blocks_.size(), config_.max_active, placed_};
}

bool BlockBook::dirty_state() const {
  std::lock_guard lock(mutex_);
  return state_dirty_;
}

std::string BlockBook::serialize(int64_t now_s) const {
  std::lock_guard lock(mutex_);
  nlohmann::json doc = {{"format", "strata-blocks 1"}, {"saved", now_s}};
  nlohmann::json& blocks = doc["blocks"] = nlohmann::json::array();
  for (const Block& b : blocks_)
    blocks.push_back({{"prefix", b.prefix.to_string()}, {"action", block_action_name(b.action)},
                      {"reason", b.reason}, {"rule", b.rule}, {"since", b.since_s}, {"expires", b.expires_s},
                      {"offence", b.offence}, {"hits", b.total_hits()}});
  nlohmann::json& offenders = doc["offenders"] = nlohmann::json::array();
  for (const auto& [p, o] : offenders_)
    if (o.until_s > now_s) offenders.push_back({{"prefix", p.to_string()}, {"until", o.until_s}, {"offences", o.offences}});
  state_dirty_ = false;
  return doc.dump(1) + "\n";
}

std::string BlockBook::restore(std::string_view text, int64_t now_s) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return fmt::format("not JSON: {}", e.what());
  }
  const auto format = doc.is_object() ? doc.find("format") : doc.end();
  if (format == doc.end() || !format->is_string() || format->get<std::string>() != "strata-blocks 1")
    return "not a strata-blocks 1 file";
  std::vector<Block> blocks;
  std::vector<std::pair<base::Cidr, Offender>> offenders;
  const auto list = [&](const char* name) -> const nlohmann::json* {
    const auto it = doc.find(name);
    return it != doc.end() && it->is_array() ? &*it : nullptr;
  };
  if (list("blocks") == nullptr || list("offenders") == nullptr) return "no blocks or offenders list";
  // Integers only, in range: a float or a huge number is refused, never cast (undefined
  // behaviour: fuzz_blocks found "hits": 7.8e40).
  const auto integer = [](const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) -> int64_t {
    const nlohmann::json& v = j.at(key);
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(hi)) return static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if (i >= lo && i <= hi) return i;
    }
    throw std::invalid_argument(fmt::format("{} is not an integer in {}..{}", key, lo, hi));
  };
  constexpr int64_t kMaxTime = int64_t{1} << 40;
  size_t at = 0;
  const char* what = "block";
  try {
    for (const auto& j : *list("blocks")) {
      ++at;
      Block b;
      const auto prefix = base::Cidr::parse(j.at("prefix").get<std::string>());
      const auto action = parse_block_action(j.at("action").get<std::string>());
      if (!prefix) return fmt::format("block {}: bad prefix", blocks.size() + 1);
      if (!action) return fmt::format("block {}: bad action", blocks.size() + 1);
      b.prefix = *prefix;
      b.action = *action;
      b.reason = j.at("reason").get<std::string>();
      b.rule = j.at("rule").get<std::string>();
      b.since_s = integer(j, "since", 0, kMaxTime);
      b.expires_s = integer(j, "expires", 0, kMaxTime);
      b.offence = static_cast<uint32_t>(integer(j, "offence", 1, 1'000'000));
      b.hits_before = static_cast<uint64_t>(integer(j, "hits", 0, INT64_MAX));
      if (b.expires_s > now_s) blocks.push_back(std::move(b));
    }
    at = 0;
    what = "offender";
    for (const auto& j : *list("offenders")) {
      ++at;
      const auto prefix = base::Cidr::parse(j.at("prefix").get<std::string>());
      if (!prefix) return fmt::format("offender {}: bad prefix", offenders.size() + 1);
      Offender o{integer(j, "until", 0, kMaxTime), static_cast<uint32_t>(integer(j, "offences", 1, 1'000'000))};
      if (o.until_s > now_s) offenders.push_back({*prefix, o});
    }
  } catch (const std::exception& e) {
    return fmt::format("{} {}: {}", what, at, e.what());
  }
  std::lock_guard lock(mutex_);
  for (Block& b : blocks) b.hits = std::make_shared<BlockHits>(workers_);
  blocks_ = std::move(blocks);
  offenders_ = std::move(offenders);
  changed_ = true;
  return "";
}

}  // namespace strata::policy
