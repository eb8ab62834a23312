// What-if replay (see replay.h).
#include "analyze/replay.h"

#include <algorithm>
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

Replay::Replay(std::unique_ptr<const server::Rules> rules, uint64_t memory, const policy::BlocksConfig& blocks)
    : rules_(std::move(rules)), tracker_(tracker_options(*rules_, memory)), meter_(blocks.table_size, 0x5eed) {
  book_.set_logging(false);  // the report lists them
  book_.configure(blocks);
  block_set_ = book_.build_set();
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
  tend_blocks(rx_ns / 1'000'000'000);
  const server::Tracking tracking{tracker_, *rules_, source.address, local, rx_ns, false, nullptr, nullptr,
                                  block_set_.get(), &meter_, &events_, 0};
  uint8_t out[128];
  const server::Decision d = server::decide(payload, false, source.port,
                                            base::to_ntp(base::RealTime{base::Nanos{rx_ns}}), context_,
                                            out, &tracking);
  if (d.blocked) ++totals_.blocked;
  if (events_.drain([&](const clients::BlockEvent& e) { book_.event(e, rx_ns / 1'000'000'000); }) > 0) {
    last_tended_s_ = INT64_MIN;  // a block may have been placed: in force from the next request
    tend_blocks(rx_ns / 1'000'000'000);
  }
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
  if (d.reason == server::DropReason::kBlocked) ++totals_.dropped_blocked;
  else if (d.reason == server::DropReason::kRateLimited) ++totals_.dropped_limited;
  else if (d.reason == server::DropReason::kDenied || d.reason == server::DropReason::kIgnored) ++totals_.dropped_denied;
  else ++totals_.dropped_other;
  return ReplayOutcome::kDropped;
}

void Replay::tend_blocks(int64_t now_s) {
  if (now_s == last_tended_s_) return;  // once per capture second, and after an event
  last_tended_s_ = now_s;
  book_.expire(now_s);
  if (auto set = book_.take_set()) {
    // Newly placed blocks, for the report (the book keeps only the active ones): the book
    // appends each block it places, so they are the set's last ones.
    const uint64_t placed = book_.counts().placed;
    const auto& blocks = set->blocks();
    const size_t fresh = std::min<size_t>(placed - placed_.size(), blocks.size());
    placed_.insert(placed_.end(), blocks.end() - static_cast<std::ptrdiff_t>(fresh), blocks.end());
    block_set_ = std::move(set);
  }
}

}  // namespace strata::analyze
