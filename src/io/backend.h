// The narrow interface between the packet path and the sockets: receive a batch of datagrams
// with their kernel receive time and the local address they hit, send a batch of replies.
// The UDP backend (udp_backend.h) implements it with recvmmsg/sendmmsg; tests use an
// in-memory one. One backend per worker thread; nothing in it is shared between workers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/net.h"
#include "base/ntp_time.h"

namespace strata::io {

struct Packet {
  uint8_t* data = nullptr;    // buffer owned by the worker
  uint16_t length = 0;        // octets of payload
  uint16_t capacity = 0;      // octets available at data
  uint16_t channel = 0;       // which socket: a reply goes out where its request came in
  uint32_t handle = 0;        // the backend's own mark of the request (AF_XDP: its frame); a
                              // reply carries its request's
  bool truncated = false;     // the datagram was longer than capacity (MSG_TRUNC)
  bool rx_kernel_time = false;  // rx_time came from the kernel (SO_TIMESTAMPNS)
  bool sent = false;          // set by Backend::send
  bool want_tx_time = false;  // a reply: ask the kernel for its transmit timestamp, which a
                              // later receive() collects (TxTimestamp)
  int ifindex = 0;            // interface the request arrived on
  base::Endpoint peer;        // the remote address and port
  base::IpAddress local;      // the local address the request was sent to
  base::RealTime rx_time{};
};

// The run of consecutive packets on the channel of the first of `packets` (not empty): a
// backend sends a batch one channel at a time, one system call or one ring per run.
inline std::span<Packet> channel_run(std::span<Packet> packets) {
  size_t end = 1;
  while (end < packets.size() && packets[end].channel == packets[0].channel) ++end;
  return packets.first(end);
}

// The kernel's transmit timestamp of a reply sent with want_tx_time, and enough of the reply
// to know which it was: its destination and the first octets of its payload.
struct TxTimestamp {
  base::IpAddress peer;
  base::RealTime time{};
  uint16_t length = 0;  // octets of `head` the kernel gave back (at most 48)
  uint8_t head[48] = {};
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Waits up to `timeout` (or until wake()) for datagrams and fills up to slots.size() of them,
  // all from one channel, setting every field but `sent`. Returns how many; 0 when none came,
  // which may be before the timeout (callers loop).
  virtual size_t receive(std::span<Packet> slots, base::Nanos timeout) = 0;
  // Sends each reply to its peer from its local address over its channel; sets `sent`.
  // Returns how many were sent.
  virtual size_t send(std::span<Packet> replies) = 0;
  // Sends one datagram to p.peer from p.local over p.channel, from any thread: it touches
  // nothing the worker's receive() and send() use (the control responder's replies go out
  // this way, beside the worker). Returns whether the kernel took it.
  virtual bool send_one(const Packet& p) = 0;
  // The transmit timestamps receive() collected since the last call (valid until the next
  // receive()). Empty for a backend that has none (AF_XDP frames, sockets without
  // SO_TIMESTAMPING).
  virtual std::span<const TxTimestamp> take_tx_timestamps() { return {}; }
  // Cumulative datagrams the kernel dropped for want of receive-queue space.
  virtual uint64_t rx_queue_drops() const = 0;
  // Makes a receive() in progress return soon (any thread).
  virtual void wake() = 0;
};

// IP + UDP header octets added to a payload, as clouds bill traffic.
inline constexpr uint32_t kIpUdpOverheadV4 = 20 + 8;
inline constexpr uint32_t kIpUdpOverheadV6 = 40 + 8;

}  // namespace strata::io
