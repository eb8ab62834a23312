// An in-memory Backend for tests and fuzzing: datagrams are queued with inject() and the
// replies a worker sends are kept in sent(). Single-threaded; allocation is fine here.
#pragma once

#include <cstring>
#include <algorithm>
#include <deque>
#include <utility>
#include <vector>

#include "io/backend.h"

namespace strata::io {

class MemoryBackend final : public Backend {
 public:
  struct Datagram {
    std::vector<uint8_t> bytes;
    base::Endpoint peer;
    base::IpAddress local;
    base::RealTime rx_time{};
    bool kernel_time = true;
    bool want_tx_time = false;  // a reply that asked for its transmit timestamp
  };

  void inject(Datagram d) { queue_.push_back(std::move(d)); }
  const std::vector<Datagram>& sent() const { return sent_; }
  void clear_sent() { sent_.clear(); }
  // Makes send() refuse every reply (to test error counting).
  void fail_sends(bool fail) { fail_sends_ = fail; }
  void set_rx_queue_drops(uint64_t n) { drops_ = n; }
  // Plays the kernel's transmit timestamps: a reply sent with want_tx_time gets one,
  // `after_rx` after its request's receive time, collected by the next receive().
  void stamp_transmits(bool on, base::Nanos after_rx = std::chrono::microseconds(30)) {
    stamping_ = on;
    tx_after_rx_ = after_rx;
  }

  bool send_one(const Packet& p) override {
    if (fail_sends_) return false;
    sent_.push_back({std::vector<uint8_t>(p.data, p.data + p.length), p.peer, p.local});
    return true;
  }

  size_t receive(std::span<Packet> slots, base::Nanos) override {
    taken_.clear();
    taken_.swap(stamps_);
    taken_once_ = false;
    size_t n = 0;
    while (n < slots.size() && !queue_.empty()) {
      Datagram& d = queue_.front();
      Packet& p = slots[n++];
      const size_t len = std::min<size_t>(d.bytes.size(), p.capacity);
      std::memcpy(p.data, d.bytes.data(), len);
      p.length = static_cast<uint16_t>(len);
      p.truncated = d.bytes.size() > p.capacity;
      p.channel = 0;
      p.peer = d.peer;
      p.local = d.local;
      p.ifindex = 1;
      p.rx_time = d.rx_time;
      p.rx_kernel_time = d.kernel_time;
      queue_.pop_front();
    }
    return n;
  }

  size_t send(std::span<Packet> replies) override {
    size_t n = 0;
    for (Packet& p : replies) {
      p.sent = !fail_sends_;
      if (!p.sent) continue;
      sent_.push_back(Datagram{{p.data, p.data + p.length}, p.peer, p.local, p.rx_time, true,
                               p.want_tx_time});
      if (p.want_tx_time && stamping_) {
        TxTimestamp t;
        t.peer = p.peer.address;
        t.time = p.rx_time + tx_after_rx_;
        t.length = static_cast<uint16_t>(std::min<size_t>(p.length, sizeof t.head));
        std::memcpy(t.head, p.data, t.length);
        stamps_.push_back(t);
      }
      ++n;
    }
    return n;
  }

  std::span<const TxTimestamp> take_tx_timestamps() override {
    if (std::exchange(taken_once_, true)) return {};
    return taken_;
  }
  uint64_t rx_queue_drops() const override { return drops_; }
  void wake() override {}

 private:
  std::deque<Datagram> queue_;
  std::vector<Datagram> sent_;
  bool fail_sends_ = false;
  uint64_t drops_ = 0;
  bool stamping_ = false;
  base::Nanos tx_after_rx_{0};
  std::vector<TxTimestamp> stamps_;  // sent since the last receive()
  std::vector<TxTimestamp> taken_;   // what the last receive() collected
  bool taken_once_ = false;
};

}  // namespace strata::io
