// The AF_XDP backend: a worker's AF_XDP sockets (one per receive queue it serves) and its UDP
// sockets (for what the XDP program passes to the kernel: fragments, IPv6 extension headers,
// mode 6, addresses the program does not know), behind the one Backend interface, so the
// worker does not know which path a datagram took.
//
// Frames: each (interface, queue) has one UMEM with its fill and completion rings
// (XdpQueue); every frame starts in the fill ring. A received frame is parsed (xdp_frame.h),
// its payload copied to the worker's buffer and the frame held until the batch's send():
// a reply is written over the request in place and goes into the socket's TX ring, the rest
// go back to the fill ring at the next receive(), with the completions. So no frame is ever
// in two rings and the census is fixed: fill + RX + held + TX + completion = all frames.
//
// Several sockets on one queue (a single-queue device with several workers) share its UMEM,
// and the kernel gives them one fill ring and one completion ring: those two are then taken
// with a spin lock, once per batch, by the workers of that queue only. On multi-queue devices
// each queue has one socket and nothing is shared.
//
// Receive times: the program writes CLOCK_MONOTONIC in front of the frame; it becomes
// CLOCK_REALTIME with an offset sampled around every ring read (a clock step between the two
// samples makes that batch use the read time instead).
#pragma once

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xdp/xsk.h>

#include "io/backend.h"
#include "io/udp_backend.h"
#include "io/xdp_frame.h"
#include "stats/counters.h"

namespace strata::io {

// One (interface, queue): its UMEM and, shared by its sockets, the fill and completion rings.
struct XdpQueue {
  std::string interface;
  int ifindex = 0;
  uint32_t queue = 0;
  void* area = nullptr;
  size_t area_size = 0;
  uint32_t frame_size = 0;
  uint32_t frames = 0;
  // Octets in front of each received frame's Ethernet header (the program's metadata when it
  // had to use bpf_xdp_adjust_head, io/xdp_path.cc); 0 with bpf_xdp_adjust_meta.
  uint32_t prefix = 0;
  xsk_umem* umem = nullptr;
  xsk_ring_prod fill{};
  xsk_ring_cons completion{};
  bool shared = false;  // more than one socket: take `lock` around fill and completion
  std::atomic_flag lock = ATOMIC_FLAG_INIT;
  bool zerocopy = false;
};

// One AF_XDP socket: its own RX and TX rings on a queue.
struct XdpSocket {
  XdpQueue* queue = nullptr;
  xsk_socket* xsk = nullptr;
  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
  int fd = -1;
  uint32_t map_index = 0;  // its slot in the program's socket map
  bool busy_poll = false;
  bool reports_fill = false;  // the queue's first socket: reports its fill ring's statistics
};

class XdpBackend final : public Backend {
 public:
  // `sockets`: this worker's UDP sockets (channels 0..n-1, as without XDP); `xsks`: its
  // AF_XDP sockets (channels n, n+1, ...), owned by the caller's XdpPath. `counters`: the
  // worker's block, where the xdp_* counters go (only this worker writes them).
  XdpBackend(std::unique_ptr<UdpBackend> sockets, size_t udp_channels, std::vector<XdpSocket*> xsks,
             size_t batch, stats::WorkerCounters* counters);
  ~XdpBackend() override;
  XdpBackend(const XdpBackend&) = delete;
  XdpBackend& operator=(const XdpBackend&) = delete;

  size_t receive(std::span<Packet> slots, base::Nanos timeout) override;
  size_t send(std::span<Packet> replies) override;
  bool send_one(const Packet& p) override;
  // Only replies through the UDP sockets have kernel transmit timestamps.
  std::span<const TxTimestamp> take_tx_timestamps() override { return sockets_->take_tx_timestamps(); }
  uint64_t rx_queue_drops() const override { return sockets_->rx_queue_drops() + xsk_drops_; }
  void wake() override { sockets_->wake(); }

 private:
  struct Held {
    uint64_t addr = 0;  // the frame's descriptor address (the Ethernet header)
    uint32_t socket = 0;
    bool sent = false;
    FrameView view;
  };
  // How often the kernel's XDP_STATISTICS are read.
  static constexpr base::Nanos kStatsInterval = std::chrono::milliseconds(100);
  static constexpr base::Nanos kMaxBlock = std::chrono::milliseconds(250);
  static constexpr size_t kMaxBatch = 1024;  // [server] batch's upper bound

  void recycle();  // held frames not sent and the completions back to the fill rings
  void recycle_queue(XdpQueue& q, const uint64_t* addrs, size_t n);
  size_t receive_xsk(size_t socket, std::span<Packet> slots);
  size_t receive_sockets(std::span<Packet> slots);
  void kick(XdpSocket& s);
  void poll_stats();

  std::unique_ptr<UdpBackend> sockets_;
  size_t udp_channels_;
  std::vector<XdpSocket*> xsks_;
  stats::WorkerCounters* counters_;
  std::vector<Held> held_;
  std::vector<uint64_t> scratch_;      // addresses on their way back to a fill ring
  std::vector<pollfd> poll_fds_;      // the AF_XDP sockets, then the UDP sockets' epoll fd
  size_t next_xsk_ = 0;
  unsigned turn_ = 0;
  uint64_t xsk_drops_ = 0;
  base::Nanos last_stats_{0};
};

}  // namespace strata::io
