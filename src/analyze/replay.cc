// What-if replay (see replay.h).
#include "analyze/replay.h"

#include <random>

namespace strata::analyze {

namespace {

clients::TrackerOptions tracker_options(const server::Rules& rules, uint64_t memory) {
  clients::TrackerOptions o;
  o.limits = rules.limits;
  o.seed = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  return clients::size_for_memory(memory, o);
}

}  // namespace

Replay::Replay(std::unique_ptr<const server::Rules> rules, uint64_t memory)
    : rules_(std::move(rules)), tracker_(tracker_options(*rules_, memory)) {
  // A synchronised stratum-2 server: the replay asks about the policy, not the clock.
  clock::TimeState s;
  s.synchronised = true;
  s.leap = wire::Leap::kNone;
  s.stratum = 2;
  s.as_of = base::RealTime{};
  context_ = server::make_context(s, s.as_of, clock::UnsyncAction::kReply);
}

ReplayOutcome Replay::request(double ts, const base::Endpoint& source, const base::IpAddress& local,
                              std::span<const uint8_t> payload, uint32_t ip_length) {
  ++totals_.requests;
  const auto rx_ns = static_cast<int64_t>(ts * 1e9);
  const server::Tracking tracking{tracker_, *rules_, source.address, local, rx_ns};
  uint8_t out[128];
  const server::Decision d = server::decide(payload, false, source.port,
                                            base::to_ntp(base::RealTime{base::Nanos{rx_ns}}), context_,
                                            out, &tracking);
  if (d.reply && d.kod) {
    ++totals_.kod;
    return ReplayOutcome::kKod;
  }
  if (d.reply) {
    ++totals_.answered;
    return ReplayOutcome::kAnswered;
  }
  ++totals_.dropped;
  totals_.bytes_saved += ip_length;
  if (d.reason == server::DropReason::kRateLimited) ++totals_.dropped_limited;
  else if (d.reason == server::DropReason::kDenied || d.reason == server::DropReason::kIgnored) ++totals_.dropped_denied;
  else ++totals_.dropped_other;
  return ReplayOutcome::kDropped;
}

}  // namespace strata::analyze
