// The AF_XDP backend (see xdp_backend.h).
#include "io/xdp_backend.h"

#include <linux/if_xdp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bpf/strata_xdp.h"

namespace strata::io {

using stats::Counter;

namespace {

// CLOCK_REALTIME - CLOCK_MONOTONIC, from a realtime read between two monotonic ones.
int64_t realtime_offset() {
  const int64_t m1 = base::now_mono().count();
  const int64_t r = base::now_real().time_since_epoch().count();
  const int64_t m2 = base::now_mono().count();
  return r - (m1 + (m2 - m1) / 2);
}

// A clock step between the two samples of one batch larger than this: the batch's metadata
// times are not trusted (the read time stands in).
constexpr int64_t kStepNs = 10'000;

class QueueLock {
 public:
  explicit QueueLock(XdpQueue& q) : q_(q) {
    if (!q_.shared) return;
    while (q_.lock.test_and_set(std::memory_order_acquire)) {
      while (q_.lock.test(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  ~QueueLock() {
    if (q_.shared) q_.lock.clear(std::memory_order_release);
  }
  QueueLock(const QueueLock&) = delete;
  QueueLock& operator=(const QueueLock&) = delete;

 private:
  XdpQueue& q_;
};

}  // namespace

XdpBackend::XdpBackend(std::unique_ptr<UdpBackend> sockets, size_t udp_channels,
                       std::vector<XdpSocket*> xsks, size_t batch, stats::WorkerCounters* counters)
    : sockets_(std::move(sockets)),
      udp_channels_(udp_channels),
      xsks_(std::move(xsks)),
      counters_(counters) {
  held_.reserve(std::min(batch, kMaxBatch));
  uint32_t most = 0;
  for (const XdpSocket* s : xsks_) most = std::max(most, s->queue->frames);
  scratch_.reserve(most + batch);
  for (const XdpSocket* s : xsks_) poll_fds_.push_back({s->fd, POLLIN, 0});
  poll_fds_.push_back({sockets_->poll_fd(), POLLIN, 0});
}

XdpBackend::~XdpBackend() = default;

void XdpBackend::recycle_queue(XdpQueue& q, const uint64_t* addrs, size_t n) {
  scratch_.assign(addrs, addrs + n);
  QueueLock lock(q);
  uint32_t idx = 0;
  const uint32_t done = xsk_ring_cons__peek(&q.completion, q.frames, &idx);
  for (uint32_t i = 0; i < done; ++i) scratch_.push_back(*xsk_ring_cons__comp_addr(&q.completion, idx + i));
  if (done > 0) xsk_ring_cons__release(&q.completion, done);
  if (scratch_.empty()) return;
  // The fill ring holds every frame of the queue, so there is always room for the ones out.
  const uint32_t want = static_cast<uint32_t>(scratch_.size());
  uint32_t at = 0;
  const uint32_t got = xsk_ring_prod__reserve(&q.fill, want, &at);
  for (uint32_t i = 0; i < got; ++i)
    *xsk_ring_prod__fill_addr(&q.fill, at + i) = scratch_[i] - scratch_[i] % q.frame_size;
  xsk_ring_prod__submit(&q.fill, got);
}

void XdpBackend::recycle() {
  // Per socket (one per queue for this worker): its unsent frames and its queue's completions.
  uint64_t addrs[kMaxBatch];
  for (size_t k = 0; k < xsks_.size(); ++k) {
    size_t n = 0;
    for (const Held& h : held_)
      if (h.socket == k && !h.sent && n < std::size(addrs)) addrs[n++] = h.addr;
    recycle_queue(*xsks_[k]->queue, addrs, n);
  }
  held_.clear();
}

size_t XdpBackend::receive_xsk(size_t k, std::span<Packet> slots) {
  XdpSocket& s = *xsks_[k];
  if (s.busy_poll) {
    // Busy polling: the receive call runs the device's NAPI on this core.
    [[maybe_unused]] const ssize_t r = ::recvfrom(s.fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
  uint32_t idx = 0;
  const size_t room = std::min(slots.size(), held_.capacity() - held_.size());
  const uint32_t n = xsk_ring_cons__peek(&s.rx, static_cast<uint32_t>(room), &idx);
  if (n == 0) return 0;
  const int64_t before = realtime_offset();
  const base::RealTime read_time = base::now_real();
  size_t out = 0;
  XdpQueue& q = *s.queue;
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&s.rx, idx + i);
    // With a prefix, the metadata comes first and the frame after it: the reply is written
    // over the frame, so the metadata stays just before it as with bpf_xdp_adjust_meta.
    const uint64_t addr = d->addr + q.prefix;
    const uint32_t frame_len = d->len > q.prefix ? d->len - q.prefix : 0;
    uint8_t* f = static_cast<uint8_t*>(xsk_umem__get_data(q.area, addr));
    const size_t room_in_chunk = q.frame_size - addr % q.frame_size;
    const ParsedFrame pf = parse_frame({f, std::min<size_t>(frame_len, room_in_chunk)});
    held_.push_back({addr, static_cast<uint32_t>(k), false, pf.view});
    if (pf.error != FrameError::kNone) {
      counters_->add(Counter::xdp_malformed);
      continue;
    }
    Packet& p = slots[out++];
    const size_t len = std::min<size_t>(pf.view.payload_length, p.capacity);
    std::memcpy(p.data, f + pf.view.payload, len);
    p.length = static_cast<uint16_t>(len);
    p.truncated = pf.view.payload_length > p.capacity;
    p.channel = static_cast<uint16_t>(udp_channels_ + k);
    p.handle = static_cast<uint32_t>(held_.size() - 1);
    p.sent = false;
    p.ifindex = q.ifindex;
    p.peer = pf.view.peer;
    p.local = pf.view.local.address;
    strata_xdp_meta meta;
    std::memcpy(&meta, f - sizeof meta, sizeof meta);  // inside the chunk's headroom
    p.rx_kernel_time = meta.magic == STRATA_XDP_META_MAGIC;
    if (p.rx_kernel_time) {
      const uint32_t clear = 0;
      std::memcpy(f - sizeof meta + offsetof(strata_xdp_meta, magic), &clear, sizeof clear);
      p.rx_time = base::RealTime{base::Nanos{static_cast<int64_t>(meta.rx_ns)}};  // monotonic for now
    } else {
      p.rx_time = read_time;
      counters_->add(Counter::xdp_no_timestamp);
    }
  }
  xsk_ring_cons__release(&s.rx, n);
  counters_->add(Counter::xdp_received, n);
  const int64_t after = realtime_offset();
  const bool stepped = std::abs(after - before) > kStepNs;
  for (size_t i = 0; i < out; ++i) {
    Packet& p = slots[i];
    if (!p.rx_kernel_time) continue;
    if (stepped) {
      p.rx_kernel_time = false;
      p.rx_time = read_time;
      continue;
    }
    p.rx_time = base::RealTime{p.rx_time.time_since_epoch() + base::Nanos{after}};
  }
  return out;
}

size_t XdpBackend::receive_sockets(std::span<Packet> slots) {
  const size_t n = sockets_->receive(slots, base::Nanos{0});
  for (size_t i = 0; i < n; ++i) slots[i].handle = 0;
  return n;
}

size_t XdpBackend::receive(std::span<Packet> slots, base::Nanos timeout) {
  recycle();
  poll_stats();
  const auto try_xsks = [&]() -> size_t {
    for (size_t i = 0; i < xsks_.size(); ++i) {
      const size_t k = (next_xsk_ + i) % xsks_.size();
      if (const size_t n = receive_xsk(k, slots); n > 0 || !held_.empty()) {
        next_xsk_ = k + 1;  // the others first next time
        return n;
      }
    }
    return 0;
  };
  // The UDP sockets get a turn every eighth call even while the AF_XDP rings stay busy.
  if ((++turn_ & 7) == 0)
    if (const size_t n = receive_sockets(slots); n > 0) return n;
  if (const size_t n = try_xsks(); n > 0 || !held_.empty()) return n;
  if (const size_t n = receive_sockets(slots); n > 0) return n;
  if (timeout.count() <= 0) return 0;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::min(timeout, kMaxBlock)).count();
  for (pollfd& p : poll_fds_) p.revents = 0;
  const int ready = ::poll(poll_fds_.data(), poll_fds_.size(), static_cast<int>(std::max<int64_t>(ms, 1)));
  if (ready <= 0) return 0;
  if (const size_t n = try_xsks(); n > 0 || !held_.empty()) return n;
  return receive_sockets(slots);
}

void XdpBackend::kick(XdpSocket& s) {
  // Copy mode always needs the call to transmit; zero-copy only when the driver asks.
  if (s.queue->zerocopy && !xsk_ring_prod__needs_wakeup(&s.tx)) return;
  for (int i = 0; i < 64; ++i) {
    if (::sendto(s.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return;
    if (errno != EAGAIN && errno != EINTR) return;  // ENOBUFS, EBUSY, ENETDOWN: next batch
  }
}

size_t XdpBackend::send(std::span<Packet> replies) {
  size_t sent = 0;
  for (std::span<Packet> rest = replies; !rest.empty();) {
    const std::span<Packet> run = channel_run(rest);
    rest = rest.subspan(run.size());
    const size_t channel = run.front().channel;
    if (channel < udp_channels_) {
      sent += sockets_->send(run);
      continue;
    }
    const size_t k = channel - udp_channels_;
    if (k >= xsks_.size()) {
      for (Packet& p : run) p.sent = false;
      continue;
    }
    XdpSocket& s = *xsks_[k];
    XdpQueue& q = *s.queue;
    // Every reply over its request's frame first, then the descriptors in one go.
    uint64_t addrs[kMaxBatch];
    uint32_t lengths[kMaxBatch];
    Packet* owners[kMaxBatch];
    size_t ready = 0;
    for (Packet& p : run) {
      p.sent = false;
      if (p.handle >= held_.size() || held_[p.handle].socket != k || held_[p.handle].sent ||
          ready == std::size(addrs))
        continue;
      Held& h = held_[p.handle];
      uint8_t* f = static_cast<uint8_t*>(xsk_umem__get_data(q.area, h.addr));
      const size_t len = write_reply(f, q.frame_size - h.addr % q.frame_size, h.view, {p.data, p.length});
      if (len == 0) continue;
      addrs[ready] = h.addr;
      lengths[ready] = static_cast<uint32_t>(len);
      owners[ready] = &p;
      ++ready;
    }
    uint32_t at = 0;
    const uint32_t got = ready == 0 ? 0 : xsk_ring_prod__reserve(&s.tx, static_cast<uint32_t>(ready), &at);
    for (uint32_t i = 0; i < got; ++i) {
      xdp_desc* d = xsk_ring_prod__tx_desc(&s.tx, at + i);
      d->addr = addrs[i];
      d->len = lengths[i];
      d->options = 0;
      owners[i]->sent = true;
      held_[owners[i]->handle].sent = true;
    }
    if (got < ready) counters_->add(Counter::xdp_tx_ring_full, ready - got);
    if (got > 0) {
      xsk_ring_prod__submit(&s.tx, got);
      kick(s);
      counters_->add(Counter::xdp_sent, got);
      sent += got;
    }
  }
  return sent;
}

bool XdpBackend::send_one(const Packet& p) {
  // Only the UDP sockets: the control service answers from its own thread what they received.
  return p.channel < udp_channels_ && sockets_->send_one(p);
}

void XdpBackend::poll_stats() {
  const base::Nanos now = base::now_mono();
  if (now - last_stats_ < kStatsInterval) return;
  last_stats_ = now;
  xdp_statistics sum{};
  for (const XdpSocket* s : xsks_) {
    xdp_statistics st{};
    socklen_t len = sizeof st;
    if (::getsockopt(s->fd, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) continue;
    sum.rx_dropped += st.rx_dropped;
    sum.rx_invalid_descs += st.rx_invalid_descs;
    sum.tx_invalid_descs += st.tx_invalid_descs;
    sum.rx_ring_full += st.rx_ring_full;
    sum.tx_ring_empty_descs += st.tx_ring_empty_descs;
    // The fill ring is the queue's: counted once, by its first socket.
    if (s->reports_fill) sum.rx_fill_ring_empty_descs += st.rx_fill_ring_empty_descs;
  }
  counters_->set(Counter::xdp_rx_dropped, sum.rx_dropped);
  counters_->set(Counter::xdp_rx_ring_full, sum.rx_ring_full);
  counters_->set(Counter::xdp_fill_ring_empty, sum.rx_fill_ring_empty_descs);
  counters_->set(Counter::xdp_tx_ring_empty, sum.tx_ring_empty_descs);
  counters_->set(Counter::xdp_invalid_descs, sum.rx_invalid_descs + sum.tx_invalid_descs);
  xsk_drops_ = sum.rx_dropped + sum.rx_ring_full;
}

}  // namespace strata::io
