// Dynamic blocks: prefixes refused for a while, placed by a rule ([[blocks.rule]]: a prefix
// length, a request rate over a window, an action, a duration that grows for repeat
// offenders, exclusions) or by hand (`strata block add`).
//
// Three parts, one job each:
// - BlockRule / BlocksConfig: the configuration, parsed once (config/config.cc).
// - BlockSet: what the workers read, immutable once built: the active blocks sorted for a
//   lookup by prefix length and binary search, the rules compiled for the meter
//   (clients/block_meter.h), the exclusions. The main thread publishes a new set through a
//   server::Cell (the lock-free publication the access rules use) whenever a block is placed,
//   removed or expires, or the configuration is reloaded. Hits are counted per worker in a
//   counter array each block keeps across sets (BlockHits), written only by its worker.
// - BlockBook: the main thread's list (behind a mutex the control thread shares; never on the
//   packet path): places a block for a rule's event or by hand, grows the duration for a
//   prefix blocked before, caps the active blocks, expires them, logs one line per block placed
//   or expired, keeps recent warnings, and reads and writes the state file (state_dir/blocks).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/net.h"
#include "clients/address_key.h"
#include "clients/block_meter.h"

namespace strata::policy {

enum class BlockAction : uint8_t {
  kDrop,  // dropped silently
  kKod,   // KoD RATE, paced as the limiter paces them (and never to a flood), else dropped
  kLeak,  // only the limiter's leak share answered, the rest dropped
};
const char* block_action_name(BlockAction a);
std::optional<BlockAction> parse_block_action(std::string_view text);

struct BlockRule {
  std::string name;
  int v4_prefix = 32;   // 8..32
  int v6_prefix = 64;   // 32..128
  double rate = 2;      // requests/s over `window_s` that place a block
  double window_s = 30;
  double warn = 0;      // requests/s worth a log line and a warning in `strata block list`; 0 none
  BlockAction action = BlockAction::kKod;
  double duration_s = 600;
  double max_duration_s = 86400;  // repeat offenders: duration x growth^(offences - 1), at most this
  double growth = 2;
  std::vector<base::Cidr> exclude;  // never blocked by this rule
  friend bool operator==(const BlockRule&, const BlockRule&) = default;

  clients::MeterRule meter() const;
};

// The rules a server gets without [[blocks.rule]]: they never block the NTP pool's monitor
// (3 requests 2 s apart, every few minutes), ntpd's or chrony's iburst (8 or 4 requests 2 s
// apart), or any client polling every 8 s or slower; they do block a client polling several
// times a second (within 10 s at 6/s) and a flood from one /24 or /48 (docs/operating.md).
std::vector<BlockRule> default_block_rules();

struct BlocksConfig {
  bool enabled = true;  // rules evaluated (blocks placed by hand are honoured either way)
  std::vector<BlockRule> rules = default_block_rules();
  std::vector<base::Cidr> exclude = default_exclusions();  // never blocked by any rule
  uint32_t max_active = 10000;
  uint32_t table_size = 16384;  // prefixes per rule per worker the meter keeps
  friend bool operator==(const BlocksConfig&, const BlocksConfig&) = default;

  static std::vector<base::Cidr> default_exclusions();
  // The shortest prefix of the rules for a family (steering must keep such a prefix on one
  // worker); `family_default` when there are no rules.
  int shortest_v4(int family_default) const;
  int shortest_v6(int family_default) const;
};

// Requests a block refused, per worker: written by the one worker its prefix steers to (a
// hand block wider than the steering prefix by several), read by the control thread.
class BlockHits {
 public:
  explicit BlockHits(size_t workers) : n_(workers), per_worker_(new std::atomic<uint64_t>[workers]()) {}
  void add(size_t worker) const {
    if (worker >= n_) return;
    auto& c = per_worker_[worker];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  uint64_t sum() const {
    uint64_t s = 0;
    for (size_t i = 0; i < n_; ++i) s += per_worker_[i].load(std::memory_order_relaxed);
    return s;
  }

 private:
  size_t n_;
  std::unique_ptr<std::atomic<uint64_t>[]> per_worker_;
};

struct Block {
  base::Cidr prefix;
  BlockAction action = BlockAction::kDrop;
  std::string reason;
  std::string rule;        // the rule's name; empty: placed by hand
  int64_t since_s = 0;     // Unix seconds
  int64_t expires_s = 0;
  uint32_t offence = 1;    // 1: first time; 2: blocked once before (its duration grew)
  uint64_t hits_before = 0;  // counted before this run (the state file)
  std::shared_ptr<const BlockHits> hits;
  uint64_t total_hits() const { return hits_before + (hits ? hits->sum() : 0); }
};

class BlockSet {
 public:
  BlockSet() = default;
  BlockSet(std::vector<Block> blocks, const BlocksConfig& config, uint32_t epoch);

