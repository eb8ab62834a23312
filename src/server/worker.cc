// Worker loop (see worker.h).
#include "server/worker.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>

#include "base/bytes.h"
#include "server/decide.h"

namespace strata::server {

using stats::Counter;

namespace {
// Receive buffer per datagram: room for NTS-sized requests; anything longer is truncated,
// flagged by the kernel (MSG_TRUNC) and dropped as bad format.
constexpr uint16_t kRxBufferSize = 2048;
// Replies are 48 octets plus a MAC of at most 24; with NTS as long as the request.
constexpr uint16_t kTxBufferSize = 128;
constexpr uint16_t kNtsTxBufferSize = kRxBufferSize;
uint16_t tx_buffer_size(const WorkerOptions& o) { return o.nts ? kNtsTxBufferSize : kTxBufferSize; }
// How long a receive waits before re-checking the stop flag.
constexpr base::Nanos kReceiveTimeout = std::chrono::milliseconds(250);
}  // namespace

base::NtpTimestamp fuzz_below_precision(base::NtpTimestamp t, int8_t precision,
                                        uint64_t random) {
  // Precision p means 2^p seconds: in the 32.32 format that is 2^(32+p) units.
  const int bits = 32 + precision;
  if (bits <= 0) return t;
  const uint64_t mask = bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  return base::NtpTimestamp{(t.raw & ~mask) | (random & mask)};
}

Worker::Worker(io::Backend& backend, const clock::TimeStateCell& time, WorkerStats& stats,
               const WorkerOptions& options)
    : backend_(backend),
      time_(time),
      stats_(stats),
      options_(options),
      rx_buffers_(options.batch * kRxBufferSize),
      tx_buffers_(options.batch * tx_buffer_size(options)),
      rx_(options.batch),
      tx_(options.batch),
      needs_stamp_(options.batch),
      interleaved_(options.batch),
      held_tx_(options.batch),
      keys_(options.batch),
      rng_state_(std::random_device{}() | 1) {
  if (options.tracker != nullptr) default_rules_.limits = options.tracker->options().limits;
  const uint16_t tx_size = tx_buffer_size(options);
  for (size_t i = 0; i < options.batch; ++i) {
    rx_[i].data = &rx_buffers_[i * kRxBufferSize];
    rx_[i].capacity = kRxBufferSize;
    tx_[i].data = &tx_buffers_[i * tx_size];
    tx_[i].capacity = tx_size;
  }
  if (options.nts) {
    nts_ = std::make_unique<nts::PacketState>();
    nts_siv_.resize(options.batch);
    nts_seal_.resize(options.batch);
  }
  nts_pending_.resize(options.batch);
  nts_reply_.resize(options.batch);
}

uint64_t Worker::next_random() {
  // xorshift64*: fast, good enough for the noise bits of timestamps.
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  return rng_state_ * 0x2545F4914F6CDD1DULL;
}

void Worker::run(const std::atomic<bool>& stop) {
  base::Nanos last_packet = base::now_mono();
  while (!stop.load(std::memory_order_relaxed)) {
    const bool spin = options_.busy_poll.count() > 0 &&
                      base::now_mono() - last_packet < options_.busy_poll;
    if (run_once(spin ? base::Nanos{0} : kReceiveTimeout) > 0 && options_.busy_poll.count() > 0)
      last_packet = base::now_mono();
  }
}

void Worker::absorb_tx_timestamps() {
  const std::span<const io::TxTimestamp> stamps = backend_.take_tx_timestamps();
  if (stamps.empty()) return;
  const int8_t precision = time_.load().precision;
  auto& counters = stats_.counters;
  for (const io::TxTimestamp& t : stamps) {
    // Our server reply (mode 4); its receive timestamp is the key.
    if (t.length < 48 || (t.head[0] & 7) != 4) continue;
    const uint64_t rx = base::load_be64(t.head + 32);
    const uint64_t tx = fuzz_below_precision(base::to_ntp(t.time), precision, next_random()).raw;
    counters.add(options_.interleave->set_kernel_tx(rx, tx, t.peer) ? Counter::tx_timestamps_kernel
                                                                    : Counter::tx_timestamps_unmatched);
  }
}

void Worker::interleave(const io::Packet& in, const Decision& d, io::Packet& out, size_t slot) {
  interleaved_[slot] = 0;
  out.want_tx_time = false;
  // A time reply (not a KoD) to an NTPv4 client request (the header's own fields: decide()
  // fills request_version only for tracked requests).
  if (options_.interleave == nullptr || !d.stamp_transmit || d.kod || in.length < 48 ||
      ((in.data[0] >> 3) & 7) != 4 || (in.data[0] & 7) != 3)
    return;
  const uint64_t origin = base::load_be64(in.data + 24);
  if ((origin & 1) == 0 || base::load_be64(in.data + 32) == base::load_be64(in.data + 40)) return;
  // Whether or not this one can be served interleaved, the next one can: its transmit time
  // is asked for and held (want_tx_time marks the replies to hold).
  out.want_tx_time = true;
  auto& counters = stats_.counters;
  const auto held = options_.interleave->take(origin, in.peer.address);
  if (!held) {
    counters.add(Counter::interleaved_basic);
    return;
  }
  interleaved_[slot] = 1;
  held_tx_[slot] = held->tx;
  std::memcpy(out.data + 24, in.data + 32, 8);  // origin: the request's receive field
  counters.add(Counter::interleaved_replies);
  if (!held->kernel) counters.add(Counter::tx_timestamps_missing);
}

size_t Worker::run_once(base::Nanos timeout) {
  const size_t n = backend_.receive(rx_, timeout);
  if (options_.interleave != nullptr) absorb_tx_timestamps();
  auto& counters = stats_.counters;
  counters.set(Counter::rx_queue_drops, backend_.rx_queue_drops());
  counters.add(Counter::receive_calls);
  if (n == 0) {
    if (options_.tracker != nullptr)
      options_.tracker->idle(base::now_real().time_since_epoch().count());
    return 0;
  }
  // The rules in force, held for this batch only: a worker waiting in the receive holds none,
  // so a reload never waits for it.
  std::optional<RulesHold> hold;
  if (options_.rules != nullptr) hold.emplace(*options_.rules, options_.reader);
  const Rules& rules = hold ? **hold : default_rules_;
  std::optional<BlocksHold> blocks_hold;
  if (options_.blocks != nullptr) blocks_hold.emplace(*options_.blocks, options_.reader);
  const policy::BlockSet* blocks = blocks_hold ? &**blocks_hold : nullptr;

  counters.add(Counter::receive_batches);
  const base::RealTime batch_time = base::now_real();
  const clock::TimeState state = time_.load();
  const BatchContext context = make_context(state, batch_time, options_.unsynchronised);

  // The batch's client-table and limiter lines, fetched together before the first decide()
  // needs one (clients/tracker.h): at a million clients each would be a cache miss in turn.
  if (options_.tracker != nullptr)
    options_.tracker->prepare(n, [&](size_t i) -> const base::IpAddress& { return rx_[i].peer.address; },
                              rules.limits);

  size_t replies = 0;
  for (size_t i = 0; i < n; ++i) {
    io::Packet& in = rx_[i];
    const bool v4 = in.peer.address.family == base::Family::kV4;
    counters.add(v4 ? Counter::received_v4 : Counter::received_v6);
    counters.add(v4 ? Counter::bytes_in_v4 : Counter::bytes_in_v6,
                 in.length + (v4 ? io::kIpUdpOverheadV4 : io::kIpUdpOverheadV6));
    const base::RealTime rx_time = in.rx_kernel_time ? in.rx_time : batch_time;
    auto receive = fuzz_below_precision(base::to_ntp(rx_time), state.precision, next_random());
    // Interleaved mode's mark (chrony's): receive timestamps end in 1, transmits in 0, so an
    // origin ending in 1 is one of our receive timestamps and only such requests are looked up.
    if (options_.interleave != nullptr) receive.raw |= 1;
    io::Packet& out = tx_[replies];
    Decision d;
    if (options_.tracker != nullptr) {
      const Tracking tracking{*options_.tracker, rules, in.peer.address, in.local,
                              rx_time.time_since_epoch().count(), options_.control != nullptr,
                              nts_.get(), nts_ ? &nts_siv_[replies] : nullptr,
                              blocks, options_.meter, options_.block_events, options_.reader};
      d = decide({in.data, in.length}, in.truncated, in.peer.port, receive, context,
                 {out.data, out.capacity}, &tracking);
    } else {
      d = decide({in.data, in.length}, in.truncated, in.peer.port, receive, context,
                 {out.data, out.capacity});
    }
    count(d, counters);
    if (d.nts)
      counters.add(Counter::nts_bytes_in, in.length + (v4 ? io::kIpUdpOverheadV4 : io::kIpUdpOverheadV6));
    if (d.to_control && !options_.control->push(options_.reader, in, rx_time.time_since_epoch().count()))
      counters.add(Counter::drop_control_queue);
    if (d.gap_ns >= 0) stats_.poll_interval_ms.add(static_cast<uint64_t>(d.gap_ns / 1'000'000));
    if (!d.reply) continue;
    out.length = d.length;
    out.channel = in.channel;
    out.handle = in.handle;
    out.peer = in.peer;
    out.local = in.local;
    out.ifindex = in.ifindex;
    out.rx_time = rx_time;
    out.rx_kernel_time = in.rx_kernel_time;
    needs_stamp_[replies] = d.stamp_transmit;
    keys_[replies] = d.key;
    nts_pending_[replies] = d.nts_seal_pending;
    nts_reply_[replies] = d.nts;
    interleave(in, d, out, replies);
    if (d.nts_seal_pending) nts_seal_[replies] = d.nts_seal;
    ++replies;
  }
  if (replies == 0) return n;

  // Transmit timestamp: one clock read, as late as possible, just before the send.
  const base::RealTime tx_time = base::now_real();
  const base::NtpTimestamp transmit = base::to_ntp(tx_time);
  for (size_t i = 0; i < replies; ++i) {
    if (!needs_stamp_[i]) continue;
    base::NtpTimestamp t = fuzz_below_precision(transmit, state.precision, next_random());
    // Both timestamps' noise bits are random: keep T3 >= T2 within one precision step.
    const base::NtpTimestamp receive{base::load_be64(tx_[i].data + 32)};
    if (base::ntp_diff_raw(t, receive) < 0) t = receive;
    if (options_.interleave != nullptr) {  // the mark: a transmit timestamp ends in 0
      t.raw &= ~uint64_t{1};
      if (base::ntp_diff_raw(t, receive) < 0) t.raw = receive.raw + 1;
    }
    // An interleaved reply carries the previous reply's transmit time; this one's is held.
    const base::NtpTimestamp sent{interleaved_[i] ? held_tx_[i] & ~uint64_t{1} : t.raw};
    if (nts_pending_[i])
      finish_reply({tx_[i].data, tx_[i].length}, sent, nullptr, &nts_seal_[i], &nts_siv_[i]);
    else
      finish_reply({tx_[i].data, tx_[i].length}, sent, keys_[i]);
    if (tx_[i].want_tx_time && options_.interleave->save(receive.raw, t.raw, tx_[i].peer.address) ==
                           clients::InterleaveTable::Saved::kEvicted)
      counters.add(Counter::interleave_evicted);
    if (tx_[i].rx_kernel_time)
      stats_.processing_ns.add(static_cast<uint64_t>(std::max<int64_t>(0, (tx_time - tx_[i].rx_time).count())));
  }
  backend_.send({tx_.data(), replies});
  for (size_t i = 0; i < replies; ++i) {
    const io::Packet& p = tx_[i];
    if (!p.sent) {
      counters.add(Counter::send_errors);
      if (p.want_tx_time) options_.interleave->forget(base::load_be64(p.data + 32), p.peer.address);
      continue;
    }
    const bool v4 = p.peer.address.family == base::Family::kV4;
    counters.add(Counter::responses_sent);
    counters.add(v4 ? Counter::sent_v4 : Counter::sent_v6);
    counters.add(v4 ? Counter::bytes_out_v4 : Counter::bytes_out_v6,
                 p.length + (v4 ? io::kIpUdpOverheadV4 : io::kIpUdpOverheadV6));
    if (nts_reply_[i])
      counters.add(Counter::nts_bytes_out, p.length + (v4 ? io::kIpUdpOverheadV4 : io::kIpUdpOverheadV6));
  }
  return n;
}

}  // namespace strata::server
