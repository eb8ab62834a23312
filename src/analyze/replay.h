// What-if: the requests of a capture replayed, at their capture times, through the same
// access rules, client table and rate limiter as stratad (server::decide with a Tracker), as
// configured by a stratad config file. It answers "had this policy been in force, which
// requests would have been dropped or answered with a KoD?" with stratad's own code rather
// than a model of it. One tracker, as stratad with one worker (with several, steering gives
// each client to one worker anyway, so per-client outcomes are the same).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/net.h"
#include "clients/tracker.h"
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
  uint64_t bytes_saved = 0;     // IP-level octets of the replies not sent
};

class Replay {
 public:
  // `rules` and `limits` as stratad would have them; `memory` for the client table.
  Replay(std::unique_ptr<const server::Rules> rules, uint64_t memory);
  // One request from `source` at capture time `ts` (s since 1970) with its NTP payload.
  ReplayOutcome request(double ts, const base::Endpoint& source, const base::IpAddress& local,
                        std::span<const uint8_t> payload, uint32_t ip_length);
  const ReplayTotals& totals() const { return totals_; }

 private:
  std::unique_ptr<const server::Rules> rules_;
  clients::Tracker tracker_;
  server::BatchContext context_;
  ReplayTotals totals_;
};

}  // namespace strata::analyze
