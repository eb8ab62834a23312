// One worker thread's loop: receive a batch from its backend, decide() each datagram, stamp the
// transmit timestamps as late as possible, send the batch, count everything in its own
// counters. No allocation after construction, no lock, no syscall but the backend's.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "clients/interleave.h"
#include "clients/tracker.h"
#include "server/control_service.h"
#include "server/decide.h"
#include "server/rules.h"
#include "clock/time_state.h"
#include "io/backend.h"
#include "nts/packet.h"
#include "stats/counters.h"
#include "stats/histogram.h"

namespace strata::server {

// A worker's statistics, read by the control thread while the worker writes them.
struct WorkerStats {
  stats::WorkerCounters counters;
  stats::Histogram processing_ns;  // kernel receive -> transmit timestamp, per reply
  stats::Histogram poll_interval_ms;  // gap between a client's requests (tracked clients)
};

struct WorkerOptions {
  size_t batch = 64;  // datagrams per recvmmsg/sendmmsg
  // After a batch, keep polling the sockets without sleeping for this long: trades a busy
  // core for the wake-up latency of the scheduler (0: always sleep when idle).
  base::Nanos busy_poll{0};
  clock::UnsyncAction unsynchronised = clock::UnsyncAction::kReply;
  // This worker's client table and rate limiter; null: no tracking, no limiting.
  clients::Tracker* tracker = nullptr;
  // Access rules and limits in force, and this worker's reader slot in it. Null with a
  // tracker: no access rules, the tracker's own limits.
  RulesCell* rules = nullptr;
  size_t reader = 0;
  // Dynamic blocks in force (this worker reads them as reader `reader`), and its meter of the
  // rules' rates and ring of events to the main thread (policy/blocks.h). Null: no blocks.
  BlocksCell* blocks = nullptr;
  clients::BlockMeter* meter = nullptr;
  clients::BlockEvents* block_events = nullptr;
  // Where mode-6 requests go (this worker's ring: `reader`); null: mode 6 is dropped.
  ControlQueue* control = nullptr;
  // Serve NTS (RFC 8915) when the rules in force carry NTS secrets: the worker keeps its own
  // cookie jar, AEAD contexts and random source, and transmit buffers large enough.
  bool nts = false;
  // Interleaved mode (RFC 9769, clients/interleave.h): this worker's table of transmit
  // timestamps; null: basic mode only, and replies are not marked.
  clients::InterleaveTable* interleave = nullptr;
};

// Sets the bits of `t` below 2^precision seconds to random values (RFC 5905 section 6: the
// non-significant bits should be random, as chrony does), so timestamps leak no pattern.
base::NtpTimestamp fuzz_below_precision(base::NtpTimestamp t, int8_t precision, uint64_t random);

class Worker {
 public:
  Worker(io::Backend& backend, const clock::TimeStateCell& time, WorkerStats& stats,
         const WorkerOptions& options);

  // Runs batches until `stop` is set (and the backend is woken).
  void run(const std::atomic<bool>& stop);
  // Receives and answers one batch, waiting up to `timeout`. Returns datagrams handled.
  size_t run_once(base::Nanos timeout);

 private:
  uint64_t next_random();
  // The kernel transmit timestamps the backend collected, into the interleave table.
  void absorb_tx_timestamps();
  // For an interleaved request (chrony's test: version 4, client mode, the origin's lowest bit
  // set, receive != transmit): the held transmit timestamp of the reply its origin names.
  void interleave(const io::Packet& in, const Decision& d, io::Packet& out, size_t slot);

  io::Backend& backend_;
  const clock::TimeStateCell& time_;
  WorkerStats& stats_;
  WorkerOptions options_;
  std::vector<uint8_t> rx_buffers_;
  std::vector<uint8_t> tx_buffers_;
  std::vector<io::Packet> rx_;
  std::vector<io::Packet> tx_;
  std::vector<uint8_t> needs_stamp_;
  std::vector<uint8_t> interleaved_;  // interleaved reply: its transmit is held_tx_
  std::vector<uint64_t> held_tx_;
  std::vector<const auth::Key*> keys_;  // sign the reply with it after stamping (or null)
  // NTS: per reply slot, the S2C context and layout to seal it with after stamping.
  std::unique_ptr<nts::PacketState> nts_;
  std::vector<nts::Siv> nts_siv_;
  std::vector<nts::ReplySeal> nts_seal_;
  std::vector<uint8_t> nts_pending_;  // seal after stamping
  std::vector<uint8_t> nts_reply_;    // an NTS reply or NAK (for the NTS byte counters)
  uint64_t rng_state_;
  Rules default_rules_;  // used when options_.rules is null
};

}  // namespace strata::server