  // The block covering `key` (the most specific), or nullptr. Lock-free and allocation-free.
  const Block* match(const clients::AddressKey& key) const {
    if (blocks_.empty()) return nullptr;
    return find(key);
  }
  // Whether no rule may block `address`' prefix under rule `r` (its exclusions and the
  // global ones: a prefix overlapping one of them is never blocked).
  bool excluded(size_t r, const base::Cidr& prefix) const;

  bool rules_enabled() const { return enabled_ && !meter_.empty(); }
  std::span<const clients::MeterRule> meter_rules() const { return meter_; }
  uint32_t epoch() const { return epoch_; }
  const std::vector<Block>& blocks() const { return blocks_; }

 private:
  const Block* find(const clients::AddressKey& key) const;
  struct Group {
    bool v4;
    int bits;  // of the family
    uint32_t begin, end;  // in keys_
  };
  std::vector<Block> blocks_;
  std::vector<std::pair<clients::AddressKey, uint32_t>> keys_;  // sorted within each group
  std::vector<Group> groups_;  // longest prefixes first
  // A filter before the searches: a bit per hash of (group, prefix) of every block, 2^18
  // bits (32 KiB). A source no block covers (nearly every one) costs a bit test per group.
  static constexpr uint32_t kFilterBits = 1u << 18;
  std::vector<uint64_t> filter_;
  static uint32_t filter_bit(const clients::AddressKey& k, size_t group) {
    return static_cast<uint32_t>(clients::hash_key(k, 0x51ed + group) >> 40) & (kFilterBits - 1);
  }
  std::vector<clients::MeterRule> meter_;
  std::vector<std::vector<base::Cidr>> exclude_;  // per rule: its own and the global ones
  bool enabled_ = false;
  uint32_t epoch_ = 0;
};

// base::Cidr of the rule's prefix of an event, from its key.
base::Cidr event_prefix(const clients::BlockEvent& e, const BlockRule& rule);

class BlockBook {
 public:
  explicit BlockBook(size_t workers) : workers_(workers) {}
  // Log a line per block placed, removed or expired, and the warnings (stratad); a replay
  // (strata analyze --policy) reports them itself.
  void set_logging(bool on) { logging_ = on; }

  // The configuration in force (start, reload). A change of the rules starts the meters'
  // counts again (a new epoch); blocks placed stay until they expire.
  void configure(const BlocksConfig& config);

  // A rule's event from a worker, at `now_s`: a warning is noted (and logged, a few a
  // minute at most); a trigger places a block unless the prefix is excluded, already
  // blocked, or the cap is reached.
  void event(const clients::BlockEvent& e, int64_t now_s);
  // By hand: an empty string, or why not (the cap, a bad duration).
  std::string add(const base::Cidr& prefix, BlockAction action, double for_s, std::string reason, int64_t now_s);
  // Removes the block on exactly `prefix`; false when there is none.
  bool remove(const base::Cidr& prefix, int64_t now_s);
  // Expires what is due.
  void expire(int64_t now_s);

  // A set to publish when something changed since the last one (else null).
  std::unique_ptr<const BlockSet> take_set();
  // A set for the current blocks, whether or not anything changed.
  std::unique_ptr<const BlockSet> build_set() const;

  struct Warning {
    base::Cidr prefix;
    std::string rule;
    double rate = 0;  // requests/s
    int64_t at_s = 0;
  };
  struct View {
    std::vector<Block> blocks;
    std::vector<Warning> warnings;  // the latest first
    uint64_t placed = 0, expired = 0, removed = 0, refused_cap = 0;
    uint32_t max_active = 0;
    bool enabled = false;
    std::vector<BlockRule> rules;
  };
  View view() const;
  // The block on exactly `prefix`, if any (a copy).
  std::optional<Block> find(const base::Cidr& prefix) const;
  // The numbers alone, without copying the blocks (/metrics, logs).
  struct Counts {
    uint64_t active = 0, max_active = 0, placed = 0;
  };
  Counts counts() const;

  // The state file: active blocks and the offences remembered (JSON).
  std::string serialize(int64_t now_s) const;
  // Reads it; blocks already expired are dropped. An empty string, or why the text was refused.
  std::string restore(std::string_view text, int64_t now_s);
  bool dirty_state() const;  // changed since the last serialize()

 private:
  struct Offender {
    int64_t until_s;  // remembered until then (the last block's end + max_duration)
    uint32_t offences;
  };
  void place(Block b);
  std::string describe(const Block& b) const;

  mutable std::mutex mutex_;
  size_t workers_;
  BlocksConfig config_;
  uint32_t epoch_ = 1;
  std::vector<Block> blocks_;
  std::vector<std::pair<base::Cidr, Offender>> offenders_;
  std::vector<Warning> warnings_;
  uint64_t placed_ = 0, expired_ = 0, removed_ = 0, refused_cap_ = 0;
  int64_t warn_minute_ = 0;
  int warn_logged_ = 0;
  int64_t cap_said_minute_ = 0;
  bool changed_ = true;
  bool logging_ = true;
  mutable bool state_dirty_ = false;
};

}  // namespace strata::policy
