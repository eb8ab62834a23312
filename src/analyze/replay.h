// What-if: the requests of a capture replayed, at their capture times, through the same
// access rules, client table and rate limiter as stratad (server::decide with a Tracker), as
// configured by a stratad config file. It answers "had this policy been in force, which
// requests would have been dropped or answered with a KoD?" with stratad's own code rather
// than a model of it. One tracker, as stratad with one worker (with several, steering gives
// each client to one worker anyway, so per-client outcomes are the same). The config's
// dynamic-block rules ([[blocks.rule]]) are replayed too: the meter, the book's placing and
// growing and expiring, at the capture's times, so a rule can be tried on yesterday's traffic.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/net.h"
#include "clients/block_meter.h"
#include "clients/tracker.h"
#include "policy/blocks.h"
#include "server/decide.h"
#include "server/rules.h"

namespace strata::analyze {

enum class ReplayOutcome : uint8_t { kAnswered, kKod, kDropped };

struct ReplayTotals {
  uint64_t requests = 0;
  uint64_t answered = 0;
  uint64_t kod = 0;
  uint64_t dropped = 0;        // all reasons
  uint64_t dropped_limited = 0;
  uint64_t dropped_denied = 0;  // deny and ignore rules
  uint64_t dropped_other = 0;   // malformed or declined as stratad would
  uint64_t blocked = 0;         // met a dynamic block (dropped, KoD or leaked)
  uint64_t dropped_blocked = 0;
  uint64_t bytes_saved = 0;     // IP-level octets of the replies not sent
};

class Replay {
 public:
  // `rules` and `limits` as stratad would have them; `memory` for the client table.
  Replay(std::unique_ptr<const server::Rules> rules, uint64_t memory,
         const policy::BlocksConfig& blocks = policy::BlocksConfig{});
  // One request from `source` at capture time `ts` (s since 1970) with its NTP payload.
  ReplayOutcome request(double ts, const base::Endpoint& source, const base::IpAddress& local,
                        std::span<const uint8_t> payload, uint32_t ip_length);
  const ReplayTotals& totals() const { return totals_; }
  // The blocks the rules placed during the replay (expired ones too), in order.
  const std::vector<policy::Block>& blocks_placed() const { return placed_; }

 private:
  void tend_blocks(int64_t now_s);
  std::unique_ptr<const server::Rules> rules_;
  clients::Tracker tracker_;
  server::BatchContext context_;
  ReplayTotals totals_;
  policy::BlockBook book_{1};
  std::unique_ptr<const policy::BlockSet> block_set_;
  clients::BlockMeter meter_;
  clients::BlockEvents events_;
  std::vector<policy::Block> placed_;
  int64_t last_tended_s_ = INT64_MIN;
};

}  // namespace strata::analyze
